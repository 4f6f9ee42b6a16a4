// Package queuetest is the contract of an outbox, as tests: every
// behaviour the delivery worker (send.Worker) and the dead-letter tools
// rely on, run against any implementation of outbox.Queue, and of
// outbox.Store when it implements that too.
//
// An implementation runs it from one of its own tests:
//
//	func TestContract(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) outbox.Queue {
//			q := NewMyQueue(...)
//			t.Cleanup(func() { q.Close() })
//			return q
//		}, queuetest.Reopen(func(t *testing.T, q outbox.Queue) outbox.Queue {
//			// close q and open the same storage again
//		}))
//	}
//
// The Queue tests use nothing but the Queue methods (an item's stored
// state shows in what Enqueue returns for its ID, and in what Claim
// leases), so that a queue built on a log can pass them; the Store tests
// (Get, List, Counts, Replay, Remove) run only on a Store, and so do
// consistency checks between Counts and List after every Queue test.
package queuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// Open returns a new, empty queue for one test; it closes it at the end
// of the test (t.Cleanup) if the test has not, ignoring the error of a
// second Close.
type Open func(t *testing.T) outbox.Queue

// Option configures Run.
type Option func(*config)

type config struct {
	reopen func(t *testing.T, q outbox.Queue) outbox.Queue
}

// Reopen gives Run the means to test durability: fn closes q (as a crash
// would leave it, where it can; a clean Close otherwise) and opens the
// same storage again. Without it, the durability tests are skipped (an
// in-memory queue).
func Reopen(fn func(t *testing.T, q outbox.Queue) outbox.Queue) Option {
	return func(c *config) { c.reopen = fn }
}

// Run runs the contract tests, each as a subtest of t with a fresh queue
// from open.
func Run(t *testing.T, open Open, opts ...Option) {
	var c config
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	s := &suite{open: open, cfg: c}
	for _, tc := range s.queueTests() {
		t.Run(tc.name, func(t *testing.T) {
			q := open(t)
			tc.fn(t, q)
			if st, ok := q.(outbox.Store); ok && !tc.closes {
				AssertConsistent(t, st)
			}
		})
	}
	for _, tc := range s.storeTests() {
		t.Run(tc.name, func(t *testing.T) {
			st, ok := open(t).(outbox.Store)
			if !ok {
				t.Skip("not an outbox.Store")
			}
			tc.fn(t, st)
			AssertConsistent(t, st)
		})
	}
}

type suite struct {
	open Open
	cfg  config
}

type queueTest struct {
	name   string
	fn     func(t *testing.T, q outbox.Queue)
	closes bool // the test closes the queue: no consistency check after it
}

type storeTest struct {
	name string
	fn   func(t *testing.T, q outbox.Store)
}

func (s *suite) queueTests() []queueTest {
	return []queueTest{
		{name: "EnqueueStoresCopies", fn: testEnqueueStoresCopies},
		{name: "EnqueueDefaults", fn: testEnqueueDefaults},
		{name: "EnqueueInitialStates", fn: testEnqueueInitialStates},
		{name: "EnqueueIdempotent", fn: testEnqueueIdempotent},
		{name: "EnqueueInvalid", fn: testEnqueueInvalid},
		{name: "ClaimOrderAndLeases", fn: testClaimOrderAndLeases},
		{name: "ClaimConcurrent", fn: testClaimConcurrent},
		{name: "Update", fn: testUpdate},
		{name: "UpdateErrors", fn: testUpdateErrors},
		{name: "UpdateDefaults", fn: testUpdateDefaults},
		{name: "UpdateConcurrent", fn: testUpdateConcurrent},
		{name: "Purge", fn: s.testPurge},
		{name: "PurgeRefuses", fn: testPurgeRefuses},
		{name: "Closed", fn: testClosed, closes: true},
		{name: "CloseWhileBusy", fn: testCloseWhileBusy, closes: true},
		{name: "ContextDone", fn: testContextDone},
		{name: "Reopen", fn: s.testReopen, closes: true},
	}
}

func (s *suite) storeTests() []storeTest {
	return []storeTest{
		{name: "StoreGet", fn: testStoreGet},
		{name: "StoreList", fn: testStoreList},
		{name: "StoreListCursor", fn: testStoreListCursor},
		{name: "StoreCounts", fn: testStoreCounts},
		{name: "StoreReplay", fn: testStoreReplay},
		{name: "StoreRemove", fn: testStoreRemove},
		{name: "StoreContextDone", fn: testStoreContextDone},
	}
}

// Base is the reference "now" of the tests: items are due around it.
var Base = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

var ctx = context.Background()

// states lists every State.
var states = []outbox.State{outbox.Pending, outbox.Delivered, outbox.Dead, outbox.Skipped}

// NewItem returns a pending item with every field set, due at nextAt.
func NewItem(id string, nextAt time.Time) *outbox.Item {
	return &outbox.Item{
		ID:          id,
		Integration: "ga4@1.2.0/default",
		Blueprint:   "catalog:ga4@1.2.0",
		Variant:     "default",
		Event:       []byte(`{"event":"purchase","id":"` + id + `","value":42.5}`),
		Request:     1,
		MessageID:   "msg-" + id,
		VendorEvent: "purchase",
		Method:      "POST",
		URL:         "https://example.com/mp/collect?api_secret=REDACTED",
		State:       outbox.Pending,
		CreatedAt:   nextAt.Add(-time.Hour),
		NextAt:      nextAt,
		UpdatedAt:   nextAt.Add(-time.Hour),
	}
}

// inState returns NewItem(id, Base) in state s, last updated at updated.
func inState(id string, s outbox.State, updated time.Time) *outbox.Item {
	it := NewItem(id, Base)
	it.State, it.UpdatedAt = s, updated
	return it
}

func enqueue(t testing.TB, q outbox.Queue, items ...*outbox.Item) []*outbox.Item {
	t.Helper()
	out, err := q.Enqueue(ctx, items)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if len(out) != len(items) {
		t.Fatalf("Enqueue returned %d items for %d", len(out), len(items))
	}
	return out
}

// stored returns the stored copy of id, as Enqueue shows it (enqueueing
// an item that is already stored changes nothing): the Queue's own Get.
// The ID must be stored.
func stored(t testing.TB, q outbox.Queue, id string) *outbox.Item {
	t.Helper()
	probe := NewItem(id, Base)
	probe.Variant = "probe"
	got := enqueue(t, q, probe)[0]
	if got.Variant == "probe" && got.State == outbox.Pending && got.UpdatedAt.Equal(probe.UpdatedAt) {
		t.Fatalf("%s is not stored (enqueueing it made a new item)", id)
	}
	return got
}

func update(t testing.TB, q outbox.Queue, it *outbox.Item) {
	t.Helper()
	if err := q.Update(ctx, it); err != nil {
		t.Fatalf("Update(%q): %v", it.ID, err)
	}
}

func claim(t testing.TB, q outbox.Queue, now time.Time, max int) []*outbox.Item {
	t.Helper()
	items, err := q.Claim(ctx, now, max)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	return items
}

// assertPending checks, on a Store, how many items are pending (a Queue
// shows it through Claim only, which the tests check too).
func assertPending(t testing.TB, q outbox.Queue, want int, when string) {
	t.Helper()
	st, ok := q.(outbox.Store)
	if !ok {
		return
	}
	c, err := st.Counts(ctx)
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	if c[outbox.Pending] != want {
		t.Errorf("%d pending %s, want %d", c[outbox.Pending], when, want)
	}
}

// IDs returns the IDs of items, in order.
func IDs(items []*outbox.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// normal is it with its times in UTC, for comparisons.
func normal(it *outbox.Item) outbox.Item {
	c := *it
	c.CreatedAt = c.CreatedAt.UTC()
	c.NextAt = c.NextAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	if len(c.Event) == 0 {
		c.Event = nil
	}
	return c
}

// AssertItem fails t unless got is want (times compared as instants).
func AssertItem(t testing.TB, what string, got, want *outbox.Item) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: got no item, want %+v", what, want)
	}
	if g, w := normal(got), normal(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

// AssertConsistent fails t unless Counts matches List in every state, and
// every listed item is in the state listed, oldest UpdatedAt first.
func AssertConsistent(t testing.TB, q outbox.Store) {
	t.Helper()
	counts, err := q.Counts(ctx)
	if err != nil {
		t.Fatalf("Counts: %v", err)
	}
	for _, s := range states {
		if _, ok := counts[s]; !ok {
			t.Errorf("Counts has no entry for %s", s)
		}
		items := ListAll(t, q, s, 7)
		if len(items) != counts[s] {
			t.Errorf("Counts[%s] = %d, List has %d", s, counts[s], len(items))
		}
		for i, it := range items {
			if it.State != s {
				t.Errorf("List(%s) holds %q in state %s", s, it.ID, it.State)
			}
			if i > 0 && it.UpdatedAt.Before(items[i-1].UpdatedAt) {
				t.Errorf("List(%s) is not oldest first at %q", s, it.ID)
			}
		}
	}
}

// ListAll walks every page of List.
func ListAll(t testing.TB, q outbox.Store, s outbox.State, limit int) []*outbox.Item {
	t.Helper()
	var all []*outbox.Item
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("List(%s) does not end", s)
		}
		items, next, err := q.List(ctx, s, cursor, limit)
		if err != nil {
			t.Fatalf("List(%s, %q, %d): %v", s, cursor, limit, err)
		}
		if limit > 0 && len(items) > limit {
			t.Fatalf("List returned %d items, limit %d", len(items), limit)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) == 0 {
			t.Fatalf("List returned an empty page with a next cursor")
		}
		cursor = next
	}
}

// ---- Queue ----

func testEnqueueStoresCopies(t *testing.T, q outbox.Queue) {
	loc := time.FixedZone("CEST", 2*3600)
	in := &outbox.Item{
		ID:          "evt-1/0",
		Integration: "meta-capi@2.0.1/server",
		Blueprint:   "./blueprints/meta.yaml",
		Variant:     "server",
		Event:       []byte(`{"event":"lead","email":"a@example.com"}`),
		Request:     3,
		MessageID:   "m-1",
		VendorEvent: "Lead",
		Method:      "POST",
		URL:         "https://graph.example.com/v19/123/events?access_token=REDACTED",
		State:       outbox.Pending,
		Attempts:    2,
		CreatedAt:   Base.Add(-time.Minute).In(loc),
		NextAt:      Base.Add(-time.Second),
		UpdatedAt:   Base.Add(-30 * time.Second),
		LastStatus:  503,
		LastError:   "503 Service Unavailable",
	}
	before := *in
	before.Event = bytes.Clone(in.Event)
	got := enqueue(t, q, in)[0]
	AssertItem(t, "Enqueue", got, in)
	if got == in || &got.Event[0] == &in.Event[0] {
		t.Error("Enqueue returned the caller's item or event instead of a copy")
	}
	if !reflect.DeepEqual(*in, before) {
		t.Error("Enqueue modified its argument")
	}
	got.Event[0] = 'X' // the caller owns what it got
	claimed := claim(t, q, Base, 10)
	if len(claimed) != 1 {
		t.Fatalf("Claim = %v", IDs(claimed))
	}
	AssertItem(t, "Claim", claimed[0], in)
	if st, ok := q.(outbox.Store); ok {
		g, err := st.Get(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		AssertItem(t, "Get", g, in)
	}
}

func testEnqueueDefaults(t *testing.T, q outbox.Queue) {
	in := &outbox.Item{ID: "bare", Event: []byte(`{}`)}
	before := time.Now()
	got := enqueue(t, q, in)[0]
	after := time.Now()
	if got.State != outbox.Pending {
		t.Errorf("State = %q, want pending", got.State)
	}
	for name, ts := range map[string]time.Time{"CreatedAt": got.CreatedAt, "NextAt": got.NextAt, "UpdatedAt": got.UpdatedAt} {
		if ts.Before(before.Truncate(time.Microsecond)) || ts.After(after) {
			t.Errorf("%s = %v, want between %v and %v", name, ts, before, after)
		}
	}
	if in.State != "" || !in.CreatedAt.IsZero() {
		t.Error("Enqueue modified its argument")
	}
	// Due at once; a zero now in Claim means the current time.
	if c := claim(t, q, time.Time{}, 10); !slices.Equal(IDs(c), []string{"bare"}) {
		t.Errorf("Claim = %v, want [bare]", IDs(c))
	}
}

func testEnqueueInitialStates(t *testing.T, q outbox.Queue) {
	got := enqueue(t, q,
		NewItem("p", Base.Add(-time.Minute)),
		inState("dl", outbox.Delivered, Base),
		inState("dd", outbox.Dead, Base),
		inState("sk", outbox.Skipped, Base),
	)
	if got[1].Event != nil {
		t.Error("an item enqueued as delivered kept its event")
	}
	if got[2].Event == nil || got[3].Event == nil {
		t.Error("dead or skipped items lost their event")
	}
	for i, s := range states {
		if got[i].State != s {
			t.Errorf("%s enqueued as %s", got[i].ID, got[i].State)
		}
	}
	if c := claim(t, q, Base.Add(time.Hour), 10); !slices.Equal(IDs(c), []string{"p"}) {
		t.Errorf("Claim = %v, want [p]: only pending items are claimed", IDs(c))
	}
	assertPending(t, q, 1, "after enqueueing one pending item")
}

func testEnqueueIdempotent(t *testing.T, q outbox.Queue) {
	again := func(id string, s outbox.State) {
		t.Helper()
		before := stored(t, q, id)
		dup := NewItem(id, Base.Add(time.Hour))
		dup.Variant = "other"
		got := enqueue(t, q, dup, NewItem(id+"-new", Base))
		AssertItem(t, "enqueued again", got[0], before)
		if got[0].State != s {
			t.Errorf("%s is %s, want %s", id, got[0].State, s)
		}
		if got[1].State != outbox.Pending || got[1].ID != id+"-new" {
			t.Errorf("a new item in the same batch = %+v", got[1])
		}
	}
	enqueue(t, q, NewItem("p", Base))
	again("p", outbox.Pending)

	enqueue(t, q, NewItem("dl", Base), NewItem("dd", Base), inState("sk", outbox.Skipped, Base))
	claimed := IDs(claim(t, q, Base, 10))
	slices.Sort(claimed) // all due at Base: their order is not the contract's
	if !slices.Equal(claimed, []string{"dd", "dl", "p", "p-new"}) {
		t.Fatalf("Claim = %v", claimed)
	}
	update(t, q, &outbox.Item{ID: "dl", State: outbox.Delivered, Attempts: 1, LastStatus: 200, UpdatedAt: Base})
	update(t, q, &outbox.Item{ID: "dd", State: outbox.Dead, Attempts: 5, LastStatus: 400, LastError: "bad", UpdatedAt: Base})
	again("dl", outbox.Delivered)
	again("dd", outbox.Dead)
	again("sk", outbox.Skipped)

	// Within one batch, the first wins.
	a, b := NewItem("x", Base), NewItem("x", Base.Add(time.Hour))
	b.Variant = "second"
	got := enqueue(t, q, a, b)
	AssertItem(t, "first", got[0], a)
	AssertItem(t, "second", got[1], a)
}

func testEnqueueInvalid(t *testing.T, q outbox.Queue) {
	for _, tt := range []struct {
		name string
		item *outbox.Item
	}{
		{"nil item", nil},
		{"empty ID", &outbox.Item{Event: []byte(`{}`)}},
		{"unknown state", &outbox.Item{ID: "a", State: "lost"}},
	} {
		// A valid item first: the batch is all or nothing.
		if _, err := q.Enqueue(ctx, []*outbox.Item{NewItem("ok", Base), tt.item}); err == nil {
			t.Errorf("%s: Enqueue succeeded", tt.name)
		}
	}
	assertPending(t, q, 0, "after refused batches")
	if c := claim(t, q, Base.Add(time.Hour), 10); len(c) != 0 {
		t.Errorf("a refused batch was stored in part: %v", IDs(c))
	}
	got, err := q.Enqueue(ctx, nil)
	if err != nil || len(got) != 0 {
		t.Errorf("Enqueue(nil) = %v, %v", got, err)
	}
}

func testClaimOrderAndLeases(t *testing.T, q outbox.Queue) {
	enqueue(t, q,
		NewItem("b", Base.Add(-1*time.Minute)),
		NewItem("a", Base.Add(-3*time.Minute)),
		NewItem("c", Base.Add(-2*time.Minute)),
		NewItem("d", Base.Add(1*time.Minute)), // not yet due
		NewItem("e", Base),                    // due exactly now
		inState("z", outbox.Dead, Base.Add(-time.Hour)),
	)
	for _, st := range []struct {
		name    string
		release []string
		now     time.Time
		max     int
		want    []string
	}{
		{name: "oldest first, max honoured", now: Base, max: 2, want: []string{"a", "c"}},
		{name: "leased items skipped", now: Base, max: 10, want: []string{"b", "e"}},
		{name: "nothing left due", now: Base, max: 10, want: nil},
		{name: "max zero", now: Base.Add(time.Hour), max: 0, want: nil},
		{name: "max negative", now: Base.Add(time.Hour), max: -1, want: nil},
		{name: "later now", now: Base.Add(time.Minute), max: 10, want: []string{"d"}},
		{name: "release gives back", release: []string{"c", "a", "unknown"}, now: Base, max: 10, want: []string{"a", "c"}},
		{name: "release one", release: []string{"e"}, now: Base.Add(time.Hour), max: 10, want: []string{"e"}},
	} {
		if st.release != nil {
			if err := q.Release(ctx, st.release...); err != nil {
				t.Fatalf("%s: Release: %v", st.name, err)
			}
		}
		got := claim(t, q, st.now, st.max)
		if !slices.Equal(IDs(got), st.want) {
			t.Errorf("%s: Claim(%v, %d) = %v, want %v", st.name, st.now.Sub(Base), st.max, IDs(got), st.want)
		}
		for _, it := range got {
			if it.State != outbox.Pending {
				t.Errorf("%s: claimed %q in state %s", st.name, it.ID, it.State)
			}
		}
	}
	// Release of nothing, and of unleased IDs, is fine.
	if err := q.Release(ctx); err != nil {
		t.Errorf("Release() = %v", err)
	}
}

func testClaimConcurrent(t *testing.T, q outbox.Queue) {
	const n = 300
	items := make([]*outbox.Item, n)
	for i := range items {
		items[i] = NewItem(fmt.Sprintf("i%03d", i), Base.Add(-time.Duration(i)*time.Second))
	}
	enqueue(t, q, items...)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				got, err := q.Claim(ctx, Base, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, it := range got {
					seen[it.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Errorf("claimed %d distinct items, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s claimed %d times", id, c)
		}
	}
}

func testUpdate(t *testing.T, q outbox.Queue) {
	for i, tt := range []struct {
		name      string
		update    outbox.Item
		wantEvent bool
		claimable bool // again, once due
	}{
		{
			name:      "pending with a later NextAt",
			update:    outbox.Item{State: outbox.Pending, Attempts: 1, NextAt: Base.Add(time.Hour), UpdatedAt: Base, LastStatus: 503, LastError: "503 Service Unavailable"},
			wantEvent: true,
			claimable: true,
		},
		{
			name:   "delivered drops the event",
			update: outbox.Item{State: outbox.Delivered, Attempts: 1, UpdatedAt: Base, LastStatus: 200},
		},
		{
			name:      "dead keeps the event",
			update:    outbox.Item{State: outbox.Dead, Attempts: 8, UpdatedAt: Base, LastStatus: 400, LastError: "400 Bad Request"},
			wantEvent: true,
		},
		{
			name:      "skipped keeps the event",
			update:    outbox.Item{State: outbox.Skipped, UpdatedAt: Base, LastError: "consent withdrawn"},
			wantEvent: true,
		},
	} {
		x, y, z := fmt.Sprintf("x%d", i), fmt.Sprintf("y%d", i), fmt.Sprintf("z%d", i)
		orig := NewItem(x, Base.Add(-time.Minute))
		enqueue(t, q, orig, NewItem(y, Base.Add(-2*time.Minute)), NewItem(z, Base.Add(2*time.Hour)))
		if c := claim(t, q, Base, 10); !slices.Equal(IDs(c), []string{y, x}) {
			t.Fatalf("%s: Claim = %v", tt.name, IDs(c))
		}
		u := tt.update
		u.ID = x
		u.Variant = "ignored" // only the outcome is stored
		u.Event = []byte("ignored")
		update(t, q, &u)

		want := *orig
		want.State, want.Attempts, want.NextAt, want.UpdatedAt = u.State, u.Attempts, u.NextAt, u.UpdatedAt
		want.LastStatus, want.LastError = u.LastStatus, u.LastError
		if !tt.wantEvent {
			want.Event = nil
		}
		AssertItem(t, tt.name, stored(t, q, x), &want)

		// The lease is gone, but the item is claimable only when due (and
		// pending); y stays leased.
		if c := claim(t, q, Base, 10); len(c) != 0 {
			t.Errorf("%s: Claim at Base = %v, want none", tt.name, IDs(c))
		}
		later := claim(t, q, Base.Add(3*time.Hour), 10)
		wantIDs := []string{z}
		if tt.claimable {
			wantIDs = []string{x, z}
		}
		if !slices.Equal(IDs(later), wantIDs) {
			t.Errorf("%s: Claim later = %v, want %v", tt.name, IDs(later), wantIDs)
		}
		for _, it := range append(later, &outbox.Item{ID: y}) {
			update(t, q, &outbox.Item{ID: it.ID, State: outbox.Skipped, UpdatedAt: Base})
		}
	}
}

func testUpdateErrors(t *testing.T, q outbox.Queue) {
	enqueue(t, q, NewItem("d", Base), NewItem("p", Base))
	update(t, q, &outbox.Item{ID: "d", State: outbox.Delivered, UpdatedAt: Base})
	for _, tt := range []struct {
		name string
		item *outbox.Item
		is   error
	}{
		{"nil", nil, nil},
		{"empty ID", &outbox.Item{State: outbox.Pending}, nil},
		{"unknown ID", &outbox.Item{ID: "nope", State: outbox.Dead}, outbox.ErrNotFound},
		{"empty state", &outbox.Item{ID: "p"}, nil},
		{"unknown state", &outbox.Item{ID: "p", State: "gone"}, nil},
		{"delivered back to pending", &outbox.Item{ID: "d", State: outbox.Pending, NextAt: Base}, nil},
		{"delivered to dead", &outbox.Item{ID: "d", State: outbox.Dead}, nil},
	} {
		err := q.Update(ctx, tt.item)
		if err == nil {
			t.Errorf("%s: Update succeeded", tt.name)
			continue
		}
		if tt.is != nil && !errors.Is(err, tt.is) {
			t.Errorf("%s: Update = %v, want %v", tt.name, err, tt.is)
		}
	}
	if s := stored(t, q, "d"); s.State != outbox.Delivered {
		t.Errorf("d is %s after refused updates", s.State)
	}
	AssertItem(t, "p after refused updates", stored(t, q, "p"), NewItem("p", Base))
	// Delivered again is allowed.
	update(t, q, &outbox.Item{ID: "d", State: outbox.Delivered, Attempts: 2, UpdatedAt: Base.Add(time.Second)})
	if s := stored(t, q, "d"); s.Attempts != 2 {
		t.Errorf("d = %+v after a second delivered update", s)
	}
	assertPending(t, q, 1, "after refused updates")
}

func testUpdateDefaults(t *testing.T, q outbox.Queue) {
	enqueue(t, q, NewItem("x", Base.Add(time.Hour)))
	before := time.Now().Truncate(time.Microsecond)
	update(t, q, &outbox.Item{ID: "x", State: outbox.Pending, Attempts: 1})
	got := stored(t, q, "x")
	if got.NextAt.Before(before) || got.UpdatedAt.Before(before) {
		t.Errorf("zero NextAt/UpdatedAt not defaulted to now: %v %v", got.NextAt, got.UpdatedAt)
	}
	if c := claim(t, q, time.Now(), 1); len(c) != 1 {
		t.Error("an item with a defaulted NextAt is not due")
	}
}

func testUpdateConcurrent(t *testing.T, q outbox.Queue) {
	const workers, per = 8, 40
	var items []*outbox.Item
	for i := range workers * per {
		items = append(items, NewItem(fmt.Sprintf("c%03d", i), Base.Add(-time.Duration(i)*time.Millisecond)))
	}
	enqueue(t, q, items...)
	claimed := claim(t, q, Base, len(items))
	if len(claimed) != len(items) {
		t.Fatalf("claimed %d", len(claimed))
	}
	outcome := func(i int) outbox.State { return states[i%len(states)] }
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range per {
				i := w*per + j
				it := claimed[i]
				it.State = outcome(i)
				it.Attempts++
				it.NextAt = Base.Add(time.Hour)
				it.UpdatedAt = Base.Add(time.Duration(i) * time.Millisecond)
				it.LastStatus = 200 + i
				if err := q.Update(ctx, it); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := 0
	for i, it := range claimed {
		if outcome(i) == outbox.Pending {
			want++
		}
		got := stored(t, q, it.ID)
		if got.State != it.State || got.LastStatus != it.LastStatus || got.Attempts != 1 {
			t.Errorf("%s = %s/%d/%d, want %s/%d/1", it.ID, got.State, got.LastStatus, got.Attempts, it.State, it.LastStatus)
		}
	}
	assertPending(t, q, want, "after concurrent updates")
	// Every lease was released: the pending ones are claimable when due.
	if c := claim(t, q, Base.Add(time.Hour), len(items)); len(c) != want {
		t.Errorf("Claim after updates = %d items, want %d", len(c), want)
	}
}

// purgeFixture enqueues, in every state, an item updated an hour before
// Base ("STATE-old") and one updated at Base ("STATE-new").
func purgeFixture(t testing.TB, q outbox.Queue) []string {
	t.Helper()
	var items []*outbox.Item
	var ids []string
	for _, s := range states {
		items = append(items, inState(string(s)+"-old", s, Base.Add(-time.Hour)), inState(string(s)+"-new", s, Base))
		ids = append(ids, string(s)+"-old", string(s)+"-new")
	}
	enqueue(t, q, items...)
	sort.Strings(ids)
	return ids
}

// present returns which of ids are stored (as Enqueue tells), and leaves
// those that were not stored out of the queue again only if it can: the
// probe stores them, so call it last, or on a Store.
func present(t testing.TB, q outbox.Queue, ids []string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		if st, ok := q.(outbox.Store); ok {
			if _, err := st.Get(ctx, id); err == nil {
				out = append(out, id)
			} else if !errors.Is(err, outbox.ErrNotFound) {
				t.Fatalf("Get(%s): %v", id, err)
			}
			continue
		}
		probe := NewItem(id, Base)
		probe.Variant = "probe"
		if got := enqueue(t, q, probe)[0]; got.Variant != "probe" {
			out = append(out, id)
		}
	}
	return out
}

func without(all []string, gone ...string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(id string) bool { return slices.Contains(gone, id) })
}

// testPurge runs each case on a queue of its own (the one Run gives is
// left empty).
func (s *suite) testPurge(t *testing.T, _ outbox.Queue) {
	for _, tt := range []struct {
		name   string
		before time.Time
		states []outbox.State
		gone   []string
	}{
		{"default states: delivered and skipped", Base, nil, []string{"delivered-old", "skipped-old"}},
		{"before is exclusive", Base.Add(-time.Hour), nil, nil},
		{"later cutoff", Base.Add(time.Nanosecond), nil, []string{"delivered-new", "delivered-old", "skipped-new", "skipped-old"}},
		{"dead letters when named", Base, []outbox.State{outbox.Dead}, []string{"dead-old"}},
		{"named states, repeated", Base, []outbox.State{outbox.Dead, outbox.Delivered, outbox.Dead}, []string{"dead-old", "delivered-old"}},
		{"zero time purges nothing", time.Time{}, []outbox.State{outbox.Delivered, outbox.Skipped, outbox.Dead}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q := s.open(t)
			all := purgeFixture(t, q)
			n, err := q.Purge(ctx, tt.before, tt.states...)
			if err != nil {
				t.Fatalf("Purge: %v", err)
			}
			if n != len(tt.gone) {
				t.Errorf("Purge = %d, want %d", n, len(tt.gone))
			}
			if st, ok := q.(outbox.Store); ok {
				AssertConsistent(t, st)
			}
			assertPending(t, q, 2, "after a purge (never purged)")
			if got, want := present(t, q, all), without(all, tt.gone...); !reflect.DeepEqual(got, want) {
				t.Errorf("left\n %v\nwant\n %v", got, want)
			}
			// A purged ID is forgotten: enqueueing it again makes a new
			// pending item.
			for _, id := range tt.gone {
				if got := enqueue(t, q, NewItem(id, Base))[0]; got.State != outbox.Pending {
					t.Errorf("%s enqueued again is %s, want pending", id, got.State)
				}
			}
		})
	}
}

func testPurgeRefuses(t *testing.T, q outbox.Queue) {
	all := purgeFixture(t, q)
	for _, tt := range []struct {
		states []outbox.State
		want   string
	}{
		{[]outbox.State{outbox.Pending}, "pending items are never purged"},
		{[]outbox.State{outbox.Delivered, outbox.Pending}, "pending items are never purged"},
		{[]outbox.State{"gone"}, `unknown state "gone"`},
	} {
		n, err := q.Purge(ctx, Base.Add(time.Hour), tt.states...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Purge(%v) = %d, %v; want an error with %q", tt.states, n, err, tt.want)
		}
	}
	if got := present(t, q, all); !reflect.DeepEqual(got, all) {
		t.Errorf("a refused purge deleted items: %v left", got)
	}
}

func testClosed(t *testing.T, q outbox.Queue) {
	enqueue(t, q, NewItem("x", Base))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Enqueue": func() error { _, err := q.Enqueue(ctx, []*outbox.Item{NewItem("y", Base)}); return err },
		"Claim":   func() error { _, err := q.Claim(ctx, Base, 1); return err },
		"Update":  func() error { return q.Update(ctx, &outbox.Item{ID: "x", State: outbox.Dead}) },
		"Release": func() error { return q.Release(ctx, "x") },
		"Purge":   func() error { _, err := q.Purge(ctx, Base); return err },
		"Close":   q.Close,
	}
	if st, ok := q.(outbox.Store); ok {
		calls["Get"] = func() error { _, err := st.Get(ctx, "x"); return err }
		calls["List"] = func() error { _, _, err := st.List(ctx, outbox.Pending, "", 1); return err }
		calls["Counts"] = func() error { _, err := st.Counts(ctx); return err }
		calls["Replay"] = func() error { _, err := st.Replay(ctx, nil, Base); return err }
		calls["Remove"] = func() error { _, err := st.Remove(ctx, "x"); return err }
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, outbox.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func testCloseWhileBusy(t *testing.T, q outbox.Queue) {
	enqueue(t, q, NewItem("x", Base))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := q.Update(ctx, &outbox.Item{ID: "x", State: outbox.Pending, Attempts: i, NextAt: Base})
				if _, err2 := q.Claim(ctx, Base, 1); err == nil {
					err = err2
				}
				if err != nil {
					if !errors.Is(err, outbox.ErrClosed) {
						t.Errorf("error while closing: %v", err)
					}
					return
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func testContextDone(t *testing.T, q outbox.Queue) {
	enqueue(t, q, NewItem("x", Base), inState("old", outbox.Delivered, Base.Add(-time.Hour)))
	done, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]func() error{
		"Enqueue": func() error {
			y := NewItem("y", Base)
			y.Variant = "done"
			_, err := q.Enqueue(done, []*outbox.Item{y})
			return err
		},
		"Claim":   func() error { _, err := q.Claim(done, Base, 1); return err },
		"Update":  func() error { return q.Update(done, &outbox.Item{ID: "x", State: outbox.Dead}) },
		"Release": func() error { return q.Release(done, "x") },
		"Purge":   func() error { _, err := q.Purge(done, Base); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a done context = %v, want context.Canceled", name, err)
		}
	}
	// Nothing happened: x is still pending and unleased, old still there,
	// y unknown.
	if c := claim(t, q, Base, 10); !slices.Equal(IDs(c), []string{"x"}) {
		t.Errorf("Claim = %v, want [x]", IDs(c))
	}
	AssertItem(t, "x", stored(t, q, "x"), NewItem("x", Base))
	if s := stored(t, q, "old"); s.State != outbox.Delivered {
		t.Errorf("old is %s", s.State)
	}
	if got := enqueue(t, q, NewItem("y", Base))[0]; got.Variant == "done" {
		t.Errorf("y was stored by a call with a done context: %+v", got)
	}
}

func (s *suite) testReopen(t *testing.T, q outbox.Queue) {
	if s.cfg.reopen == nil {
		_ = q.Close()
		t.Skip("no Reopen given: the queue keeps nothing")
	}
	var items []*outbox.Item
	for i := range 6 {
		items = append(items, NewItem(fmt.Sprintf("r%d", i), Base.Add(-time.Duration(6-i)*time.Minute)))
	}
	enqueue(t, q, items...)
	claimed := claim(t, q, Base, 5) // r0..r4
	if len(claimed) != 5 {
		t.Fatalf("claimed %v", IDs(claimed))
	}
	update(t, q, &outbox.Item{ID: "r0", State: outbox.Delivered, Attempts: 1, UpdatedAt: Base, LastStatus: 204})
	update(t, q, &outbox.Item{ID: "r1", State: outbox.Dead, Attempts: 3, UpdatedAt: Base, LastStatus: 422, LastError: "invalid"})
	update(t, q, &outbox.Item{ID: "r2", State: outbox.Pending, Attempts: 1, NextAt: Base.Add(time.Minute), UpdatedAt: Base, LastStatus: 429})
	update(t, q, &outbox.Item{ID: "r3", State: outbox.Skipped, UpdatedAt: Base})
	// r4 stays claimed, r5 was never claimed.
	if c := claim(t, q, Base, 10); !slices.Equal(IDs(c), []string{"r5"}) {
		t.Fatalf("Claim before reopening = %v", IDs(c))
	}
	enqueue(t, q, inState("purged", outbox.Delivered, Base.Add(-time.Hour)))
	if n, err := q.Purge(ctx, Base); err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	before := map[string]*outbox.Item{}
	for _, it := range items {
		before[it.ID] = stored(t, q, it.ID)
	}
	var counts map[outbox.State]int
	if st, ok := q.(outbox.Store); ok {
		var err error
		if counts, err = st.Counts(ctx); err != nil {
			t.Fatal(err)
		}
	}

	q2 := s.cfg.reopen(t, q)
	for id, want := range before {
		AssertItem(t, "after reopening", stored(t, q2, id), want)
	}
	assertPending(t, q2, 3, "after reopening")
	if st, ok := q2.(outbox.Store); ok {
		got, err := st.Counts(ctx)
		if err != nil || !reflect.DeepEqual(got, counts) {
			t.Errorf("Counts after reopening = %v, %v; want %v", got, err, counts)
		}
		AssertConsistent(t, st)
	}
	// Leases did not survive: r4 and r5 are claimable; r2 when due.
	if c := claim(t, q2, Base, 10); !slices.Equal(IDs(c), []string{"r4", "r5"}) {
		t.Errorf("Claim after reopening = %v, want [r4 r5]", IDs(c))
	}
	if c := claim(t, q2, Base.Add(time.Minute), 10); !slices.Equal(IDs(c), []string{"r2"}) {
		t.Errorf("Claim of r2 = %v", IDs(c))
	}
	// The purged ID stayed forgotten.
	if got := enqueue(t, q2, NewItem("purged", Base))[0]; got.State != outbox.Pending {
		t.Errorf("the purged item came back as %s", got.State)
	}
	if err := q2.Close(); err != nil {
		t.Errorf("Close after reopening: %v", err)
	}
}

// ---- Store ----

func testStoreGet(t *testing.T, q outbox.Store) {
	in := NewItem("a", Base)
	enqueue(t, q, in)
	got, err := q.Get(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	AssertItem(t, "Get", got, in)
	got.Event[0] = 'X'
	again, _ := q.Get(ctx, "a")
	AssertItem(t, "Get after changing the copy", again, in)
	for _, id := range []string{"nope", ""} {
		if _, err := q.Get(ctx, id); !errors.Is(err, outbox.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", id, err)
		}
	}
}

func testStoreList(t *testing.T, q outbox.Store) {
	const n = 10
	var items []*outbox.Item
	// Enqueued newest first, so that List order is not insertion order.
	for i := n - 1; i >= 0; i-- {
		it := NewItem(fmt.Sprintf("i%02d", i), Base)
		it.UpdatedAt = Base.Add(time.Duration(i) * time.Second)
		items = append(items, it)
	}
	enqueue(t, q, items...)
	var all []string
	for i := range n {
		all = append(all, fmt.Sprintf("i%02d", i))
	}
	for _, limit := range []int{1, 3, 5, 10, 11, 0, -1} {
		var pages [][]string
		cursor := ""
		for {
			got, next, err := q.List(ctx, outbox.Pending, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			pages = append(pages, IDs(got))
			if next == "" {
				break
			}
			cursor = next
		}
		if flat := slices.Concat(pages...); !slices.Equal(flat, all) {
			t.Errorf("limit %d: pages %v, want %v in order", limit, pages, all)
		}
		per := limit
		if per <= 0 {
			per = outbox.DefaultListLimit
		}
		if want := max(1, (n+per-1)/per); len(pages) != want {
			t.Errorf("limit %d: %d pages, want %d: %v", limit, len(pages), want, pages)
		}
	}
	if got, next, err := q.List(ctx, outbox.Dead, "", 10); err != nil || len(got) != 0 || next != "" {
		t.Errorf("List(dead) = %v, %q, %v", IDs(got), next, err)
	}
	for _, c := range []string{"!!!", "AAAA", "not base64 at all", "|"} {
		if _, _, err := q.List(ctx, outbox.Pending, c, 3); err == nil {
			t.Errorf("List with cursor %q succeeded", c)
		}
	}
	if _, _, err := q.List(ctx, "unknown", "", 3); err == nil {
		t.Error("List of an unknown state succeeded")
	}
}

func testStoreListCursor(t *testing.T, q outbox.Store) {
	var items []*outbox.Item
	for i := range 6 {
		items = append(items, inState(fmt.Sprintf("d%d", i), outbox.Dead, Base.Add(time.Duration(i)*time.Second)))
	}
	enqueue(t, q, items...)
	page, next, err := q.List(ctx, outbox.Dead, "", 2)
	if err != nil || len(page) != 2 || next == "" {
		t.Fatalf("first page %v, %q, %v", IDs(page), next, err)
	}
	// d0 and d1 listed; purge them (d1 is the cursor's item).
	if n, err := q.Purge(ctx, Base.Add(2*time.Second), outbox.Dead); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	page, next, err = q.List(ctx, outbox.Dead, next, 2)
	if err != nil || !slices.Equal(IDs(page), []string{"d2", "d3"}) || next == "" {
		t.Fatalf("page after a purge: %v, %q, %v; want [d2 d3] and more", IDs(page), next, err)
	}
	// The cursor's item (d3) moves to another state: the cursor still
	// works, and the item is listed in its new state.
	if n, err := q.Replay(ctx, []string{"d3"}, Base); err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v", n, err)
	}
	page, next, err = q.List(ctx, outbox.Dead, next, 10)
	if err != nil || !slices.Equal(IDs(page), []string{"d4", "d5"}) || next != "" {
		t.Errorf("last page %v, %q, %v; want [d4 d5] and the end", IDs(page), next, err)
	}
	if p := ListAll(t, q, outbox.Pending, 0); !slices.Equal(IDs(p), []string{"d3"}) {
		t.Errorf("pending = %v, want [d3]", IDs(p))
	}
}

func testStoreCounts(t *testing.T, q outbox.Store) {
	got, err := q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[outbox.State]int{outbox.Pending: 0, outbox.Delivered: 0, outbox.Dead: 0, outbox.Skipped: 0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Counts of an empty store = %v, want every state at 0", got)
	}
	purgeFixture(t, q)
	got, _ = q.Counts(ctx)
	for _, s := range states {
		want[s] = 2
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Counts = %v, want %v", got, want)
	}
}

func testStoreReplay(t *testing.T, q outbox.Store) {
	var items []*outbox.Item
	for _, id := range []string{"d1", "d2", "d3", "p1", "s1", "ok"} {
		items = append(items, NewItem(id, Base.Add(-time.Minute)))
	}
	enqueue(t, q, items...)
	for _, id := range []string{"d1", "d2", "d3"} {
		update(t, q, &outbox.Item{ID: id, State: outbox.Dead, Attempts: 7, UpdatedAt: Base, LastStatus: 500, LastError: "boom"})
	}
	update(t, q, &outbox.Item{ID: "s1", State: outbox.Skipped, UpdatedAt: Base})
	update(t, q, &outbox.Item{ID: "ok", State: outbox.Delivered, UpdatedAt: Base, LastStatus: 200})
	p1, _ := q.Get(ctx, "p1")

	now := Base.Add(time.Hour)
	for _, st := range []struct {
		name string
		ids  []string
		want int
		dead int
	}{
		{"some IDs, others ignored", []string{"d1", "p1", "s1", "ok", "unknown", "d1", ""}, 1, 2},
		{"empty list", []string{}, 0, 2},
		{"all", nil, 2, 0},
		{"all again", nil, 0, 0},
	} {
		n, err := q.Replay(ctx, st.ids, now)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if n != st.want {
			t.Errorf("%s: Replay = %d, want %d", st.name, n, st.want)
		}
		if c, _ := q.Counts(ctx); c[outbox.Dead] != st.dead {
			t.Errorf("%s: %d dead left, want %d", st.name, c[outbox.Dead], st.dead)
		}
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		got, err := q.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want := *items[slices.IndexFunc(items, func(it *outbox.Item) bool { return it.ID == id })]
		want.State, want.NextAt, want.UpdatedAt = outbox.Pending, now, now
		want.Attempts, want.LastStatus, want.LastError = 0, 0, ""
		AssertItem(t, "replayed "+id, got, &want)
	}
	got, _ := q.Get(ctx, "p1")
	AssertItem(t, "p1 untouched", got, p1)
	if c := claim(t, q, now, 10); !slices.Equal(IDs(c), []string{"p1", "d1", "d2", "d3"}) {
		t.Errorf("Claim = %v", IDs(c))
	}
	// A zero now means the current time.
	update(t, q, &outbox.Item{ID: "d1", State: outbox.Dead, UpdatedAt: Base})
	before := time.Now().Truncate(time.Microsecond)
	if n, err := q.Replay(ctx, []string{"d1"}, time.Time{}); err != nil || n != 1 {
		t.Fatalf("Replay(zero now) = %d, %v", n, err)
	}
	if got, _ := q.Get(ctx, "d1"); got.NextAt.Before(before) {
		t.Errorf("Replay with a zero now: due at %v", got.NextAt)
	}
}

func testStoreRemove(t *testing.T, q outbox.Store) {
	all := purgeFixture(t, q)
	claimed := claim(t, q, Base.Add(time.Hour), 10)
	if len(claimed) != 2 {
		t.Fatalf("claimed %v", IDs(claimed))
	}
	gone := []string{"pending-old", "delivered-new", "dead-old", "skipped-new"}
	n, err := q.Remove(ctx, append(gone, "unknown", "")...)
	if err != nil || n != len(gone) {
		t.Fatalf("Remove = %d, %v; want %d", n, err, len(gone))
	}
	if got := present(t, q, all); !reflect.DeepEqual(got, without(all, gone...)) {
		t.Errorf("left %v", got)
	}
	// A removed item, even leased, is gone for Update; the lease too.
	if err := q.Update(ctx, &outbox.Item{ID: "pending-old", State: outbox.Delivered}); !errors.Is(err, outbox.ErrNotFound) {
		t.Errorf("Update of a removed item = %v, want ErrNotFound", err)
	}
	if n, err := q.Remove(ctx, gone...); err != nil || n != 0 {
		t.Errorf("Remove again = %d, %v; want 0", n, err)
	}
	if n, err := q.Remove(ctx); err != nil || n != 0 {
		t.Errorf("Remove() = %d, %v", n, err)
	}
	// A removed ID is forgotten.
	for _, id := range gone {
		if got := enqueue(t, q, NewItem(id, Base))[0]; got.State != outbox.Pending {
			t.Errorf("%s enqueued after its removal is %s", id, got.State)
		}
	}
	if c := claim(t, q, Base.Add(time.Hour), 10); !slices.Contains(IDs(c), "pending-old") {
		t.Errorf("pending-old, removed while leased and enqueued again, is not claimable: %v", IDs(c))
	}
}

func testStoreContextDone(t *testing.T, q outbox.Store) {
	enqueue(t, q, inState("d", outbox.Dead, Base))
	done, cancel := context.WithCancel(ctx)
	cancel()
	calls := map[string]func() error{
		"Get":    func() error { _, err := q.Get(done, "d"); return err },
		"List":   func() error { _, _, err := q.List(done, outbox.Dead, "", 1); return err },
		"Counts": func() error { _, err := q.Counts(done); return err },
		"Replay": func() error { _, err := q.Replay(done, nil, Base); return err },
		"Remove": func() error { _, err := q.Remove(done, "d"); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a done context = %v, want context.Canceled", name, err)
		}
	}
	if got, err := q.Get(ctx, "d"); err != nil || got.State != outbox.Dead {
		t.Errorf("d = %v, %v; want it dead, as it was", got, err)
	}
}
