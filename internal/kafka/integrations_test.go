package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/delivery/deliverytest"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// TestEnsureIntegrationsTopic: created with one partition and
// cleanup.policy=compact, left alone when it exists as it must, and
// refused (saying how to fix it) with more partitions or a deleting
// policy.
func TestEnsureIntegrationsTopic(t *testing.T) {
	cfg, _ := fakeCluster(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 { // the second finds it and checks it
		if err := EnsureIntegrationsTopic(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := cfg.client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, IntegrationsTopic)
	if err != nil || len(tds[IntegrationsTopic].Partitions) != 1 {
		t.Fatalf("topic: %v %v", tds, err)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, IntegrationsTopic)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On(IntegrationsTopic, nil)
	policy := ""
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" {
			policy = c.MaybeValue()
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}

	// A topic made by hand the wrong way is refused.
	for name, tc := range map[string]struct {
		parts  int32
		policy string
		want   string
	}{
		"partitions": {3, "compact", "has 3 partitions; it must have 1"},
		"policy":     {1, "delete", "cleanup.policy=delete; it must be compact"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			if err := c.CreateTopic(IntegrationsTopic, tc.parts, map[string]string{"cleanup.policy": tc.policy}); err != nil {
				t.Fatal(err)
			}
			err = EnsureIntegrationsTopic(ctx, Config{Brokers: c.ListenAddrs()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func configCluster(t *testing.T) Config {
	t.Helper()
	cfg, _ := fakeCluster(t, 1, intID)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureIntegrationsTopic(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestConfigReader: CatchUp returns the newest record of each
// integration (a tombstone removes it, an unreadable value is an entry
// with Err), and Follow applies what comes later.
func TestConfigReader(t *testing.T) {
	cfg := configCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	empty, err := NewConfigReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer empty.Close()
	if es, next, err := empty.CatchUp(ctx); err != nil || len(es) != 0 || next != 0 {
		t.Fatalf("CatchUp of an empty topic: %v %d %v", es, next, err)
	}

	pub, err := NewConfigPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rec := func(id string, rev int) IntegrationRecord {
		return IntegrationRecord{ID: id, Vendor: "button", Version: "0.1.0", Variant: "default", Revision: rev, Enabled: true, Config: json.RawMessage(`{}`)}
	}
	next, err := pub.Publish(ctx, []IntegrationRecord{rec("int_a", 1), rec("int_b", 1), rec("int_a", 2)}, nil)
	if err != nil || next != 3 {
		t.Fatalf("Publish: %d %v", next, err)
	}
	if next, err = pub.Publish(ctx, nil, []string{"int_b"}); err != nil || next != 4 {
		t.Fatalf("Publish tombstone: %d %v", next, err)
	}
	raw, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.ProduceSync(ctx, &kgo.Record{Topic: IntegrationsTopic, Key: []byte("int_c"), Value: []byte("not json")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	rd, err := NewConfigReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	es, at, err := rd.CatchUp(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if at != 5 || len(es) != 2 || es["int_a"].Record.Revision != 2 || es["int_a"].Err != nil || es["int_c"].Err == nil {
		t.Fatalf("CatchUp: at %d, %+v", at, es)
	}

	got := make(chan int64, 10)
	fctx, fcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- rd.Follow(fctx, func(es map[string]ConfigEntry, at int64) {
			if _, ok := es["int_d"]; ok {
				got <- at
			}
		})
	}()
	if _, err := pub.Publish(ctx, []IntegrationRecord{rec("int_d", 1)}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-got:
		if at != 6 {
			t.Errorf("Follow applied up to %d, want 6", at)
		}
	case <-ctx.Done():
		t.Fatal("Follow never applied the new record")
	}
	fcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestProcessorWaitsForConfig: an event accepted after a config change
// (its ConfigHeader past what the registry applied) is not evaluated
// until the registry has applied the change, nor while an enabled
// integration cannot be bound: it is held, uncommitted, and then
// delivered to the integration it was meant for, never dropped.
func TestProcessorWaitsForConfig(t *testing.T) {
	cfg := configCluster(t)
	full := registry(t)
	reg := NewRegistry()
	reg.SetAt(0, nil) // followed, nothing applied yet
	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	publishN(t, cfg, 1)
	ing.SetConfigOffset(1) // the install was published at offset 0
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ing.Ingest(ctx, order("wait-1", 1)); err != nil {
		t.Fatal(err)
	}
	old := configWait
	configWait = 50 * time.Millisecond
	t.Cleanup(func() { configWait = old })
	var logs syncBuffer
	proc := NewProcessor(ProcessorOptions{Config: cfg, Registry: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, proc.Run)

	// The processor has the event and says why it holds it.
	held := func(why string) {
		t.Helper()
		waitFor(t, "the processor to hold the event ("+why+")", func() bool { return strings.Contains(logs.String(), why) })
		if n := proc.Stats.Events.Load(); n != 0 {
			t.Fatalf("%s: %d events evaluated, want 0 (held)", why, n)
		}
	}
	held("applied up to offset 0 here, and the events need 1")
	reg.SetAt(1, errors.New("integration int_x: its blueprint is not in this binary's catalog"))
	held("its blueprint is not in this binary's catalog")
	reg.SetAt(1, nil, full.Bindings()...)
	waitFor(t, "the held event evaluated", func() bool { return proc.Stats.Requests.Load() == 1 })

	// A registry filled by Set waits for nothing.
	if err := NewRegistry().WaitConfig(ctx, 99); err != nil {
		t.Errorf("WaitConfig of a Set registry: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer wcancel()
	if err := reg.WaitConfig(wctx, 5); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "applied up to offset 1 here, and the events need 5") {
		t.Errorf("WaitConfig behind: %v", err)
	}
}

// publishN publishes n records of the integration to the integrations
// topic (an install, then changes): a config-offset header up to n is one a
// publisher may have stamped (one beyond the topic's end is not waited
// for: TestBogusConfigOffset).
func publishN(t *testing.T, cfg Config, n int) {
	t.Helper()
	pub, err := NewConfigPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		if _, err := pub.Publish(ctx, []IntegrationRecord{{ID: intID, Vendor: "button", Revision: i + 1, Config: json.RawMessage(`{}`)}}, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is a bytes.Buffer for a logger written from goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDelivererWaitsForConfig: a request whose event was accepted under a
// config this deliverer has not applied yet (a key rotated just before
// the event) is held, not sent with the old key; once the rotation is
// applied it is sent, with the new key, once.
func TestDelivererWaitsForConfig(t *testing.T) {
	cfg := configCluster(t)
	v := newVendor(t)
	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	publishN(t, cfg, 2)
	ing.SetConfigOffset(2) // the rotation was published at offset 1
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ing.Ingest(ctx, order("rotated-1", 1)); err != nil {
		t.Fatal(err)
	}
	run(t, NewProcessor(ProcessorOptions{Config: cfg, Registry: registry(t)}).Run) // the owner's: current

	reg := NewRegistry()
	reg.SetAt(1, nil, deliverytest.BindButton(t, intID, "sk-old-WRONG-0001")) // before the rotation
	var logs syncBuffer
	del := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: send.New(send.Options{VendorURL: v.url}),
		Policy: fastPolicy(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	run(t, del.Run)
	heldUntilConfig(t, v, del, reg, &logs, "the request")
}

// TestReplayWaitsForConfig: the README's repair with split roles, "PATCH
// the key, then replay", when the deliver process has not read the PATCH
// yet. The owner's replay stamps its delivery records with the
// integrations topic's end as it last published it (DLQIndexOptions.
// ConfigOffset), as ingest stamps raw-events: the deliverer holds the
// replayed request until it has applied the rotation, then sends it once
// with the new key. Unstamped, it was sent at once with the old key and
// died again (401).
func TestReplayWaitsForConfig(t *testing.T) {
	cfg := configCluster(t)
	v := newVendor(t)
	publishN(t, cfg, 2) // the rotation was published at offset 1
	dead, err := json.Marshal(DeadRecord{
		RejectRecord: delivery.RejectRecord{Error: ErrorDeliveryFailed, Details: "bad api_key (Button answered 401 Unauthorized)",
			Fields: []string{}, IntegrationID: intID, OriginalEvent: order("replayed-1", 1)},
		Kind: KindDelivery, ItemID: "item-replayed-1", Status: 401, Attempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, cfg, &kgo.Record{Topic: DLQEvents, Key: []byte("u-1"), Value: dead})
	x, err := OpenDLQIndex(DLQIndexOptions{Config: cfg, Path: filepath.Join(t.TempDir(), DLQIndexFile), ConfigOffset: func() int64 { return 2 }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	run(t, x.Run)

	reg := NewRegistry()
	reg.SetAt(1, nil, deliverytest.BindButton(t, intID, "sk-old-WRONG-0001")) // before the rotation
	var logs syncBuffer
	del := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: send.New(send.Options{VendorURL: v.url}),
		Policy: fastPolicy(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	run(t, del.Run)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := x.Replay(ctx, registry(t).Bindings()[0], nil, time.Now()) // the owner's binding: the new key
	if err != nil || res.Replayed != 1 {
		t.Fatalf("replay: %+v, %v", res, err)
	}
	heldUntilConfig(t, v, del, reg, &logs, "the replayed request")
}

// heldUntilConfig checks that del holds what (a request stamped with
// config offset 2) and sends nothing while reg is at offset 1, then, once
// reg applies offset 2 (the rotated key), delivers it once, without a 401.
func heldUntilConfig(t *testing.T, v *vendor, del *Deliverer, reg *StaticRegistry, logs *syncBuffer, what string) {
	t.Helper()
	waitFor(t, "the deliverer to hold "+what, func() bool { return strings.Contains(logs.String(), "request held") })
	time.Sleep(300 * time.Millisecond) // a few rechecks
	if st := v.fb.Stats(); st.Requests != 0 || del.Stats.Attempts.Load() != 0 {
		t.Fatalf("%s sent before the config it was stamped with: %+v", what, st)
	}
	reg.SetAt(2, nil, registry(t).Bindings()...)
	waitFor(t, what+" delivered", func() bool { return del.Stats.Delivered.Load() == 1 })
	if st := v.fb.Stats(); st.Created != 1 || st.Unauthorized != 0 {
		t.Errorf("vendor: %+v; want one order, no 401", st)
	}
}
