package delivery_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

type batchVendor struct {
	mu      sync.Mutex
	bodies  []string
	headers []http.Header
	status  []int
}

func (v *batchVendor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	v.mu.Lock()
	v.bodies = append(v.bodies, string(b))
	v.headers = append(v.headers, r.Header.Clone())
	st := 200
	if len(v.status) > 0 {
		st, v.status = v.status[0], v.status[1:]
	}
	v.mu.Unlock()
	w.WriteHeader(st)
}

func bindWebhook(t *testing.T, config map[string]any) *runtime.Integration {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds, err := cat.Compile("webhook@0.1.0")
	if bp == nil {
		t.Fatal(err, ds)
	}
	in, err := runtime.Bind(bp, "", config)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestBatchesByCountAndWait: seven events with batch_size 3 arrive as
// batches of 3, 3 and 1 (the last sent once the input is read, not after
// the wait), each body the events'
// bytes joined as they were received, each signed over the whole body;
// every event is delivered.
func TestBatchesByCountAndWait(t *testing.T) {
	v := &batchVendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	in := bindWebhook(t, map[string]any{"url": "https://hooks.example.com/e", "authentication": "hmac", "signing_secret": "whsec-batch",
		"batch_enabled": true, "batch_size": 3, "batch_interval_ms": 300})
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}, Poll: 10 * time.Millisecond},
		delivery.Binding{Name: "hook", Ref: "webhook@0.1.0", Integration: in})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	var input strings.Builder
	for i := range 7 {
		e := fmt.Sprintf(`{"type":"page", "messageId":"m-%d","n":%d.0}`, i, i)
		events = append(events, e)
		input.WriteString(e + "\n")
	}
	sum, err := p.Run(context.Background(), strings.NewReader(input.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.String(); !strings.HasPrefix(got, "7 delivered, 0 skipped, 0 rejected, 0 dead-lettered") {
		t.Fatalf("summary %q", got)
	}
	if len(v.bodies) != 3 {
		t.Fatalf("%d requests, want 3 batches: %q", len(v.bodies), v.bodies)
	}
	// Order within a batch follows the queue; every event is in exactly
	// one batch, byte for byte.
	seen := map[string]int{}
	sizes := []int{}
	for i, b := range v.bodies {
		if !strings.HasPrefix(b, `{"batch":[`) || !strings.HasSuffix(b, `]}`) {
			t.Fatalf("batch %d: %q", i, b)
		}
		n := 0
		for _, e := range events {
			if strings.Contains(b, e) {
				seen[e]++
				n++
			}
		}
		sizes = append(sizes, n)
		ts := v.headers[i].Get("X-Timestamp")
		m := hmac.New(sha256.New, []byte("whsec-batch"))
		m.Write([]byte(ts + "." + b))
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); v.headers[i].Get("X-Signature") != want {
			t.Fatalf("batch %d: signature does not verify over the batch body", i)
		}
		if len(b) != len(`{"batch":[`)+len(`]}`)+n-1+sumLen(events, b) {
			t.Fatalf("batch %d holds more than the events and commas: %q", i, b)
		}
	}
	for _, e := range events {
		if seen[e] != 1 {
			t.Fatalf("event %s sent %d times", e, seen[e])
		}
	}
	slices.Sort(sizes) // batches are sent side by side
	if !slices.Equal(sizes, []int{1, 3, 3}) {
		t.Fatalf("batch sizes %v, want 3, 3 and the 1 left when the input ended", sizes)
	}
}

func sumLen(events []string, body string) int {
	n := 0
	for _, e := range events {
		if strings.Contains(body, e) {
			n += len(e)
		}
	}
	return n
}

// TestBatchRetriedTogether: a 503 to a batch retries every event of it;
// the next attempt delivers them all.
func TestBatchRetriedTogether(t *testing.T) {
	v := &batchVendor{status: []int{503}}
	srv := httptest.NewServer(v)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	in := bindWebhook(t, map[string]any{"url": "https://hooks.example.com/e", "batch_enabled": true, "batch_size": 2, "batch_interval_ms": 100})
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}, Poll: 10 * time.Millisecond,
		Policy: send.Policy{Base: time.Millisecond, Cap: 5 * time.Millisecond}},
		delivery.Binding{Name: "hook", Ref: "webhook@0.1.0", Integration: in})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := p.Run(context.Background(), strings.NewReader(`{"type":"page","messageId":"a"}`+"\n"+`{"type":"page","messageId":"b"}`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.String(); !strings.HasPrefix(got, "2 delivered, 0 skipped, 0 rejected, 0 dead-lettered") {
		t.Fatalf("summary %q", got)
	}
	if len(v.bodies) != 2 || v.bodies[0] != v.bodies[1] || !strings.Contains(v.bodies[1], `"a"`) || !strings.Contains(v.bodies[1], `"b"`) {
		t.Fatalf("want the same batch twice, got %q", v.bodies)
	}
}

// TestBatchSentAfterItsWait: a batch that does not fill is sent once its
// wait ends, while the service goes on (no drain).
func TestBatchSentAfterItsWait(t *testing.T) {
	v := &batchVendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	in := bindWebhook(t, map[string]any{"url": "https://hooks.example.com/e", "batch_enabled": true, "batch_size": 10, "batch_interval_ms": 150})
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}, Poll: 10 * time.Millisecond},
		delivery.Binding{Name: "hook", Ref: "webhook@0.1.0", Integration: in})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	start := time.Now()
	if err := p.Feed(ctx, []byte(`{"type":"page","messageId":"a"}`), []byte(`{"type":"page","messageId":"b"}`)); err != nil {
		t.Fatal(err)
	}
	for time.Since(start) < 5*time.Second {
		v.mu.Lock()
		n := len(v.bodies)
		v.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	waited := time.Since(start)
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.bodies) != 1 || v.bodies[0] != `{"batch":[{"type":"page","messageId":"a"},{"type":"page","messageId":"b"}]}` {
		t.Fatalf("got %q", v.bodies)
	}
	if waited < 140*time.Millisecond {
		t.Fatalf("sent after %v, before its wait of 150ms", waited)
	}
}

// TestBatchSplitsByHeader: a batching request whose header and a body
// field outside the batched array are read from the event is joined only
// with requests that agree on them: alice's and bob's events arrive in two
// batches, each with its own customer, and none is sent as the other's.
func TestBatchSplitsByHeader(t *testing.T) {
	v := &batchVendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	bp, ds := engine.Compile("batchcust.yaml", []byte(`key: batchcust
version: 0.1.0
name: Batch per customer
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    headers:
      X-Customer: "{values.customer}"
    batch: {into: items, max_events: 10, max_wait_ms: 60000}
    body:
      customer_id: {value: customer}
      items: {expr: '[event.properties]', type: array}
values:
  customer: {from: userId, type: string}
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}, Poll: 10 * time.Millisecond},
		delivery.Binding{Name: "c", Ref: "batchcust", Integration: in})
	if err != nil {
		t.Fatal(err)
	}
	var input strings.Builder
	for i, who := range []string{"alice", "bob", "alice", "bob"} {
		fmt.Fprintf(&input, `{"type":"track","event":"a","messageId":"m-%d","userId":%q,"properties":{"n":%d}}`+"\n", i, who, i)
	}
	sum, err := p.Run(context.Background(), strings.NewReader(input.String()))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.String(); !strings.HasPrefix(got, "4 delivered, 0 skipped, 0 rejected, 0 dead-lettered") {
		t.Fatalf("summary %q", got)
	}
	got := map[string]string{}
	for i, b := range v.bodies {
		got[v.headers[i].Get("X-Customer")] = b
	}
	want := map[string]string{
		"alice": `{"customer_id":"alice","items":[{"n":0},{"n":2}]}`,
		"bob":   `{"customer_id":"bob","items":[{"n":1},{"n":3}]}`,
	}
	if len(v.bodies) != 2 || got["alice"] != want["alice"] || got["bob"] != want["bob"] {
		t.Fatalf("got %d requests %q, want one batch per customer %q", len(v.bodies), got, want)
	}
}

// TestBatchFullByBytesSentAtOnce: a batch whose body reaches max_bytes
// (here one event larger than it) can take no more events: it is sent at
// once, not after its wait (a minute here) while nothing can join it.
func TestBatchFullByBytesSentAtOnce(t *testing.T) {
	v := &batchVendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	bp, ds := engine.Compile("batchbytes.yaml", []byte(`key: batchbytes
version: 0.1.0
name: Batch bytes
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    body_from: event
    batch: {into: batch, max_events: 100, max_wait_ms: 60000, max_bytes: 64}
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}, Poll: 10 * time.Millisecond},
		delivery.Binding{Name: "b", Ref: "batchbytes", Integration: in})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	big := `{"type":"track","event":"a","messageId":"m-1","pad":"` + strings.Repeat("x", 100) + `"}`
	if err := p.Feed(ctx, []byte(big)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		n := len(v.bodies)
		v.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("a batch past max_bytes was held for its wait")
}

// TestBatchManyOpenBatchesNotStalled: when the items held fill the bound
// (Concurrency+1 full batches) spread over many open batches that each
// stay short (one per customer here), nothing more is claimed and the
// batches cannot grow: they are sent at once, not after their wait (a
// minute here), so delivery goes on.
func TestBatchManyOpenBatchesNotStalled(t *testing.T) {
	v := &batchVendor{}
	srv := httptest.NewServer(v)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	bp, ds := engine.Compile("batchcust.yaml", []byte(`key: batchcust
version: 0.1.0
name: Batch per customer
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    headers:
      X-Customer: "{values.customer}"
    batch: {into: items, max_events: 2, max_wait_ms: 60000}
    body:
      items: {expr: '[event.properties]', type: array}
values:
  customer: {from: userId, type: string}
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := delivery.New(outbox.NewMemory(), delivery.Options{Sender: send.Options{VendorURL: u}, Poll: 10 * time.Millisecond, Concurrency: 1},
		delivery.Binding{Name: "c", Ref: "batchcust", Integration: in})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var events [][]byte
	for i := range 12 {
		events = append(events, fmt.Appendf(nil, `{"type":"track","event":"a","messageId":"m-%d","userId":"c-%d","properties":{"n":%d}}`, i, i, i))
	}
	if err := p.Feed(ctx, events...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		v.mu.Lock()
		n := len(v.bodies)
		v.mu.Unlock()
		if n == 12 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	t.Fatalf("%d of 12 events sent after 10s: short batches waited for their minute", len(v.bodies))
}
