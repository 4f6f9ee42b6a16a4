package send_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

const apiKey = "sk-live-abc"

func button(t testing.TB) *runtime.Integration {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds, err := cat.Compile("button@0.1.0")
	if bp == nil {
		t.Fatal(err, ds)
	}
	in, err := runtime.Bind(bp, "retail", map[string]any{"application_id": "app-abc123", "api_key": apiKey})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func order(id string) []byte {
	return []byte(`{"type":"track","event":"Order Completed","message_id":"m-` + id + `","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"` + id + `","total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`)
}

// vendor is a scripted test server: each request gets the next answer.
type vendor struct {
	mu      sync.Mutex
	answers []int
	got     []*http.Request
	bodies  []string
}

func (v *vendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	v.mu.Lock()
	v.got = append(v.got, r)
	v.bodies = append(v.bodies, string(b))
	status := 200
	if len(v.answers) > 0 {
		status, v.answers = v.answers[0], v.answers[1:]
	}
	v.mu.Unlock()
	switch status {
	case 429:
		w.Header().Set("Retry-After", "0")
	case -1: // drop the connection
		hj, _ := w.(http.Hijacker)
		c, _, _ := hj.Hijack()
		c.Close()
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, `{"meta":{"status":"x"},"error":{"message":"vendor says `+http.StatusText(status)+`"}}`)
}

func newSender(t *testing.T, srv *httptest.Server) *send.Sender {
	u, _ := url.Parse(srv.URL)
	return send.New(send.Options{VendorURL: u, Concurrency: 4})
}

func TestDoRewritesAndClassifies(t *testing.T) {
	v := &vendor{answers: []int{200, 409, 401, 503}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	res := in.Evaluate(order("o-1"))
	s := newSender(t, srv)
	want := []struct {
		outcome runtime.Outcome
		msg     string
	}{
		{runtime.Delivered, ""},
		{runtime.Duplicate, ""},
		{runtime.Failed, "bad api_key (Button answered 401 Unauthorized)"},
		{runtime.Retry, "vendor says Service Unavailable"},
	}
	for i, w := range want {
		a := s.Do(context.Background(), in, "button", res.Requests[0])
		if a.Outcome != w.outcome || w.msg != "" && a.Message != w.msg {
			t.Errorf("answer %d: %+v, want %s %q", i, a, w.outcome, w.msg)
		}
	}
	r := v.got[0]
	if r.URL.Path != "/v1/order" || r.Method != "POST" || !strings.HasPrefix(r.Header.Get("User-Agent"), "blueprint-engine/") ||
		r.Header.Get("Authorization") != "Basic c2stbGl2ZS1hYmM6" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %s %v", r.Method, r.URL, r.Header)
	}
	if !strings.Contains(v.bodies[0], `"order_id":"o-1"`) {
		t.Errorf("body %s", v.bodies[0])
	}
}

func TestDoRefusesHostsTheBlueprintDoesNotList(t *testing.T) {
	in := button(t)
	res := in.Evaluate(order("o-1"))
	req := *res.Requests[0]
	req.URL = "https://evil.example.com/v1/order"
	a := send.New(send.Options{}).Do(context.Background(), in, "button", &req)
	if a.Outcome != runtime.Failed || !strings.Contains(a.Message, "evil.example.com") {
		t.Errorf("%+v", a)
	}
}

func TestDoNetworkErrorsAreRetried(t *testing.T) {
	v := &vendor{answers: []int{-1}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	a := newSender(t, srv).Do(context.Background(), in, "button", in.Evaluate(order("o-1")).Requests[0])
	if a.Outcome != runtime.Retry || a.Err == nil || a.Status != 0 || strings.Contains(a.Message, srv.URL) {
		t.Errorf("%+v", a)
	}
}

func TestPolicyDelay(t *testing.T) {
	p := send.Policy{Base: time.Second, Factor: 4, Cap: 10 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 4 * time.Second, 3: 10 * time.Second, 30: 10 * time.Second} {
		if got := p.Delay(n, 0); got != want {
			t.Errorf("Delay(%d, 0) = %v, want %v", n, got, want)
		}
		if got, short := p.Delay(n, 0.999999999), want*8/10; got < short || got > short+time.Millisecond {
			t.Errorf("Delay(%d, ~1) = %v, want %v (20 %% jitter)", n, got, short)
		}
	}
}

// The default schedule spreads 5 attempts over the 24-hour window: the
// first retry is not immediate, and the last attempt comes 20 to 24 hours
// after the first, whatever the jitter (so a shorter vendor outage loses
// nothing), never after the window.
func TestDefaultPolicySpan(t *testing.T) {
	p := send.DefaultPolicy
	for _, u := range []float64{0, 0.5, 0.999999} {
		var at time.Duration
		for n := 1; n < p.MaxAttempts; n++ {
			at += min(p.Delay(n, u), p.MaxAge-at) // the worker's clamp to the window
			if n == 1 && at < 14*time.Minute {
				t.Errorf("u=%v: first retry after %v", u, at)
			}
		}
		if at < 20*time.Hour || at > p.MaxAge {
			t.Errorf("u=%v: last attempt %v after the first, want 20-24 h", u, at)
		}
	}
}

func worker(t *testing.T, srv *httptest.Server, q outbox.Queue, in *runtime.Integration, p send.Policy) (*send.Worker, *send.Counters) {
	c := &send.Counters{}
	u, _ := url.Parse(srv.URL)
	return &send.Worker{
		Queue:       q,
		Sender:      send.New(send.Options{VendorURL: u, Metrics: c}),
		Policy:      p,
		Integration: func(it *outbox.Item) (*runtime.Integration, bool) { return in, it.Integration == "button" },
		Poll:        5 * time.Millisecond,
		Metrics:     c,
	}, c
}

// noPending is a Run's done func for a queue that holds only this
// worker's items: none is pending.
func noPending(q outbox.Store) func() bool {
	return func() bool {
		counts, err := q.Counts(context.Background())
		return err == nil && counts[outbox.Pending] == 0
	}
}

func enqueue(t *testing.T, q outbox.Queue, in *runtime.Integration, events ...[]byte) {
	for _, ev := range events {
		res := in.Evaluate(ev)
		items, err := send.Items(in, "button", "button@0.1.0", ev, res, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := q.Enqueue(context.Background(), items); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWorkerRetriesThenDelivers(t *testing.T) {
	v := &vendor{answers: []int{503, 429, -1, 200}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	enqueue(t, q, in, order("o-1"))
	w, c := worker(t, srv, q, in, send.Policy{MaxAttempts: 5, Base: time.Millisecond, Cap: 5 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	counts, _ := q.Counts(ctx)
	if counts[outbox.Delivered] != 1 || c.Delivered.Load() != 1 || c.Attempts.Load() != 4 || c.Retries.Load() != 3 {
		t.Errorf("counts %v, delivered %d, attempts %d, retries %d", counts, c.Delivered.Load(), c.Attempts.Load(), c.Retries.Load())
	}
}

func TestWorkerDeadLetters(t *testing.T) {
	v := &vendor{answers: []int{401, 503, 503, 503}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	enqueue(t, q, in, order("bad-key"), order("flaky"))
	w, _ := worker(t, srv, q, in, send.Policy{MaxAttempts: 3, Base: time.Millisecond, Cap: time.Millisecond})
	w.Concurrency = 1
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	dead, _, _ := q.List(ctx, outbox.Dead, "", 10)
	if len(dead) != 2 {
		t.Fatalf("%d dead letters", len(dead))
	}
	msgs := dead[0].LastError + " | " + dead[1].LastError
	if !strings.Contains(msgs, "bad api_key") || !strings.Contains(msgs, "gave up after 3 attempts") || strings.Contains(msgs, apiKey) {
		t.Errorf("dead letters: %s", msgs)
	}
	// Replay with a server that now accepts: both are delivered.
	v.mu.Lock()
	v.answers = nil
	v.mu.Unlock()
	if n, _ := q.Replay(ctx, nil, time.Now()); n != 2 {
		t.Fatalf("replayed %d", n)
	}
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	if counts, _ := q.Counts(ctx); counts[outbox.Delivered] != 2 {
		t.Errorf("after replay: %v", counts)
	}
}

// Consent is checked again right before delivery when the program has
// fresher consent.
func TestWorkerFreshConsent(t *testing.T) {
	v := &vendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	enqueue(t, q, in, order("o-1"))
	w, c := worker(t, srv, q, in, send.Policy{})
	w.Consent = func(context.Context, *outbox.Item) (bool, bool) { return false, true }
	if err := w.Run(context.Background(), noPending(q)); err != nil {
		t.Fatal(err)
	}
	if counts, _ := q.Counts(context.Background()); counts[outbox.Skipped] != 1 || len(v.got) != 0 || c.Skipped.Load() != 1 {
		t.Errorf("counts %v, %d requests sent", counts, len(v.got))
	}
}

// On shutdown the worker stops claiming, lets in-flight requests finish and
// leaves the rest pending.
func TestWorkerGracefulShutdown(t *testing.T) {
	var started atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		<-release
		w.WriteHeader(200)
	}))
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	for i := range 10 {
		enqueue(t, q, in, order(string(rune('a'+i))))
	}
	w, _ := worker(t, srv, q, in, send.Policy{})
	w.Concurrency = 2
	w.Grace = 5 * time.Second
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx, nil) }()
	for started.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	counts, _ := q.Counts(context.Background())
	if counts[outbox.Delivered] != 2 || counts[outbox.Pending] != 8 {
		t.Errorf("counts %v: the 2 in flight finish, 8 stay pending", counts)
	}
}

// With a Retention, the worker purges delivered and skipped items older
// than it when it starts and then every PurgeEvery; dead letters and
// pending items stay.
func TestWorkerPurgesOldItems(t *testing.T) {
	srv := httptest.NewServer(&vendor{})
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	ctx := context.Background()
	old := time.Now().Add(-48 * time.Hour)
	final := func(id string, s outbox.State, at time.Time) *outbox.Item {
		return &outbox.Item{ID: id, Integration: "button", State: s, CreatedAt: at, NextAt: at, UpdatedAt: at}
	}
	if _, err := q.Enqueue(ctx, []*outbox.Item{
		final("old-delivered", outbox.Delivered, old),
		final("old-skipped", outbox.Skipped, old),
		final("old-dead", outbox.Dead, old),
		final("recent-delivered", outbox.Delivered, time.Now().Add(-time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, in, order("o-1"))
	w, _ := worker(t, srv, q, in, send.Policy{})
	w.Retention, w.PurgeEvery = 24*time.Hour, 10*time.Millisecond
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"old-delivered": false, "old-skipped": false, "old-dead": true, "recent-delivered": true} {
		_, err := q.Get(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("%s kept: %v, want %v (%v)", id, got, want, err)
		}
	}
	if counts, _ := q.Counts(ctx); counts[outbox.Delivered] != 2 {
		t.Errorf("counts %v: want the new order delivered and the recent item kept", counts)
	}

	// While it runs: an old item appearing is purged within PurgeEvery.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx, nil) }()
	if _, err := q.Enqueue(ctx, []*outbox.Item{final("late", outbox.Delivered, old)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := q.Get(ctx, "late"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an old item was not purged while the worker ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A retry is never scheduled after the item's retry window: one created
// almost 24 hours ago gets its last attempt at the window's end (not 18
// minutes later), then becomes a dead letter.
func TestWorkerLastAttemptInsideWindow(t *testing.T) {
	v := &vendor{answers: []int{503, 503}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	ev := order("o-late")
	items, err := send.Items(in, "button", "button@0.1.0", ev, in.Evaluate(ev), time.Now().Add(-24*time.Hour+300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	w, _ := worker(t, srv, q, in, send.DefaultPolicy)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	it, err := q.Get(ctx, items[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if it.State != outbox.Dead || it.Attempts != 2 {
		t.Errorf("state %s after %d attempts, want dead after 2", it.State, it.Attempts)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v: the last attempt was not brought inside the window", took)
	}
}

// Items refuses an event that carries the integration's secret: the
// outbox must never hold one.
func TestItemsRefuseSecrets(t *testing.T) {
	in := button(t)
	ev := []byte(`{"type":"track","event":"Order Completed","message_id":"m-1","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o-1","note":"` + apiKey + `","total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`)
	res := in.Evaluate(ev)
	if res.Outcome != runtime.Deliver {
		t.Fatal(res)
	}
	if items, err := send.Items(in, "button", "button@0.1.0", ev, res, time.Now()); !errors.Is(err, send.ErrCarriesSecret) || items != nil {
		t.Errorf("Items = %v, %v; want ErrCarriesSecret", items, err)
	}
}

// An item this worker does not know is left alone while it runs and given
// back when it stops: another worker of the same queue, whose it is, then
// delivers it at once.
func TestWorkerGivesBackForeignItems(t *testing.T) {
	v := &vendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	enqueue(t, q, in, order("o-foreign"))
	a, _ := worker(t, srv, q, in, send.Policy{})
	a.Integration = func(*outbox.Item) (*runtime.Integration, bool) { return nil, false } // knows nothing
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Run(ctx, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	if items, _, _ := q.List(ctx, outbox.Pending, "", 10); len(items) != 1 || items[0].NextAt.After(time.Now()) {
		t.Fatalf("the foreign item is not pending and due: %+v", items)
	}
	b, _ := worker(t, srv, q, in, send.Policy{})
	if err := b.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	if counts, _ := q.Counts(ctx); counts[outbox.Delivered] != 1 {
		t.Errorf("counts %v: the owning worker could not deliver it", counts)
	}
}

// Regression (issue #11 finding 10): a Run waits only for what its done
// func says, never for the outbox's other pending items. A retry of
// another integration due in 30 s used to hold Run until it was due (a
// one-event send after an interrupted run of another variant took 75 s,
// a dlq replay of one dead letter 56 s).
func TestWorkerRunWaitsOnlyForItsOwnItems(t *testing.T) {
	srv := httptest.NewServer(&vendor{})
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	later := time.Now().Add(30 * time.Second)
	if _, err := q.Enqueue(ctx, []*outbox.Item{{ID: "foreign-retry", Integration: "button/default", Event: order("f"),
		State: outbox.Pending, CreatedAt: time.Now(), NextAt: later, UpdatedAt: time.Now(), Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	ev := order("mine")
	items, err := send.Items(in, "button", "button@0.1.0", ev, in.Evaluate(ev), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, items); err != nil {
		t.Fatal(err)
	}
	w, _ := worker(t, srv, q, in, send.Policy{})
	var mine atomic.Bool
	w.Metrics = send.Hooks{OnFinal: func(f send.FinalInfo) {
		if f.Item == items[0].ID {
			mine.Store(true)
		}
	}}
	start := time.Now()
	if err := w.Run(ctx, mine.Load); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("Run took %v: it waited for another integration's retry", took)
	}
	if it, _ := q.Get(ctx, items[0].ID); it.State != outbox.Delivered {
		t.Errorf("own item %s", it.State)
	}
	if it, _ := q.Get(ctx, "foreign-retry"); it.State != outbox.Pending || it.Attempts != 1 {
		t.Errorf("the foreign item was touched: %+v", it)
	}
}

// Metrics receive the item's ID with each attempt and final state, and
// what a live view shows of them (status, attempts, message).
func TestMetricsReceiveItemIDs(t *testing.T) {
	v := &vendor{answers: []int{503, 401}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	in := button(t)
	q := outbox.NewMemory()
	ev := order("o-ids")
	items, err := send.Items(in, "button", "button@0.1.0", ev, in.Evaluate(ev), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var attempts []send.AttemptInfo
	var finals []send.FinalInfo
	hooks := send.Hooks{
		OnAttempt: func(a send.AttemptInfo) { mu.Lock(); attempts = append(attempts, a); mu.Unlock() },
		OnFinal:   func(f send.FinalInfo) { mu.Lock(); finals = append(finals, f); mu.Unlock() },
	}
	u, _ := url.Parse(srv.URL)
	w := &send.Worker{
		Queue:       q,
		Sender:      send.New(send.Options{VendorURL: u, Metrics: hooks}),
		Policy:      send.Policy{Base: time.Millisecond, Cap: time.Millisecond},
		Integration: func(it *outbox.Item) (*runtime.Integration, bool) { return in, it.Integration == "button" },
		Poll:        5 * time.Millisecond,
		Metrics:     hooks,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(attempts) != 2 || attempts[0].Item != items[0].ID || attempts[0].Status != 503 || attempts[0].Outcome != runtime.Retry ||
		attempts[1].Item != items[0].ID || attempts[1].Status != 401 || attempts[0].Integration != "button" {
		t.Errorf("attempts %+v", attempts)
	}
	if len(finals) != 1 {
		t.Fatalf("finals %+v", finals)
	}
	f := finals[0]
	if f.Item != items[0].ID || f.State != outbox.Dead || f.Attempts != 2 || f.Status != 401 || !strings.Contains(f.Message, "bad api_key") ||
		f.MessageID != "m-o-ids" || f.VendorEvent != "purchase" || f.At.IsZero() || strings.Contains(f.Message, apiKey) {
		t.Errorf("final %+v", f)
	}
}
