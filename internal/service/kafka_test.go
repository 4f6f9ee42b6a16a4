package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/service"
)

// TestServeKafka runs serve in Kafka mode (role all) on kfake: Button
// installed through the API for one source, signed orders posted to
// ingest (200 once on raw-events), the process and deliver roles in the
// same process deliver the one of that source to the fake Button, the
// other source's order is not delivered, and the dead-letter view is
// empty.
func TestServeKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "all", Partitions: 2}})
	tok := h.login()
	_, a, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "app"})
	_, b, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}, "source_ids": []string{a["id"].(string)}})
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	id := out["id"].(string)
	// The live stream, as the page reads it: in Kafka mode too, every
	// step names its event.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.admin, "http")+"/v1/admin/live",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	steps := map[string]string{} // type -> event_id, of the app's order
	stepsDone := make(chan error, 1)
	go func() {
		for {
			_, raw, err := ws.Read(ctx)
			if err != nil {
				stepsDone <- err
				return
			}
			var m struct {
				Type          string `json:"type"`
				EventID       string `json:"event_id"`
				IntegrationID string `json:"integration_id"`
			}
			json.Unmarshal(raw, &m)
			if m.IntegrationID == id || m.Type == "received" {
				steps[m.Type] = m.EventID
			}
			// Every step, in whatever order: the processor reports its
			// decision once its records are acknowledged, and the
			// deliverer may have sent the request by then.
			if steps["decision"] != "" && steps["request"] != "" && steps["attempt"] != "" && steps["final"] != "" {
				stepsDone <- nil
				return
			}
		}
	}()
	now := time.Now().UnixMilli()
	if st, out := h.post("/v1/events", b["pipeline_key"].(string), b["secret_key"].(string), order("k-web"), now); st != 200 {
		t.Fatalf("ingest web: %d %v", st, out)
	}
	if st, out := h.post("/v1/events", a["pipeline_key"].(string), a["secret_key"].(string), order("k-app"), now); st != 200 || out["success"] != true {
		t.Fatalf("ingest app: %d %v", st, out)
	}
	deadline := time.Now().Add(30 * time.Second) // group joins on kfake take a few seconds
	for {
		if _, ok := h.fake.Order("k-app"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the order at the fake Button")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := <-stepsDone; err != nil {
		t.Fatalf("live stream: %v (steps %v)", err, steps)
	}
	for _, typ := range []string{"decision", "request", "attempt", "final"} {
		if steps[typ] != "m-k-app" {
			t.Errorf("live %s step names event %q, want m-k-app (steps %v)", typ, steps[typ], steps)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if _, ok := h.fake.Order("k-web"); ok {
		t.Fatal("an event of another source was delivered")
	}
	if n := len(h.fake.Orders()); n != 1 {
		t.Fatalf("%d orders at the fake, want 1", n)
	}
	if st, out, _ := h.call("GET", "/v1/admin/integrations/"+id+"/dlq", tok, nil); st != 200 || len(out["data"].([]any)) != 0 || out["has_more"] != false {
		t.Fatalf("dlq in Kafka mode: %d %v", st, out)
	}
	// Role all publishes its own steps into its hub: it never copies them
	// to live-events (only followers do), so none is shown twice.
	if n := liveEnd(t, c.ListenAddrs()); n != 0 {
		t.Errorf("a process of role all produced %d records to live-events", n)
	}
	if got := sample(h.scrape(), `blueprint_live_topic_records_total{result="received"}`); got != 0 {
		t.Errorf("a process of role all read %v of its steps back from live-events", got)
	}
}

// TestServeKafkaDeletedDeliveryTopic: an integration's delivery topic
// deleted under a running service stops the processor's produce; the
// processor's restart creates the topic again, and the next orders are
// delivered (before, the topics were remembered as created, and the
// processor failed on the same produce at every restart).
func TestServeKafkaDeletedDeliveryTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "all", Partitions: 1}})
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	id := installButton(t, h, tok, "Button", apiKey)
	post := func(oid string) {
		t.Helper()
		if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order(oid), time.Now().UnixMilli()); st != 200 {
			t.Fatalf("ingest %s: %d %v", oid, st, out)
		}
	}
	delivered := func(oid string) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for {
			if _, ok := h.fake.Order(oid); ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("order %s never reached the fake Button", oid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	post("del-1")
	delivered("del-1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).DeleteTopics(ctx, "delivery-"+id); err != nil {
		t.Fatal(err)
	}
	post("del-2")
	delivered("del-2")
}
