package send_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// The delivery flow of a program that embeds the engine: evaluate, turn
// a delivered result into outbox items, and let a Worker drive them to a
// final state (here against a local server standing in for Button; a
// real program opens outbox.OpenBolt and leaves VendorURL unset).
func ExampleWorker() {
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer vendor.Close()

	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		log.Fatal(err)
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil {
		log.Fatal(err)
	}
	in, err := runtime.Bind(bp, "default", map[string]any{"application_id": "app-abc123", "api_key": "sk-example"})
	if err != nil {
		log.Fatal(err)
	}
	const name = "button@0.1.0/default" // how this program names the integration

	q := outbox.NewMemory()
	ctx := context.Background()
	event := []byte(`{"type":"track","event":"Order Completed","message_id":"m-1","timestamp":"2026-01-01T00:00:00Z",
		"context":{"consent":{"advertising":true}},
		"properties":{"order_id":"o-1","total":12.5,"currency":"USD","products":[{"sku":"s-1","price":12.5}]}}`)
	if res := in.Evaluate(event); res.Outcome == runtime.Deliver {
		items, err := send.Items(in, name, "button@0.1.0", event, res, time.Now())
		if err != nil {
			log.Fatal(err) // send.ErrCarriesSecret: reject the event, do not store it
		}
		if _, err := q.Enqueue(ctx, items); err != nil {
			log.Fatal(err)
		}
	}

	u, _ := url.Parse(vendor.URL)
	metrics := &send.Counters{}
	w := &send.Worker{
		Queue:       q,
		Sender:      send.New(send.Options{VendorURL: u, Metrics: metrics}),
		Integration: func(it *outbox.Item) (*runtime.Integration, bool) { return in, it.Integration == name },
		Metrics:     metrics,
	}
	// Until the item is final (the delivery package counts a run's own
	// items this way; a long-running service passes nil and cancels ctx to
	// stop).
	final := func() bool { return metrics.Delivered.Load()+metrics.Dead.Load()+metrics.Skipped.Load() == 1 }
	if err := w.Run(ctx, final); err != nil {
		log.Fatal(err)
	}
	counts, _ := q.Counts(ctx)
	fmt.Println("delivered:", counts[outbox.Delivered], "dead:", counts[outbox.Dead], "attempts:", metrics.Attempts.Load())
	// Output: delivered: 1 dead: 0 attempts: 1
}
