// Package deliverytest is the delivery contract, as tests: what becomes of
// a request once an event is fed, whatever carries it to the vendor. The
// embedded path (delivery.Pipeline over an outbox) and the Kafka path
// (processor and deliverer on the platform's topics) both run it, so a
// vendor's answer leads to the same final state, after the same attempts,
// on either; where their semantics differ, Traits says so and the suite
// checks each side's own behaviour.
//
// It complements outbox/queuetest, the contract of a queue: this one is
// the contract of delivery as a whole (retry policy, response rules, item
// identity, config swaps), which a log-based path implements without
// being an outbox.
//
//	func TestDeliveryContract(t *testing.T) {
//		deliverytest.Run(t, func(t *testing.T, s deliverytest.Setup) deliverytest.System {
//			// start the path with s.Bindings, s.VendorURL, s.Policy and
//			// s.Metrics; stop it at t.Cleanup
//		}, deliverytest.Traits{})
//	}
package deliverytest

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// System is a delivery path under test, started by Start.
type System interface {
	// Feed makes events durable for delivery to every binding: once it
	// returns, their requests reach a final state without more calls.
	Feed(ctx context.Context, events ...[]byte) error
	// Rebind replaces the bindings (an integration's config changed):
	// requests already queued are sent with the new config.
	Rebind(bindings ...delivery.Binding) error
}

// Setup is what a System is started with.
type Setup struct {
	// Bindings are the integrations (Names are short IDs, valid in a
	// Kafka topic name).
	Bindings []delivery.Binding
	// VendorURL replaces scheme, host and port of every request
	// (send.Options.VendorURL).
	VendorURL *url.URL
	// Policy is the retry schedule: a few attempts, milliseconds apart.
	Policy send.Policy
	// Metrics must receive every attempt (with its item ID) and every
	// final state.
	Metrics send.Metrics
}

// Start starts a System for one test, stopped at t.Cleanup.
type Start func(t *testing.T, s Setup) System

// Traits are where a System's semantics differ from the embedded outbox's.
type Traits struct {
	// RefeedSendsAgain: the same event fed twice is sent twice, with the
	// same item ID (a log keeps both; the vendor's dedup makes the second
	// a duplicate), where the outbox stores the ID once and sends once.
	RefeedSendsAgain bool
}

// Integration is the ID of the suite's binding.
const Integration = "int_contract"

// Run runs the suite.
func Run(t *testing.T, start Start, tr Traits) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h *harness, tr Traits)
	}{
		{"DeliversEachRequestOnce", testDeliversOnce},
		{"RetriesServerErrorThenDelivers", testRetries},
		{"ClientErrorIsDeadAtOnce", testClientErrorDead},
		{"GivesUpAfterMaxAttempts", testGivesUp},
		{"VendorDuplicateIsDelivered", testDuplicate},
		{"SameEventFedTwice", testRefeed},
		{"ConfigSwapAppliesToQueued", testConfigSwap},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			h.sys = start(t, Setup{
				Bindings:  []delivery.Binding{Bind(t, oldKey)},
				VendorURL: h.vendorURL,
				Policy:    send.Policy{MaxAttempts: 3, Base: 5 * time.Millisecond, Cap: 20 * time.Millisecond, MaxAge: time.Minute},
				Metrics:   send.Hooks{OnAttempt: h.attempt, OnFinal: h.final},
			})
			c.fn(t, h, tr)
		})
	}
}

// The API keys the vendor knows: oldKey is answered 503 (a key being
// rotated) once an order asks for the new key ("rotate-" orders).
const (
	oldKey = "sk-contract-OLD-1"
	newKey = "sk-contract-NEW-2"
)

// Bind binds Button 0.1.0 (default variant) with apiKey as Integration.
func Bind(t testing.TB, apiKey string) delivery.Binding { return BindButton(t, Integration, apiKey) }

// BindButton binds Button 0.1.0 (default variant, application app-abc123)
// with apiKey, named name.
func BindButton(t testing.TB, name, apiKey string) delivery.Binding {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	in, err := runtime.Bind(bp, "default", map[string]any{"application_id": "app-abc123", "api_key": apiKey})
	if err != nil {
		t.Fatal(err)
	}
	return delivery.Binding{Name: name, Ref: "button@0.1.0", Integration: in}
}

// Order is a Button order whose order_id is id: its prefix says how the
// suite's vendor answers ("flaky": 503 once; "bad": 400; "down": 503
// always; "rotate": 503 until sent with the new key; else 200, and 409 for
// an order already created).
func Order(id string) []byte {
	return fmt.Appendf(nil, `{"type":"track","event":"Order Completed","messageId":"msg-%s","userId":"u-%s","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true},"click_ids":{"btn_ref":"srctok-0123456789abcdef"}},"properties":{"order_id":"%s","subtotal":"12.99","currency":"USD","products":[{"product_id":"p-1","price":"12.99","quantity":1}]}}`, id, id, id)
}

type harness struct {
	t         *testing.T
	sys       System
	vendorURL *url.URL

	mu       sync.Mutex
	hits     map[string]int    // order_id -> requests
	created  map[string]int    // order_id -> answered 201/200
	attempts map[string][]int  // item ID -> statuses, in order
	finals   []send.FinalInfo  // every final, in order
	keys     map[string]string // order_id -> the API key of its last request
	// rebound is closed once the test has rebound: the vendor holds its
	// answer to an old-key "rotate" order until then, so that the retry
	// is scheduled after the swap.
	rebound chan struct{}
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, hits: map[string]int{}, created: map[string]int{}, attempts: map[string][]int{}, keys: map[string]string{}, rebound: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(h.vendor))
	t.Cleanup(srv.Close)
	h.vendorURL, _ = url.Parse(srv.URL)
	return h
}

// vendor answers as Button would, with the faults Order describes.
func (h *harness) vendor(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	oid := gjson.GetBytes(body, "order_id").String()
	key := basicUser(r.Header.Get("Authorization"))
	if strings.HasPrefix(oid, "rotate") && key == oldKey {
		h.mu.Lock()
		h.hits[oid+"#seen"]++
		h.mu.Unlock()
		select {
		case <-h.rebound:
		case <-time.After(10 * time.Second):
		}
	}
	h.mu.Lock()
	h.hits[oid]++
	n := h.hits[oid]
	h.keys[oid] = key
	status := http.StatusOK
	switch {
	case key != oldKey && key != newKey:
		status = http.StatusUnauthorized
	case strings.HasPrefix(oid, "flaky") && n == 1, strings.HasPrefix(oid, "down"):
		status = http.StatusServiceUnavailable
	case strings.HasPrefix(oid, "rotate") && key != newKey:
		status = http.StatusServiceUnavailable
	case strings.HasPrefix(oid, "bad"):
		status = http.StatusBadRequest
	case h.created[oid] > 0:
		status = http.StatusConflict
	default:
		h.created[oid]++
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if status == http.StatusOK {
		fmt.Fprintf(w, `{"meta":{"status":"ok"},"object":{"order_id":%q}}`, oid)
		return
	}
	fmt.Fprintf(w, `{"meta":{"status":"error"},"error":{"message":"status %d"}}`, status)
}

func basicUser(auth string) string {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(auth, "Basic "))
	if err != nil {
		return ""
	}
	user, _, _ := strings.Cut(string(raw), ":")
	return user
}

func (h *harness) attempt(a send.AttemptInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts[a.Item] = append(h.attempts[a.Item], a.Status)
}

func (h *harness) final(f send.FinalInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.finals = append(h.finals, f)
}

func (h *harness) feed(events ...[]byte) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.sys.Feed(ctx, events...); err != nil {
		h.t.Fatalf("Feed: %v", err)
	}
}

// waitFinals waits for n final states and returns them.
func (h *harness) waitFinals(n int) []send.FinalInfo {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h.mu.Lock()
		got := append([]send.FinalInfo(nil), h.finals...)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d final states after 15 s, want %d: %+v", len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits a little for anything more (a final or an attempt that
// should not come).
func (h *harness) settle() { time.Sleep(150 * time.Millisecond) }

func (h *harness) snapshot() (finals []send.FinalInfo, attempts map[string][]int, hits, created map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	attempts = map[string][]int{}
	for k, v := range h.attempts {
		attempts[k] = append([]int(nil), v...)
	}
	hits, created = map[string]int{}, map[string]int{}
	for k, v := range h.hits {
		hits[k] = v
	}
	for k, v := range h.created {
		created[k] = v
	}
	return append([]send.FinalInfo(nil), h.finals...), attempts, hits, created
}

// one checks a single final state.
func one(t *testing.T, finals []send.FinalInfo, state outbox.State, attempts, status int) send.FinalInfo {
	t.Helper()
	if len(finals) != 1 {
		t.Fatalf("%d final states, want 1: %+v", len(finals), finals)
	}
	f := finals[0]
	if f.State != state || f.Attempts != attempts || f.Status != status {
		t.Errorf("final %s after %d attempts, status %d; want %s after %d, status %d (%+v)", f.State, f.Attempts, f.Status, state, attempts, status, f)
	}
	if f.Item == "" || f.Integration != Integration {
		t.Errorf("final names item %q of %q; want an item ID of %q", f.Item, f.Integration, Integration)
	}
	return f
}

func testDeliversOnce(t *testing.T, h *harness, _ Traits) {
	h.feed(Order("a-1"), Order("a-2"), Order("a-3"))
	h.waitFinals(3)
	h.settle()
	finals, attempts, hits, created := h.snapshot()
	if len(finals) != 3 {
		t.Fatalf("%d final states, want 3", len(finals))
	}
	ids := map[string]bool{}
	for _, f := range finals {
		if f.State != outbox.Delivered || f.Attempts != 1 || f.Status != http.StatusOK {
			t.Errorf("final %+v; want delivered after 1 attempt, status 200", f)
		}
		if !strings.HasPrefix(f.MessageID, "msg-a-") || f.VendorEvent == "" {
			t.Errorf("final %+v: want the event's message ID and the vendor event", f)
		}
		ids[f.Item] = true
		if got := attempts[f.Item]; len(got) != 1 {
			t.Errorf("item %s: attempts %v, want one", f.Item, got)
		}
	}
	if len(ids) != 3 {
		t.Errorf("%d distinct item IDs, want 3", len(ids))
	}
	for _, id := range []string{"a-1", "a-2", "a-3"} {
		if hits[id] != 1 || created[id] != 1 {
			t.Errorf("order %s: %d requests, %d created; want 1 and 1", id, hits[id], created[id])
		}
	}
}

func testRetries(t *testing.T, h *harness, _ Traits) {
	h.feed(Order("flaky-1"))
	f := one(t, h.waitFinals(1), outbox.Delivered, 2, http.StatusOK)
	_, attempts, _, created := h.snapshot()
	if got := attempts[f.Item]; len(got) != 2 || got[0] != http.StatusServiceUnavailable || got[1] != http.StatusOK {
		t.Errorf("attempts of the item: %v, want [503 200] under one item ID", got)
	}
	if created["flaky-1"] != 1 {
		t.Errorf("order created %d times, want 1", created["flaky-1"])
	}
}

func testClientErrorDead(t *testing.T, h *harness, _ Traits) {
	h.feed(Order("bad-1"))
	f := one(t, h.waitFinals(1), outbox.Dead, 1, http.StatusBadRequest)
	if f.Message == "" {
		t.Error("a dead request says why: Message is empty")
	}
	h.settle()
	if _, _, hits, _ := h.snapshot(); hits["bad-1"] != 1 {
		t.Errorf("a 400 was sent %d times, want once (not retried)", hits["bad-1"])
	}
}

func testGivesUp(t *testing.T, h *harness, _ Traits) {
	h.feed(Order("down-1"))
	one(t, h.waitFinals(1), outbox.Dead, 3, http.StatusServiceUnavailable)
	h.settle()
	if _, _, hits, _ := h.snapshot(); hits["down-1"] != 3 {
		t.Errorf("sent %d times, want MaxAttempts (3)", hits["down-1"])
	}
}

func testDuplicate(t *testing.T, h *harness, _ Traits) {
	h.mu.Lock()
	h.created["dup-1"] = 1 // the vendor has it already: it answers 409
	h.mu.Unlock()
	h.feed(Order("dup-1"))
	one(t, h.waitFinals(1), outbox.Delivered, 1, http.StatusConflict)
}

func testRefeed(t *testing.T, h *harness, tr Traits) {
	h.feed(Order("twice-1"))
	first := h.waitFinals(1)[0]
	h.feed(Order("twice-1"))
	if !tr.RefeedSendsAgain {
		h.settle()
		finals, attempts, hits, _ := h.snapshot()
		if len(finals) != 1 || hits["twice-1"] != 1 || len(attempts[first.Item]) != 1 {
			t.Errorf("fed twice: %d finals, %d requests; want the stored ID's one final and one request", len(finals), hits["twice-1"])
		}
		return
	}
	finals := h.waitFinals(2)
	h.settle()
	_, attempts, hits, created := h.snapshot()
	if finals[1].Item != first.Item {
		t.Errorf("the event fed again has item ID %s, first %s: want the same", finals[1].Item, first.Item)
	}
	if finals[1].State != outbox.Delivered || finals[1].Status != http.StatusConflict {
		t.Errorf("the second send: %+v; want delivered on the vendor's 409", finals[1])
	}
	if hits["twice-1"] != 2 || created["twice-1"] != 1 || len(attempts[first.Item]) != 2 {
		t.Errorf("fed twice: %d requests, %d created; want 2 and 1", hits["twice-1"], created["twice-1"])
	}
}

func testConfigSwap(t *testing.T, h *harness, _ Traits) {
	h.feed(Order("rotate-1"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, hits, _ := h.snapshot(); hits["rotate-1#seen"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no attempt within 10 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := h.sys.Rebind(Bind(t, newKey)); err != nil {
		t.Fatalf("Rebind: %v", err)
	}
	close(h.rebound)
	f := h.waitFinals(1)[0]
	h.mu.Lock()
	key := h.keys["rotate-1"]
	h.mu.Unlock()
	if f.State != outbox.Delivered || key != newKey {
		t.Errorf("final %+v with key %q; want delivered with the new key", f, key)
	}
}
