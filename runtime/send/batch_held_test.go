package send_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// countingQueue counts the items claimed.
type countingQueue struct {
	outbox.Queue
	claimed atomic.Int64
}

func (q *countingQueue) Claim(ctx context.Context, now time.Time, max int) ([]*outbox.Item, error) {
	its, err := q.Queue.Claim(ctx, now, max)
	q.claimed.Add(int64(len(its)))
	return its, err
}

// TestBatchHeldItemsBounded: items held for batches hold no concurrency
// slot, so before, a worker facing a slow vendor claimed the whole outbox
// into memory (600 of 600 here, a backlog of millions after an outage),
// each full batch a goroutine waiting for the host. Now it holds at most
// Concurrency+1 full batches (and what the slots claim) until one is sent.
func TestBatchHeldItemsBounded(t *testing.T) {
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stop:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(stop)
	u, _ := url.Parse(srv.URL)
	in := webhook(t, map[string]any{"url": "https://hooks.example.com/e", "batch_enabled": true, "batch_size": 10, "batch_interval_ms": 60000})
	q := &countingQueue{Queue: outbox.NewMemory()}
	var items []*outbox.Item
	for i := range 600 {
		items = append(items, &outbox.Item{ID: fmt.Sprintf("i%04d", i), Integration: "hook", Event: fmt.Appendf(nil, `{"type":"page","messageId":"m%d"}`, i)})
	}
	if _, err := q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	const concurrency = 2
	w := &send.Worker{Queue: q, Sender: send.New(send.Options{VendorURL: u, Concurrency: concurrency}), Concurrency: concurrency,
		Poll: time.Millisecond, Grace: 10 * time.Millisecond,
		Integration: func(*outbox.Item) (*runtime.Integration, bool) { return in, true }}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); w.Run(ctx, nil) }()
	time.Sleep(time.Second)
	n := q.claimed.Load()
	cancel()
	<-ran
	if limit := int64((concurrency+1)*10 + concurrency); n > limit {
		t.Fatalf("%d of 600 items claimed and held while the vendor hangs, want at most %d", n, limit)
	}
	if n < 20 {
		t.Fatalf("only %d items claimed: batches cannot fill", n)
	}
}

// TestBatchConsentRechecked: an item waits in its batch for up to the
// batch's max_wait after its consent was checked. Consent withdrawn
// meanwhile is seen right before the batch is sent: that item is skipped,
// the others go in one request.
func TestBatchConsentRechecked(t *testing.T) {
	var bodies atomic.Int64
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
		bodies.Add(1)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	in := webhook(t, map[string]any{"url": "https://hooks.example.com/e", "batch_enabled": true, "batch_size": 3, "batch_interval_ms": 60000})
	q := outbox.NewMemory()
	var items []*outbox.Item
	for i := range 3 {
		items = append(items, &outbox.Item{ID: fmt.Sprintf("i%d", i), Integration: "hook", Event: fmt.Appendf(nil, `{"type":"page","messageId":"m%d"}`, i)})
	}
	if _, err := q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	asked := map[string]int{}
	w := &send.Worker{Queue: q, Sender: send.New(send.Options{VendorURL: u}), Poll: time.Millisecond, Grace: time.Second,
		Integration: func(*outbox.Item) (*runtime.Integration, bool) { return in, true },
		Consent: func(_ context.Context, it *outbox.Item) (bool, bool) {
			mu.Lock()
			defer mu.Unlock()
			asked[it.ID]++
			// i1's consent is withdrawn after it joined its batch.
			return !(it.ID == "i1" && asked[it.ID] > 1), true
		}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Run(ctx, noPending(q)); err != nil {
		t.Fatal(err)
	}
	counts, _ := q.Counts(context.Background())
	if counts[outbox.Delivered] != 2 || counts[outbox.Skipped] != 1 {
		t.Fatalf("counts %v; want 2 delivered, 1 skipped", counts)
	}
	if it, _ := q.Get(context.Background(), "i1"); it == nil || it.State != outbox.Skipped {
		t.Errorf("i1: %+v, want skipped", it)
	}
	body, _ := got.Load().(string)
	if bodies.Load() != 1 || strings.Contains(body, `"m1"`) || !strings.Contains(body, `"m0"`) || !strings.Contains(body, `"m2"`) {
		t.Errorf("%d requests, last body %s; want one batch of m0 and m2", bodies.Load(), body)
	}
}
