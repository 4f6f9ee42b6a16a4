package delivery_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// A program that embeds delivery (a service's ingest, say): bind an
// integration, start a pipeline over an outbox, feed it events as they
// come, and see each one's decision and each request's final state, by its
// outbox item ID. (Here the vendor is a local server standing in for
// Button, and the outbox is in memory; a real program opens outbox.OpenBolt
// and leaves VendorURL unset.)
func Example() {
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer vendor.Close()
	u, _ := url.Parse(vendor.URL)

	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		log.Fatal(err)
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil {
		log.Fatal(err)
	}
	in, err := runtime.Bind(bp, "retail", map[string]any{"application_id": "app-abc123", "api_key": "sk-example"})
	if err != nil {
		log.Fatal(err)
	}

	finals := make(chan send.FinalInfo, 10)
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{
		Sender: send.Options{VendorURL: u},
		OnDecision: func(d delivery.Decision) {
			fmt.Println("decision:", d.Integration, d.Result.Outcome, d.Result.Reason, len(d.Items), "request(s)")
		},
		Metrics: send.Hooks{OnFinal: func(f send.FinalInfo) { finals <- f }},
	}, delivery.Binding{Name: "int_button", Ref: "button@0.1.0", Integration: in})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		log.Fatal(err)
	}
	// Feed returns once the requests are durable in the outbox.
	err = p.Feed(ctx,
		[]byte(`{"type":"track","event":"Order Completed","message_id":"m-1","timestamp":"2026-01-01T00:00:00Z",
			"context":{"consent":{"advertising":true}},
			"properties":{"order_id":"o-1","total":12.5,"currency":"USD","products":[{"sku":"s-1","price":12.5}]}}`),
		[]byte(`{"type":"page","name":"Home"}`))
	if err != nil {
		log.Fatal(err)
	}
	f := <-finals
	fmt.Println("final:", f.Integration, f.VendorEvent, f.State, "after", f.Attempts, "attempt(s), item", len(f.Item), "hex digits")

	// A service runs until it shuts down; here, wait for what was fed.
	if err := p.Drain(ctx); err != nil {
		log.Fatal(err)
	}
	if err := p.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(p.Summary())

	// Run does the same for a finite input (NDJSON, or one JSON value).
	p, _ = delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}},
		delivery.Binding{Name: "int_button", Ref: "button@0.1.0", Integration: in})
	input := `{"type":"track","event":"Order Completed","context":{"consent":{"advertising":true}}}` + "\n" + `{"type":"page"}` + "\n"
	sum, err := p.Run(ctx, strings.NewReader(input)) // the order lacks its order_id: rejected
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sum)
	// Output:
	// decision: int_button deliver  1 request(s)
	// decision: int_button skip event_not_mapped 0 request(s)
	// final: int_button purchase delivered after 1 attempt(s), item 32 hex digits
	// 1 delivered, 1 skipped, 0 rejected, 0 dead-lettered
	// 0 delivered, 1 skipped, 1 rejected, 0 dead-lettered
}
