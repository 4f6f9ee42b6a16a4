package service_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service"
)

// integrationsRecords reads the integrations topic's records in order.
func integrationsRecords(t *testing.T, brokers []string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{kafka.IntegrationsTopic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	for len(out) == 0 || len(out) < 2 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		out = append(out, fs.Records()...)
	}
	return out
}

func produceRaw(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestServeKafkaHostileIntegrationsRecords: hostile records on the
// integrations topic (garbage JSON, a tombstone for an unknown ID, a
// record moved to another ID so that its secret does not open, a
// truncated ciphertext) do not refuse a follower's start when the key
// opens the real integrations' secrets: it starts, binds the good one,
// and its /readyz names the bad ones. An old revision produced again
// (a rollback to a rotated-out key) is not applied: the order is sent
// with the current key.
func TestServeKafkaHostileIntegrationsRecords(t *testing.T) {
	h, brokers, tok, pk, sk := splitOwner(t, 1)
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button",
		"config": map[string]any{"application_id": "app-abc123", "api_key": "sk-rolled-back-WRONG"}})
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	id := out["id"].(string)
	if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"config": map[string]any{"api_key": apiKey}}); st != 200 {
		t.Fatalf("PATCH: %d %v", st, out)
	}
	recs := integrationsRecords(t, brokers)
	if len(recs) != 2 {
		t.Fatalf("integrations topic holds %d records, want 2", len(recs))
	}
	rev1 := recs[0].Value
	moved := func(newID string, edit func(*kafka.IntegrationRecord)) *kgo.Record {
		var r kafka.IntegrationRecord
		if err := json.Unmarshal(rev1, &r); err != nil {
			t.Fatal(err)
		}
		r.ID = newID
		if edit != nil {
			edit(&r)
		}
		b, _ := json.Marshal(r)
		return &kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte(newID), Value: b}
	}
	produceRaw(t, brokers,
		&kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte("int_garbage"), Value: []byte(`{"id":"int_garbage","revision_number":"x`)},
		&kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte("int_unknown")}, // tombstone
		moved("int_moved", nil),
		moved("int_trunc", func(r *kafka.IntegrationRecord) { r.Secrets["api_key"] = r.Secrets["api_key"][:10] }),
	)

	var fl []*follower
	for _, role := range []string{"process", "deliver"} {
		svc, err := service.New(followerConfig(t, h, brokers, role, filepath.Join(h.state, "secret.key")))
		if err != nil {
			t.Fatalf("%s: hostile records refused the start: %v", role, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		fl = append(fl, &follower{svc: svc, admin: "http://" + svc.AdminAddr()})
	}
	for _, f := range fl {
		if n := metric(t, f.admin, "blueprint_integrations_bound"); n != 1 {
			t.Errorf("bound %v integrations, want 1", n)
		}
		resp, err := http.Get(f.admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 503 {
			t.Errorf("readyz %d %s, want 503", resp.StatusCode, b)
		}
		for _, want := range []string{"int_garbage", "int_moved", "int_trunc", "offset"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("readyz %s does not name %s", b, want)
			}
		}
	}
	// Fixed by tombstones: ready again.
	produceRaw(t, brokers,
		&kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte("int_garbage")},
		&kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte("int_moved")},
		&kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte("int_trunc")},
	)
	waitLong(t, 10*time.Second, "followers ready", func() bool {
		for _, f := range fl {
			resp, err := http.Get(f.admin + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false
			}
		}
		return true
	})

	// The first revision produced again: a rollback to the old key.
	before := metric(t, fl[0].admin, "blueprint_integrations_topic_offset")
	produceRaw(t, brokers, &kgo.Record{Topic: kafka.IntegrationsTopic, Key: []byte(id), Value: rev1})
	waitLong(t, 10*time.Second, "the rollback read", func() bool {
		return metric(t, fl[0].admin, "blueprint_integrations_topic_offset") > before && metric(t, fl[1].admin, "blueprint_integrations_topic_offset") > before
	})
	if st, out := h.post("/v1/events", pk, sk, order("rb-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 20*time.Second, "rb-1 at Button", func() bool {
		_, ok := h.fake.Order("rb-1")
		return ok || h.fake.Stats().Unauthorized > 0
	})
	if h.fake.Stats().Unauthorized > 0 {
		t.Error("an old revision produced again was applied: the order was sent with the rotated-out key")
	}
}
