package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// newOwner makes (and does not run) a service of role ingest on the state
// at dir (seeded when new is true), for a start that may be refused.
func newOwner(t *testing.T, dir string, brokers []string, seed, takeOver bool) (*service.Service, error) {
	t.Helper()
	if seed {
		seedOwner(t, dir, adminEmail, adminPass)
	}
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	return service.New(service.Config{StateDir: dir, AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat,
		Delivery: delivery.Options{Sender: send.Options{}, Policy: send.Policy{Base: 20 * time.Millisecond, Cap: 50 * time.Millisecond, MaxAttempts: 3}},
		Kafka:    &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1, TakeOver: takeOver}, Logger: testLogger()})
}

// refusedAnotherOwner checks that err is the start refusal ANOTHER_OWNER
// naming owner and saying how to recover.
func refusedAnotherOwner(t *testing.T, svc *service.Service, err error, owner string) {
	t.Helper()
	var se *service.StartError
	if !errors.As(err, &se) || se.Code != "ANOTHER_OWNER" {
		if svc != nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			svc.Run(ctx)
		}
		t.Fatalf("second owner's start: %v, want a StartError ANOTHER_OWNER", err)
	}
	if !strings.Contains(se.Message, owner) || !strings.Contains(se.Message, "--kafka-take-over") {
		t.Errorf("the refusal does not name the owner %s and --kafka-take-over: %s", owner, se.Message)
	}
}

// topicRec is a record of the integrations topic: key, tombstone, owner
// header, take-over header.
type topicRec struct {
	key, owner string
	tomb, take bool
}

func integrationsTopic(t *testing.T, brokers []string) []topicRec {
	t.Helper()
	var out []topicRec
	for _, r := range kafkatest.ReadAll(t, brokers, false)[kafka.IntegrationsTopic] {
		tr := topicRec{key: string(r.Key), tomb: r.Value == nil}
		for _, h := range r.Headers {
			switch h.Key {
			case kafka.OwnerHeader:
				tr.owner = string(h.Value)
			case kafka.TakeOverHeader:
				tr.take = string(h.Value) == "1"
			}
		}
		out = append(out, tr)
	}
	return out
}

// last is the newest record of key (zero: none).
func last(recs []topicRec, key string) topicRec {
	var l topicRec
	for _, r := range recs {
		if r.key == key {
			l = r
		}
	}
	return l
}

func readyz(t *testing.T, base string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestServeKafkaSecondOwnerRefused: a second process owning another state
// on the cluster of a running owner refuses to start (ANOTHER_OWNER,
// naming the owner and --kafka-take-over) and publishes nothing: the first
// owner's integration stays on the topic, and the followers go on
// delivering with its config.
func TestServeKafkaSecondOwnerRefused(t *testing.T) {
	h, brokers, tok, pk, sk := splitOwner(t, 1)
	id := installButton(t, h, tok, "Button", apiKey)
	startFollower(t, h, brokers, "process")
	del := startFollower(t, h, brokers, "deliver")
	before := integrationsTopic(t, brokers)
	owner := last(before, id).owner
	if !strings.HasPrefix(owner, "own_") || last(before, id).tomb {
		t.Fatalf("the install's record: %+v, want one stamped with the owner", last(before, id))
	}

	svc, err := newOwner(t, t.TempDir(), brokers, true, false)
	refusedAnotherOwner(t, svc, err, owner)

	if after := integrationsTopic(t, brokers); len(after) != len(before) {
		t.Errorf("the refused owner published: %+v, before %+v", after, before)
	}
	if st, _ := readyz(t, h.admin); st != 200 {
		t.Errorf("the first owner's readyz: %d", st)
	}
	if st, out := h.post("/v1/events", pk, sk, order("own-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 30*time.Second, "own-1 at the fake Button", func() bool { _, ok := h.fake.Order("own-1"); return ok })
	if st, _ := readyz(t, del.admin); st != 200 || metric(t, del.admin, "blueprint_integrations_bound") != 1 {
		t.Errorf("the deliver follower: readyz %d, %v bound", st, metric(t, del.admin, "blueprint_integrations_bound"))
	}

	// Another state that does publish (two owners started together on an
	// empty topic): its tombstone of the first owner's integration is not
	// applied by the followers, which say so; the first owner stops
	// publishing; the orders are still delivered with its config.
	pub, err := kafka.NewConfigPublisher(kafka.Config{Brokers: brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Owner = "own_intruder"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pub.Publish(ctx, nil, []string{id}); err != nil {
		t.Fatal(err)
	}
	waitLong(t, 10*time.Second, "the follower's readyz 503", func() bool { st, _ := readyz(t, del.admin); return st == 503 })
	if _, body := readyz(t, del.admin); body["code"] != "ANOTHER_OWNER" || !strings.Contains(body["reason"], "own_intruder") {
		t.Errorf("follower readyz: %v", body)
	}
	if metric(t, del.admin, "blueprint_integrations_bound") != 1 || metric(t, del.admin, "blueprint_integrations_topic_other_owner") != 1 {
		t.Errorf("follower: %v bound, other_owner %v; want 1 and 1", metric(t, del.admin, "blueprint_integrations_bound"), metric(t, del.admin, "blueprint_integrations_topic_other_owner"))
	}
	waitLong(t, 10*time.Second, "the owner's readyz 503", func() bool { st, _ := readyz(t, h.admin); return st == 503 })
	if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"name": "Button EU"}); st != 503 || errCode(out) != "ANOTHER_OWNER" {
		t.Errorf("PATCH on the owner: %d %v, want 503 ANOTHER_OWNER", st, out)
	}
	if st, out := h.post("/v1/events", pk, sk, order("own-2"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 30*time.Second, "own-2 at the fake Button", func() bool { _, ok := h.fake.Order("own-2"); return ok })

	// The owner restarted is refused (the intruder published after it);
	// with --kafka-take-over it takes its own topic back: its records
	// replace the intruder's, the follower is ready again.
	h.stop()
	svc, err = newOwner(t, h.state, brokers, false, false)
	refusedAnotherOwner(t, svc, err, "own_intruder")
	h2 := startWith(t, options{state: h.state, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1, TakeOver: true}})
	if l := last(integrationsTopic(t, brokers), id); l.tomb || !l.take || l.owner != owner {
		t.Errorf("after taking its topic back, the newest record of %s is %+v", id, l)
	}
	waitLong(t, 10*time.Second, "the follower's readyz 200", func() bool { st, _ := readyz(t, del.admin); return st == 200 })
	time.Sleep(200 * time.Millisecond) // the owner reads its take-over back
	if st, body := readyz(t, h2.admin); st != 200 {
		t.Errorf("the owner after taking its topic back: %d %v", st, body)
	}
	if st, out, _ := h2.call("PATCH", "/v1/admin/integrations/"+id, h2.login(), map[string]any{"name": "Button EU"}); st != 200 {
		t.Errorf("PATCH after taking the topic back: %d %v", st, out)
	}
}

// TestServeKafkaTakeOver: a second state started with --kafka-take-over
// becomes the owner: its records are stamped as a take-over, the first
// state's integration is tombstoned, the follower follows it. The first
// owner, still running, stops publishing (its readyz 503 ANOTHER_OWNER, a
// metric, a change answered 503 and not published) and, restarted, is
// refused; the new owner restarts without the flag.
func TestServeKafkaTakeOver(t *testing.T) {
	a, brokers, tok, _, _ := splitOwner(t, 1)
	idA := installButton(t, a, tok, "Button", apiKey)
	del := startFollower(t, a, brokers, "deliver")
	if n := metric(t, del.admin, "blueprint_integrations_bound"); n != 1 {
		t.Fatalf("deliver follower binds %v, want 1", n)
	}
	ownerA := last(integrationsTopic(t, brokers), idA).owner

	// The new owner's state has the deployment's key (the followers'
	// --secret-key-file): with another, they could not open its secrets.
	stateB := t.TempDir()
	key, err := os.ReadFile(filepath.Join(a.state, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stateB, "secret.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	seedOwner(t, stateB, adminEmail, adminPass)
	b := startWith(t, options{state: stateB, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1, TakeOver: true}})
	recs := integrationsTopic(t, brokers)
	tomb := last(recs, idA)
	if !tomb.tomb || !tomb.take || tomb.owner == ownerA || !strings.HasPrefix(tomb.owner, "own_") {
		t.Fatalf("after the take-over the newest record of %s is %+v, want a tombstone stamped as a take-over by the new owner", idA, tomb)
	}
	ownerB := tomb.owner
	waitLong(t, 10*time.Second, "the follower to drop the first owner's integration", func() bool {
		return metric(t, del.admin, "blueprint_integrations_bound") == 0
	})

	// The first owner sees the take-over and stops publishing.
	waitLong(t, 10*time.Second, "the first owner's readyz 503", func() bool { st, _ := readyz(t, a.admin); return st == 503 })
	if _, body := readyz(t, a.admin); body["code"] != "ANOTHER_OWNER" || !strings.Contains(body["reason"], ownerB) {
		t.Errorf("first owner's readyz: %v", body)
	}
	if v := metric(t, a.admin, "blueprint_integrations_topic_other_owner"); v != 1 {
		t.Errorf("first owner's other_owner metric %v, want 1", v)
	}
	if st, out, _ := a.call("PATCH", "/v1/admin/integrations/"+idA, tok, map[string]any{"name": "Button EU"}); st != 503 || errCode(out) != "ANOTHER_OWNER" {
		t.Errorf("PATCH on the first owner: %d %v, want 503 ANOTHER_OWNER", st, out)
	}
	if l := last(integrationsTopic(t, brokers), idA); l != tomb {
		t.Errorf("the first owner published after the take-over: %+v", l)
	}
	if st, body := readyz(t, del.admin); st != 200 || metric(t, del.admin, "blueprint_integrations_topic_other_owner") != 0 {
		t.Errorf("the follower after a take-over: readyz %d %v", st, body)
	}
	if st, _ := readyz(t, b.admin); st != 200 {
		t.Errorf("the new owner's readyz: %d", st)
	}

	// The new owner's integrations reach the follower.
	tokB := b.login()
	if st, out, _ := b.call("POST", "/v1/admin/integration-catalog/button/install", tokB, map[string]any{"name": "Button B", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}}); st != 201 {
		t.Fatalf("install on the new owner: %d %v", st, out)
	}
	waitLong(t, 10*time.Second, "the follower to bind the new owner's integration", func() bool {
		return metric(t, del.admin, "blueprint_integrations_bound") == 1
	})

	// Restarted, the first owner is refused; the new one starts without
	// the flag.
	a.stop()
	svc, err := newOwner(t, a.state, brokers, false, false)
	refusedAnotherOwner(t, svc, err, ownerB)
	b.stop()
	svc, err = newOwner(t, stateB, brokers, false, false)
	if err != nil {
		t.Fatalf("the new owner restarted without --kafka-take-over: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := svc.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestServeKafkaOwnerUpgrade: records of an earlier release (no owner
// header) are the owner's history: the owner upgraded in place starts,
// and publishes its integrations again, stamped, so that a second state
// started afterwards is refused.
func TestServeKafkaOwnerUpgrade(t *testing.T) {
	c1, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c1.Close)
	a := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c1.ListenAddrs(), Role: "ingest", Partitions: 1}})
	tok := a.login()
	id := installButton(t, a, tok, "Button", apiKey)
	a.stop()
	// The topic as the earlier release left it: the same records, no
	// header (copied to a new cluster).
	c2, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)
	brokers := c2.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := kafka.EnsureIntegrationsTopic(ctx, kafka.Config{Brokers: brokers}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, r := range kafkatest.ReadAll(t, c1.ListenAddrs(), false)[kafka.IntegrationsTopic] {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.IntegrationsTopic, Key: r.Key, Value: r.Value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	old := integrationsTopic(t, brokers)
	if len(old) == 0 || last(old, id).owner != "" {
		t.Fatalf("the old topic: %+v", old)
	}

	svc, err := newOwner(t, a.state, brokers, false, false)
	if err != nil {
		t.Fatalf("the owner upgraded in place: %v, want a start", err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := svc.Run(ctx2); err != nil {
		t.Fatal(err)
	}
	now := integrationsTopic(t, brokers)
	l := last(now, id)
	if len(now) != len(old)+1 || l.tomb || l.take || !strings.HasPrefix(l.owner, "own_") {
		t.Fatalf("after the upgraded start: %+v, want the integration published again, stamped", now)
	}
	svc, err = newOwner(t, t.TempDir(), brokers, true, false)
	refusedAnotherOwner(t, svc, err, l.owner)
}

// TestServeKafkaCopiedState: a copy of a running owner's state directory
// started on the same cluster has the same owner ID, so it starts; at the
// first change one of them publishes, the other sees a record of its
// owner ID from another instance and stops publishing (readyz 503
// ANOTHER_OWNER), so the two never fight.
func TestServeKafkaCopiedState(t *testing.T) {
	a, brokers, tok, _, _ := splitOwner(t, 1)
	id := installButton(t, a, tok, "Button", apiKey)
	stateC := t.TempDir()
	for _, f := range []string{"service.db", "secret.key"} {
		b, err := os.ReadFile(filepath.Join(a.state, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stateC, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	n := len(integrationsTopic(t, brokers))
	c := startWith(t, options{state: stateC, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1}})
	if got := len(integrationsTopic(t, brokers)); got != n {
		t.Errorf("the copy published %d records at start, want none (the same state)", got-n)
	}
	if st, out, _ := c.call("PATCH", "/v1/admin/integrations/"+id, c.login(), map[string]any{"name": "Button EU"}); st != 200 {
		t.Fatalf("PATCH on the copy: %d %v", st, out)
	}
	waitLong(t, 10*time.Second, "the first process's readyz 503", func() bool { st, _ := readyz(t, a.admin); return st == 503 })
	if _, body := readyz(t, a.admin); body["code"] != "ANOTHER_OWNER" || !strings.Contains(body["reason"], "copy of this state") {
		t.Errorf("readyz: %v", body)
	}
	if st, out, _ := a.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"name": "Button US"}); st != 503 || errCode(out) != "ANOTHER_OWNER" {
		t.Errorf("PATCH on the first process: %d %v, want 503 ANOTHER_OWNER", st, out)
	}
	if st, _ := readyz(t, c.admin); st != 200 {
		t.Errorf("the copy's readyz: %d", st)
	}
}
