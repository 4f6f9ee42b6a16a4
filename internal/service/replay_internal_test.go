package service

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// A rejected event replayed is taken out of the dead-letter view only once
// the pipeline has it: when it cannot be fed (the outbox full until the
// caller gave up, the pipeline closing), it stays where it was instead of
// vanishing.
func TestReplayKeepsRejectWhenFeedFails(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{StateDir: t.TempDir(), AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat,
		AdminEmail: "a@example.com", AdminPassword: "change-me-now"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.closeState()
	s.adminLn.Close()
	s.ingestLn.Close()
	// The pipeline is not started: every feed fails.
	req := httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"B","config":{"application_id":"app-abc123","api_key":"sk-test-123"}}`))
	req.SetPathValue("key", "button")
	rec := httptest.NewRecorder()
	if err := s.install(rec, req); err != nil {
		t.Fatal(err)
	}
	var in struct{ ID string }
	json.Unmarshal(rec.Body.Bytes(), &in)
	ev := `{"type":"track","event":"Order Completed","messageId":"m-1","context":{"consent":{"advertising":true}},"properties":{"total":1,"currency":"USD"}}`
	if err := s.st.AddReject(&store.Reject{IntegrationID: in.ID, Error: "missing_required_field", Fields: []string{"order_id"}, OriginalEvent: json.RawMessage(ev), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	req = httptest.NewRequest("POST", "/", strings.NewReader(`{"all":true}`))
	req.SetPathValue("id", in.ID)
	if err := s.dlqReplay(httptest.NewRecorder(), req); err == nil {
		t.Fatal("replay without a running pipeline succeeded")
	}
	rs, _, err := s.st.ListRejects(in.ID, "", 10)
	if err != nil || len(rs) != 1 {
		t.Fatalf("the reject is gone though its event was never fed: %d rejects, %v", len(rs), err)
	}
}
