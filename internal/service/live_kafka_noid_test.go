package service_test

import (
	"strings"
	"testing"
	"time"
)

// TestServeKafkaLiveEventWithoutMessageID: with split roles, every step of
// an event without a messageId names it alike (send.EventRef, its digest),
// the deliverer's attempt and final steps too: they named it by the
// delivery record's empty message id, and the page shows a step without
// an event id in no row, so the 200 or 401 never appeared.
func TestServeKafkaLiveEventWithoutMessageID(t *testing.T) {
	h, brokers, tok, pk, sk := splitOwner(t, 2)
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}})
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	proc := startFollower(t, h, brokers, "process")
	del := startFollower(t, h, brokers, "deliver")
	w := watchLive(t, h.admin, tok, "")
	bridging(t, true, proc, del)
	ev := strings.Replace(string(order("noid-1")), `"messageId":"m-noid-1",`, "", 1)
	if st, out := h.post("/v1/events", pk, sk, []byte(ev), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	// Every step, in whatever order: the steps of the process and deliver
	// processes reach the owner through live-events in any order (the
	// final one first, under load).
	waitLong(t, 15*time.Second, "the decision, request, attempt and final steps", func() bool {
		seen := map[string]bool{}
		for _, m := range w.all() {
			seen[m.Type] = true
		}
		return seen["decision"] && seen["request"] && seen["attempt"] && seen["final"]
	})
	ids := map[string]string{}
	for _, m := range w.all() {
		ids[m.Type] = m.EventID
	}
	for _, typ := range []string{"decision", "request", "attempt", "final"} {
		if ids[typ] == "" || ids[typ] != ids["received"] {
			t.Errorf("the %s step names the event %q, the received step %q: the page shows it in no row (all: %v)", typ, ids[typ], ids["received"], ids)
		}
	}
}
