package service_test

import (
	"strings"
	"testing"
	"time"
)

// TestServeLiveScrubsOtherIntegrationsSecrets: an event that quotes
// integration A's key (refused for A: it carries A's secret) is evaluated
// for integration B, whose steps the pipeline redacts with B's secrets
// only; its messageId quotes the key too. The live stream scrubs every step with every integration's secrets
// as it writes it (live.Options.Scrub), so A's key is in none of B's
// steps (it was in B's decision and request steps, in the outbox mode and
// Kafka role all; the review of the live bridge found it).
func TestServeLiveScrubsOtherIntegrationsSecrets(t *testing.T) {
	const key = "sk-review-LEAK-42"
	h := startWith(t, options{fastOwner: true})
	tok := h.login()
	if st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": key}}); st != 201 {
		t.Fatalf("install button: %d %v", st, out)
	}
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/webhook/install", tok, map[string]any{"name": "Hook",
		"config": map[string]any{"url": "https://hooks.example.com/x", "authentication": "bearer", "auth_token": "tok-review-other-9"}})
	if st != 201 {
		t.Fatalf("install webhook: %d %v", st, out)
	}
	hook := out["id"].(string)
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)
	w := watchLive(t, h.admin, tok, "")
	ev := strings.Replace(string(order(key+"-9")), `"event":"Order Completed"`, `"event":"Order Completed `+key+`"`, 1)
	if st, out := h.post("/v1/events", pk, sk, []byte(ev), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 15*time.Second, "the webhook's decision and request steps", func() bool {
		var d, r bool
		for _, m := range w.all() {
			d = d || (m.IntegrationID == hook && m.Type == "decision")
			r = r || (m.IntegrationID == hook && m.Type == "request")
		}
		return d && r
	})
	for _, m := range w.all() {
		if strings.Contains(m.Raw, key) {
			t.Errorf("a %s step of %s shows the api_key: %s", m.Type, m.IntegrationID, m.Raw)
		}
		// The messageId quotes the key too: every step names the event
		// by the same scrubbed id, so that the page groups them.
		if m.EventID != "m-***-9" {
			t.Errorf("a %s step of %s names the event %q, want m-***-9", m.Type, m.IntegrationID, m.EventID)
		}
	}
}
