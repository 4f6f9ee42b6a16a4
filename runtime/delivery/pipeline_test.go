package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// recorder collects what a pipeline reports.
type recorder struct {
	mu        sync.Mutex
	decisions []delivery.Decision
	attempts  []send.AttemptInfo
	finals    []send.FinalInfo
	rejects   []delivery.RejectRecord
}

func (r *recorder) Attempt(a send.AttemptInfo) {
	r.mu.Lock()
	r.attempts = append(r.attempts, a)
	r.mu.Unlock()
}
func (r *recorder) Final(f send.FinalInfo) {
	r.mu.Lock()
	r.finals = append(r.finals, f)
	r.mu.Unlock()
}
func (r *recorder) Reject(rec delivery.RejectRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejects = append(r.rejects, rec)
	return nil
}
func (r *recorder) decide(d delivery.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d.Event = bytes.Clone(d.Event) // valid during the call only
	r.decisions = append(r.decisions, d)
}

func (r *recorder) options(o delivery.Options) delivery.Options {
	o.Metrics, o.Rejects, o.OnDecision = r, r, r.decide
	return o
}

// Every kind of event through Run: each one's fate is reported (decision,
// attempts and final state by item ID, rejects in the dlq-events shape
// with secrets redacted) and counted.
func TestRunReportsEveryEvent(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-run-key"})
	b := bind(t, "retail", "sk-run-key")
	q := outbox.NewMemory()
	rec := &recorder{}
	opts := rec.options(fastOptions(vendor))
	opts.MaxEventSize = 2000
	p, err := delivery.New(q, opts, b)
	if err != nil {
		t.Fatal(err)
	}
	input := strings.Join([]string{
		order(1),
		cart(2),
		`{"type":"page","name":"Home"}`, // skip event_not_mapped
		`{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"total":5,"currency":"USD","note":"sk-run-key","products":[{"sku":"s","price":5}]}}`, // reject, carrying the key
		`{"type":"track","event":"Order Com`,                                                 // malformed
		`{"type":"track","event":"Order Completed","x":"` + strings.Repeat("a", 3000) + `"}`, // over the limit
		`{"type":"track","event":"Product Added","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"product_id":"p","price":1,"note":"sk-run-key"}}`, // carries the key: not stored
		order(1), // the same event again: sent once, counted twice
	}, "\n")
	sum, err := p.Run(context.Background(), strings.NewReader(input))
	if err != nil {
		t.Fatal(err)
	}
	want := delivery.Summary{Events: 8, Delivered: 3, Skipped: 1, Rejected: 4}
	if sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	if st := srv.Stats(); st.Requests != 2 {
		t.Errorf("the fake got %d requests, want 2", st.Requests)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.decisions) != 8 {
		t.Fatalf("%d decisions", len(rec.decisions))
	}
	outcomes := []runtime.Outcome{runtime.Deliver, runtime.Deliver, runtime.Skip, runtime.Reject, runtime.Reject, runtime.Reject, runtime.Reject, runtime.Deliver}
	for i, d := range rec.decisions {
		if d.Result.Outcome != outcomes[i] || d.Integration != b.Name || d.In != b.Integration {
			t.Errorf("decision %d: %s %s %s", i, d.Integration, d.Result.Outcome, d.Result.Reason)
		}
	}
	first, again := rec.decisions[0], rec.decisions[7]
	if len(first.Items) != 1 || len(again.Items) != 1 || first.Items[0].ID != again.Items[0].ID || !bytes.Equal(first.Event, []byte(order(1))) {
		t.Errorf("the same event twice is not the same item: %+v %+v", first.Items, again.Items)
	}
	if rec.decisions[5].Event != nil || !strings.Contains(rec.decisions[5].Result.Message, "the limit is 2000") {
		t.Errorf("over the limit: %+v", rec.decisions[5].Result)
	}
	ids := map[string]bool{first.Items[0].ID: true, rec.decisions[1].Items[0].ID: true}
	if len(rec.finals) != 2 || len(rec.attempts) != 2 {
		t.Fatalf("finals %+v attempts %+v", rec.finals, rec.attempts)
	}
	for i, f := range rec.finals {
		if !ids[f.Item] || f.State != outbox.Delivered || f.Integration != b.Name || f.Attempts != 1 || f.Status != 200 || !ids[rec.attempts[i].Item] {
			t.Errorf("final %+v, attempt %+v", f, rec.attempts[i])
		}
	}
	if len(rec.rejects) != 4 {
		t.Fatalf("%d rejects", len(rec.rejects))
	}
	blob, _ := json.Marshal(rec.rejects)
	if bytes.Contains(blob, []byte("sk-run-key")) {
		t.Errorf("a reject holds the key: %s", blob)
	}
	for i, r := range rec.rejects {
		if r.IntegrationID != b.Name || r.Error == "" || r.Details == "" {
			t.Errorf("reject %d: %+v", i, r)
		}
	}
	if r := rec.rejects[0]; r.Error != "missing_required_field" || r.Fields[0] != "order_id" || !strings.HasPrefix(string(r.OriginalEvent), `{"type":"track"`) {
		t.Errorf("missing order_id: %+v %s", r, r.OriginalEvent)
	}
	if r := rec.rejects[1]; r.Error != "invalid_event" || !strings.HasPrefix(string(r.OriginalEvent), `"{\"type\"`) {
		t.Errorf("malformed, kept as text: %+v %s", r, r.OriginalEvent)
	}
	if r := rec.rejects[2]; string(r.OriginalEvent) != "null" {
		t.Errorf("too large, not kept: %s", r.OriginalEvent)
	}
	if r := rec.rejects[3]; r.Error != "invalid_event" || !strings.Contains(r.Details, "carries a secret config value") {
		t.Errorf("carrying the key: %+v", r)
	}
}

// One pipeline, two integrations: every event is evaluated for each, and
// each integration's requests are delivered with its own config.
func TestFeedSeveralIntegrations(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-two"})
	retail, def := bind(t, "retail", "sk-two"), bind(t, "default", "sk-two")
	q := outbox.NewMemory()
	rec := &recorder{}
	p, err := delivery.New(q, rec.options(fastOptions(vendor)), retail, def)
	if err != nil {
		t.Fatal(err)
	}
	if names := p.Bindings(); strings.Join(names, ",") != "button@0.1.0/default,button@0.1.0/retail" {
		t.Errorf("bindings %v", names)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Feed(ctx, []byte(order(1)), []byte(cart(2))); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// The order for both (one Button order: the second create is a 409,
	// delivered); the add-to-cart for retail only (default skips it).
	if sum := p.Summary(); sum.Delivered != 3 || sum.Skipped != 1 || sum.Events != 2 || sum.Pending != 0 {
		t.Errorf("summary %+v", sum)
	}
	if got := len(srv.Orders()); got != 1 {
		t.Errorf("%d orders", got)
	}
	seen := map[string]int{}
	for _, f := range rec.finals {
		seen[f.Integration]++
	}
	if seen[retail.Name] != 2 || seen[def.Name] != 1 {
		t.Errorf("finals by integration %v", seen)
	}
	if _, err := delivery.New(q, delivery.Options{}, retail, retail); err == nil {
		t.Error("two bindings of one name were taken")
	}
}

// Regression (issue #10): a request already final from an earlier run is
// counted apart, never as delivered by this one; the same event twice in
// one input is this run's, counted twice.
func TestRunCountsAlreadyFinalApart(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-again"})
	b := bind(t, "retail", "sk-again")
	q := outbox.NewMemory()
	input, _, _ := events(30)
	run := func(input []byte) delivery.Summary {
		t.Helper()
		p, err := delivery.New(q, fastOptions(vendor), b)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := p.Run(context.Background(), bytes.NewReader(input))
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	if sum := run(append(input, input...)); sum.Delivered != 60 || sum.Already() != 0 {
		t.Errorf("first run %+v: want 60 delivered (30 events twice)", sum)
	}
	sum := run(input)
	if sum.Delivered != 0 || sum.AlreadyDelivered != 30 || sum.String() != "0 delivered, 0 skipped, 0 rejected, 0 dead-lettered" {
		t.Errorf("second run %+v", sum)
	}
}

// Regression (issue #11 finding 10): Drain waits for the pipeline's own
// requests, not for another integration's retry that is not due.
func TestDrainWaitsOnlyForItsOwn(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-own"})
	b := bind(t, "retail", "sk-own")
	q := outbox.NewMemory()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now := time.Now()
	if _, err := q.Enqueue(ctx, []*outbox.Item{{ID: "later", Integration: "button@0.1.0/default", Event: []byte(order(9)),
		State: outbox.Pending, Attempts: 1, CreatedAt: now, UpdatedAt: now, NextAt: now.Add(30 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	p, err := delivery.New(q, fastOptions(vendor), b)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, err := p.Run(ctx, strings.NewReader(order(1)))
	if err != nil || sum.Delivered != 1 || sum.Pending != 0 || sum.Interrupted {
		t.Fatalf("%+v %v", sum, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %v: it waited for another integration's retry", took)
	}
}

// slowQueue is a queue whose Enqueue records how many requests were
// pending before it.
type slowQueue struct {
	outbox.Store
	mu         sync.Mutex
	maxPending int
}

func (q *slowQueue) Enqueue(ctx context.Context, items []*outbox.Item) ([]*outbox.Item, error) {
	counts, err := q.Counts(ctx)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	q.maxPending = max(q.maxPending, counts[outbox.Pending])
	q.mu.Unlock()
	return q.Store.Enqueue(ctx, items)
}

// With MaxPending, feeding waits for requests to be final: the outbox
// never holds more pending than that, retries included, and nothing is
// lost or stuck (an event repeated in the input is one request).
func TestBackpressure(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-bp", ErrorRate: 0.3, Latency: time.Millisecond, Seed: 5})
	b := bind(t, "retail", "sk-bp")
	q := &slowQueue{Store: outbox.NewMemory()}
	opts := fastOptions(vendor)
	opts.MaxPending = 3
	p, err := delivery.New(q, opts, b)
	if err != nil {
		t.Fatal(err)
	}
	input, _, _ := events(40)
	sum, err := p.Run(context.Background(), bytes.NewReader(append(input, input...)))
	if err != nil || sum.Delivered != 80 {
		t.Fatalf("%+v %v", sum, err)
	}
	if q.maxPending > 3 {
		t.Errorf("%d requests pending with MaxPending 3", q.maxPending)
	}
	if srv.Stats().ServerErrors == 0 {
		t.Error("no retries exercised")
	}
}

// Feed's ctx done while it waits for room: nothing of its events is kept
// or counted; after Drain, Feed and Replay refuse.
func TestFeedGivesUpWithItsContext(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-wait", Latency: 50 * time.Millisecond})
	b := bind(t, "retail", "sk-wait")
	q := outbox.NewMemory()
	opts := fastOptions(vendor)
	opts.MaxPending = 1
	p, err := delivery.New(q, opts, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Feed(ctx, []byte(order(1))); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if err := p.Feed(short, []byte(order(2))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Feed = %v, want its deadline", err)
	}
	if sum := p.Summary(); sum.Events != 1 {
		t.Errorf("the refused event was counted: %+v", sum)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Feed(ctx, []byte(order(3))); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("Feed after Drain: %v", err)
	}
	if _, err := p.Replay(ctx, b.Name, nil); !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("Replay after Drain: %v", err)
	}
	p.Close()
	if counts, _ := q.Counts(ctx); counts[outbox.Delivered] != 1 || counts[outbox.Pending] != 0 {
		t.Errorf("outbox %v", counts)
	}
}

// Close gives up a Feed waiting for room (a service shutting down while
// the vendor is slow), and a Feed before Start is refused.
func TestCloseReleasesAWaitingFeed(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-close", Latency: 3 * time.Second})
	opts := fastOptions(vendor)
	opts.MaxPending, opts.Grace = 1, 50*time.Millisecond
	q := outbox.NewMemory()
	p, err := delivery.New(q, opts, bind(t, "retail", "sk-close"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Feed(ctx, []byte(order(1))); err == nil {
		t.Error("Feed before Start was taken")
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Feed(ctx, []byte(order(1))); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error)
	go func() { waiting <- p.Feed(ctx, []byte(order(2))) }()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, delivery.ErrClosed) {
		t.Errorf("the waiting Feed: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	if sum := p.Summary(); sum.Events != 1 || sum.Pending != 1 {
		t.Errorf("summary %+v", sum)
	}
	if counts, _ := q.Counts(ctx); counts[outbox.Pending] != 1 {
		t.Errorf("outbox %v: the request in flight when closed stays pending", counts)
	}
}

// blockingReader gives its text, then blocks like an idle pipe.
type blockingReader struct {
	r     io.Reader
	block chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		<-b.block
	}
	return n, err
}

// Interrupted while its input is idle (a pipe with nothing more to say),
// Run stops without waiting for the input, and every event it read is
// in the outbox: final, or pending and counted as such.
func TestRunInterrupted(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-int", Latency: 20 * time.Millisecond})
	b := bind(t, "retail", "sk-int")
	q := outbox.NewMemory()
	opts := fastOptions(vendor)
	opts.Concurrency = 2
	opts.Grace = time.Second
	p, err := delivery.New(q, opts, b)
	if err != nil {
		t.Fatal(err)
	}
	input, _, _ := events(50)
	r := &blockingReader{r: bytes.NewReader(input), block: make(chan struct{})}
	defer close(r.block)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for p.Summary().Events < 50 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	done := make(chan struct{})
	var sum delivery.Summary
	go func() { defer close(done); sum, err = p.Run(ctx, r) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return once interrupted")
	}
	if err != nil || !sum.Interrupted {
		t.Fatalf("%+v %v", sum, err)
	}
	counts, _ := q.Counts(context.Background())
	if sum.Delivered+sum.Pending != 50 || int64(counts[outbox.Pending]) != sum.Pending || int64(counts[outbox.Delivered]) != sum.Delivered || sum.Pending == 0 {
		t.Errorf("summary %+v, outbox %v: want every event read delivered or pending", sum, counts)
	}
}

// Replay re-drives the dead letters of one integration with its current
// config, counts them, and refuses another integration's or an unknown ID.
func TestReplay(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-right"})
	q := outbox.NewMemory()
	ctx := context.Background()
	input, orders, carts := events(9)
	p, err := delivery.New(q, fastOptions(vendor), bind(t, "retail", "sk-wrong"))
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := p.Run(ctx, bytes.NewReader(input)); err != nil || sum.Dead != int64(orders) || sum.Delivered != int64(carts) {
		t.Fatalf("%+v %v", sum, err)
	}
	// Another integration's dead letter.
	other, _ := q.Enqueue(ctx, []*outbox.Item{{ID: "other-dead", Integration: "button@0.1.0/default", State: outbox.Dead, Event: []byte(order(99))}})
	dead, _, _ := q.List(ctx, outbox.Dead, "", 100)
	delivered, _, _ := q.List(ctx, outbox.Delivered, "", 1)

	right := bind(t, "retail", "sk-right")
	p, err = delivery.New(q, fastOptions(vendor), right)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var fe *delivery.ForeignError
	if _, err := p.Replay(ctx, right.Name, []string{dead[0].ID, other[0].ID}); !errors.As(err, &fe) || fe.ID != "other-dead" || fe.Integration != "button@0.1.0/default" {
		t.Errorf("another's ID: %v", err)
	}
	if _, err := p.Replay(ctx, right.Name, []string{"nope"}); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("unknown ID: %v", err)
	}
	if _, err := p.Replay(ctx, "unbound", nil); err == nil {
		t.Error("an unbound integration was replayed")
	}
	rep, err := p.Replay(ctx, right.Name, nil)
	if err != nil || rep.Replayed != orders || rep.Others["button@0.1.0/default"] != 1 {
		t.Fatalf("replay %+v %v", rep, err)
	}
	// A delivered item asked for again is counted as final from before.
	if rep, err := p.Replay(ctx, right.Name, []string{delivered[0].ID}); err != nil || rep.Replayed != 0 {
		t.Errorf("replay of a delivered item: %+v %v", rep, err)
	}
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if sum := p.Summary(); sum.Delivered != int64(orders) || sum.AlreadyDelivered != 1 || sum.Dead != 0 || sum.Pending != 0 {
		t.Errorf("summary %+v", sum)
	}
	if len(srv.Orders()) != orders {
		t.Errorf("%d orders", len(srv.Orders()))
	}
	if it, _ := q.Get(ctx, "other-dead"); it.State != outbox.Dead {
		t.Errorf("another integration's dead letter was replayed: %s", it.State)
	}
}

// Requests of an integration the pipeline does not deliver stay pending,
// untouched; once it is bound (SetBindings) they are delivered.
func TestSetBindings(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-bind"})
	retail, def := bind(t, "retail", "sk-bind"), bind(t, "default", "sk-bind")
	q := outbox.NewMemory()
	ctx := context.Background()
	ev := []byte(order(1))
	items, err := send.Items(def.Integration, def.Name, def.Ref, ev, def.Integration.Evaluate(ev), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	var finals atomic.Int64
	opts := fastOptions(vendor)
	opts.Metrics = send.Hooks{OnFinal: func(send.FinalInfo) { finals.Add(1) }}
	p, err := delivery.New(q, opts, retail)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	time.Sleep(50 * time.Millisecond) // claimed, and left alone
	if srv.Stats().Requests != 0 {
		t.Fatal("another integration's request was sent")
	}
	if err := p.SetBindings(retail, def); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for finals.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if it, _ := q.Get(ctx, items[0].ID); it.State != outbox.Delivered {
		t.Errorf("after binding it: %s", it.State)
	}
}

// Fresh consent is asked right before each attempt: withdrawn, the request
// is skipped (and counted so), never sent.
func TestConsentRecheck(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-consent"})
	b := bind(t, "retail", "sk-consent")
	var logs bytes.Buffer
	opts := fastOptions(vendor)
	opts.Consent = func(context.Context, *outbox.Item) (bool, bool) { return false, true }
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	p, err := delivery.New(outbox.NewMemory(), opts, b)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := p.Run(context.Background(), strings.NewReader(order(1)+"\n"+cart(2)))
	if err != nil || sum.Skipped != 2 || sum.Delivered != 0 || srv.Stats().Requests != 0 {
		t.Errorf("%+v %v, %d requests", sum, err, srv.Stats().Requests)
	}
	if !strings.Contains(logs.String(), "consent withdrawn before delivery") {
		t.Errorf("the drop was not logged:\n%s", logs.String())
	}
}

// With Retention, Start purges delivered and skipped requests older than
// it before anything is fed (an old event is then sent again), and logs
// it; a failed purge is logged and delivery goes on.
func TestRetention(t *testing.T) {
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-ret"})
	b := bind(t, "retail", "sk-ret")
	q := outbox.NewMemory()
	ctx := context.Background()
	ev := []byte(order(1))
	old := time.Now().Add(-48 * time.Hour)
	items, err := send.Items(b.Integration, b.Name, b.Ref, ev, b.Integration.Evaluate(ev), old)
	if err != nil {
		t.Fatal(err)
	}
	items[0].State = outbox.Delivered
	if _, err := q.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opts := fastOptions(vendor)
	opts.Retention = 24 * time.Hour
	opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	p, err := delivery.New(q, opts, b)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := p.Run(ctx, bytes.NewReader(ev))
	if err != nil || sum.Delivered != 1 || sum.Already() != 0 || srv.Stats().Requests != 1 {
		t.Errorf("%+v %v: the purged event was not sent again", sum, err)
	}
	if !strings.Contains(logs.String(), "purged old outbox items") || !strings.Contains(logs.String(), "purged=1") {
		t.Errorf("logs:\n%s", logs.String())
	}
	logs.Reset()
	p, _ = delivery.New(failingPurge{outbox.NewMemory()}, opts, b)
	if sum, err := p.Run(ctx, strings.NewReader(order(2))); err != nil || sum.Delivered != 1 {
		t.Errorf("%+v %v", sum, err)
	}
	if !strings.Contains(logs.String(), "purge of old outbox items failed; delivering anyway") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

type failingPurge struct{ outbox.Queue }

func (failingPurge) Purge(context.Context, time.Time, ...outbox.State) (int, error) {
	return 0, errors.New("disk on fire")
}

// failingQueue fails every Enqueue.
type failingQueue struct{ outbox.Queue }

func (failingQueue) Enqueue(context.Context, []*outbox.Item) ([]*outbox.Item, error) {
	return nil, errors.New("disk full")
}

// An outbox that cannot enqueue fails the run, saying so; nothing is
// counted as delivered or pending, and skips and rejects are still counted.
func TestRunEnqueueFails(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{})
	p, err := delivery.New(failingQueue{outbox.NewMemory()}, fastOptions(vendor), bind(t, "retail", "sk-x"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := p.Run(context.Background(), strings.NewReader(order(1)+"\n"+`{"type":"page"}`))
	if err == nil || err.Error() != "outbox: disk full" || sum.Delivered != 0 || sum.Pending != 0 || sum.Skipped != 1 || sum.Events != 2 {
		t.Errorf("%+v %v", sum, err)
	}
}

// gatedQueue claims nothing until open is set.
type gatedQueue struct {
	*outbox.Bolt
	open atomic.Bool
}

func (q *gatedQueue) Claim(ctx context.Context, now time.Time, max int) ([]*outbox.Item, error) {
	if !q.open.Load() {
		return nil, nil
	}
	return q.Bolt.Claim(ctx, now, max)
}

// A request whose record the outbox can no longer read is skipped by the
// worker (Bolt moves it to its quarantine) and not waited for: Drain
// returns, and the request counts as pending, not final. Drain waited for
// it until its ctx ran out.
func TestDrainDoesNotWaitForAnUnreadableRequest(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-x"})
	path := filepath.Join(t.TempDir(), "outbox.db")
	bq, err := outbox.OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bq.Close()
	q := &gatedQueue{Bolt: bq}
	p, err := delivery.New(q, fastOptions(vendor), bind(t, "retail", "sk-x"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Feed(ctx, []byte(order(1)), []byte(order(2))); err != nil {
		t.Fatal(err)
	}
	// Damage order 1's stored record (every copy in the file) while the
	// outbox is open: an unknown state makes it unreadable.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	damaged := 0
	for at := 0; ; {
		i := bytes.Index(data[at:], []byte(`"message_id":"msg-1"`))
		if i < 0 {
			break
		}
		at += i
		j := bytes.Index(data[at:], []byte(`"state":"pending"`))
		if j < 0 {
			break
		}
		if _, err := f.WriteAt([]byte(`"state":"pendinX"`), int64(at+j)); err != nil {
			t.Fatal(err)
		}
		damaged++
		at += j
	}
	f.Close()
	if damaged == 0 {
		t.Fatal("order 1's record is not in the file")
	}
	q.open.Store(true)
	if err := p.Drain(ctx); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if s := p.Summary(); s.Delivered != 1 || s.Pending != 1 || s.Dead != 0 {
		t.Errorf("summary %s, %d pending; want 1 delivered and 1 pending", s, s.Pending)
	}
	if qr, err := bq.Quarantine(context.Background()); err != nil || len(qr) != 1 {
		t.Errorf("quarantine %d records, %v; want 1", len(qr), err)
	}
}

type brokenSink struct{}

func (brokenSink) Reject(delivery.RejectRecord) error { return errors.New("no space") }

// A rejects sink that fails fails the run (ErrRejects), after delivering
// the rest.
func TestRunRejectSinkFails(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-sink"})
	opts := fastOptions(vendor)
	opts.Rejects = brokenSink{}
	p, err := delivery.New(outbox.NewMemory(), opts, bind(t, "retail", "sk-sink"))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := p.Run(context.Background(), strings.NewReader("not json\n"+order(1)))
	if !errors.Is(err, delivery.ErrRejects) || sum.Delivered != 1 || sum.Rejected != 1 {
		t.Errorf("%+v %v", sum, err)
	}
}

// A read error of the input fails the run, after delivering what was read.
func TestRunReadError(t *testing.T) {
	_, vendor := fake(t, fakebutton.Options{APIKey: "sk-read"})
	p, err := delivery.New(outbox.NewMemory(), fastOptions(vendor), bind(t, "retail", "sk-read"))
	if err != nil {
		t.Fatal(err)
	}
	input, _, _ := events(5)
	sum, err := p.Run(context.Background(), io.MultiReader(bytes.NewReader(input), errReader{}))
	if err == nil || err.Error() != "reading events: connection reset" || sum.Delivered != 5 || sum.Interrupted {
		t.Errorf("%+v %v", sum, err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// RejectLog writes dlq-events lines, and refuses after Close.
func TestRejectLog(t *testing.T) {
	var out bytes.Buffer
	l := delivery.NewRejectLog(&out)
	b := bind(t, "retail", "sk-log-secret")
	ev := []byte(`{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"x":"sk\u002dlog-secret","total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`)
	res := b.Integration.Evaluate(ev)
	if err := l.Reject(delivery.NewRejectRecord(b.Name, b.Integration, ev, res)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err, out.String())
	}
	keys := []string{}
	for k := range got {
		keys = append(keys, k)
	}
	if len(got) != 5 || got["integration_id"] != b.Name || got["error"] != "missing_required_field" || got["fields"] == nil || strings.Contains(out.String(), "log-secret") {
		t.Errorf("%v: %s", keys, out.String())
	}
	if err := l.Reject(delivery.RejectRecord{}); err == nil {
		t.Error("Reject after Close")
	}
}
