package service_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// TestServeKafkaRekey: after an offline rekey of the owner's state, the
// integrations topic still holds records sealed with the old key: a
// follower given the new key refuses to start (SECRET_KEY_MISMATCH)
// rather than apply them. The owner, restarted with the new key,
// publishes every integration sealed with it; then followers with the
// new key start, and the install's api_key reaches the vendor through
// the deliver role; a follower with the old key is refused.
func TestServeKafkaRekey(t *testing.T) {
	brokers := kafkaCluster(t)
	kc := func() *service.KafkaConfig {
		return &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1}
	}
	h := startWith(t, options{fastOwner: true, kafka: kc()})
	tok := h.login()
	if st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}}); st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)
	h.stop()

	keyPath := filepath.Join(h.state, "secret.key")
	oldCopy := filepath.Join(t.TempDir(), "old.key")
	oldKey, err := store.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceKey(oldCopy, oldKey); err != nil {
		t.Fatal(err)
	}
	newPath := filepath.Join(t.TempDir(), "new.key")
	newKey, err := store.LoadOrCreateKey(newPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Rekey(filepath.Join(h.state, "service.db"), oldKey, newKey, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceKey(keyPath, newKey); err != nil {
		t.Fatal(err)
	}

	refused := func(h *harness, keyFile string) {
		t.Helper()
		_, err := service.New(followerConfig(t, h, brokers, "deliver", keyFile))
		var se *service.StartError
		if !errors.As(err, &se) || se.Code != "SECRET_KEY_MISMATCH" {
			t.Fatalf("follower with %s: %v, want SECRET_KEY_MISMATCH", keyFile, err)
		}
	}
	// The topic is still sealed with the old key: the new one is refused.
	refused(h, newPath)

	h2 := startWith(t, options{state: h.state, kafka: kc()})
	// Republished at start: the old key no longer opens the topic.
	refused(h2, oldCopy)
	for _, role := range []string{"process", "deliver"} {
		svc, err := service.New(followerConfig(t, h2, brokers, role, newPath))
		if err != nil {
			t.Fatalf("%s with the new key: %v", role, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", role, err)
			}
		})
	}
	if st, out := h2.post("/v1/events", pk, sk, order("rekey-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 30*time.Second, "rekey-1 at the fake Button", func() bool { _, ok := h2.fake.Order("rekey-1"); return ok })
}
