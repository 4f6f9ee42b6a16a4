package service

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// TestLiveStepsBeforeTheDecision: the worker may attempt an item, and
// settle it, before the feeder reports the decision (it does so once the
// whole batch is in the outbox). The attempt and final steps still name
// the event, and nothing is kept for the item once it is final.
func TestLiveStepsBeforeTheDecision(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	// A state with a user already (nobody logs in: no bcrypt hash needed).
	dir := t.TempDir()
	key, err := store.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "service.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	err = st.CreateUser(&store.User{Email: "admin@example.com", PasswordHash: "-", Role: "owner"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{StateDir: dir, AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	defer s.closeState()
	ch, cancel := s.hub.Subscribe("")
	defer cancel()
	now := time.Now()
	it := &outbox.Item{ID: "it_1", Integration: "int_1", Blueprint: "button", Event: []byte(`{"type":"track","messageId":"m-early"}`),
		MessageID: "m-early", State: outbox.Pending, CreatedAt: now, NextAt: now, UpdatedAt: now}
	if _, err := s.box.Enqueue(context.Background(), []*outbox.Item{it}); err != nil {
		t.Fatal(err)
	}
	next := func() string {
		select {
		case m := <-ch:
			return m.Type + " " + m.EventID
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
			return ""
		}
	}
	s.Attempt(send.AttemptInfo{Item: "it_1", Integration: "int_1", Status: 200, Outcome: "delivered"})
	if got := next(); got != "attempt m-early" {
		t.Errorf("attempt before the decision: %q", got)
	}
	// Delivered: the outbox no longer holds the event.
	it.State, it.Event = outbox.Delivered, nil
	if err := s.box.Update(context.Background(), it); err != nil {
		t.Fatal(err)
	}
	s.Final(send.FinalInfo{Item: "it_1", Integration: "int_1", State: outbox.Delivered, Status: 200, MessageID: "m-early", At: now})
	if got := next(); got != "final m-early" {
		t.Errorf("final before the decision: %q", got)
	}
	n := 0
	s.items.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d items still mapped after their final step", n)
	}
}
