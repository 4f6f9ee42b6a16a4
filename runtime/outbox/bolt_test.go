package outbox

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// tBase is the reference "now" of the tests.
var tBase = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC)

var tctx = context.Background()

// openTempBolt opens a new outbox in a temporary folder (in a sub-folder that
// OpenBolt must create) and closes it at the end of the test.
func openTempBolt(tb testing.TB, opts ...BoltOption) (*Bolt, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "data", "outbox.db")
	q, err := OpenBolt(path, opts...)
	if err != nil {
		tb.Fatalf("OpenBolt: %v", err)
	}
	tb.Cleanup(func() { _ = q.Close() })
	return q, path
}

// testItem is a pending item with every field set, due at nextAt.
func testItem(id string, nextAt time.Time) *Item {
	return &Item{
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
		State:       Pending,
		Attempts:    0,
		CreatedAt:   nextAt.Add(-time.Hour),
		NextAt:      nextAt,
		UpdatedAt:   nextAt.Add(-time.Hour),
	}
}

func enqueueOK(tb testing.TB, q *Bolt, items ...*Item) []*Item {
	tb.Helper()
	out, err := q.Enqueue(tctx, items)
	if err != nil {
		tb.Fatalf("Enqueue: %v", err)
	}
	return out
}

func getOK(tb testing.TB, q *Bolt, id string) *Item {
	tb.Helper()
	it, err := q.Get(tctx, id)
	if err != nil {
		tb.Fatalf("Get(%q): %v", id, err)
	}
	return it
}

func updateOK(tb testing.TB, q *Bolt, it *Item) {
	tb.Helper()
	if err := q.Update(tctx, it); err != nil {
		tb.Fatalf("Update(%q): %v", it.ID, err)
	}
}

func claimOK(tb testing.TB, q *Bolt, now time.Time, max int) []*Item {
	tb.Helper()
	items, err := q.Claim(tctx, now, max)
	if err != nil {
		tb.Fatalf("Claim: %v", err)
	}
	return items
}

func countsOK(tb testing.TB, q *Bolt) map[State]int {
	tb.Helper()
	c, err := q.Counts(tctx)
	if err != nil {
		tb.Fatalf("Counts: %v", err)
	}
	return c
}

func itemIDs(items []*Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// utcItem returns a copy of it with its times in UTC, for comparisons.
func utcItem(it *Item) Item {
	c := *it
	c.CreatedAt = c.CreatedAt.UTC()
	c.NextAt = c.NextAt.UTC()
	c.UpdatedAt = c.UpdatedAt.UTC()
	return c
}

func assertItem(tb testing.TB, what string, got, want *Item) {
	tb.Helper()
	if got == nil {
		tb.Fatalf("%s: got nil item, want %+v", what, want)
	}
	g, w := utcItem(got), utcItem(want)
	if !reflect.DeepEqual(g, w) {
		tb.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

func countsOf(pending, delivered, dead, skipped int) map[State]int {
	return map[State]int{Pending: pending, Delivered: delivered, Dead: dead, Skipped: skipped}
}

func assertCountsEq(tb testing.TB, q *Bolt, want map[State]int) {
	tb.Helper()
	if got := countsOK(tb, q); !reflect.DeepEqual(got, want) {
		tb.Errorf("Counts = %v, want %v", got, want)
	}
}

// listEvery walks every page of List.
func listEvery(tb testing.TB, q *Bolt, s State, limit int) []*Item {
	tb.Helper()
	var all []*Item
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			tb.Fatalf("List(%s) does not end", s)
		}
		items, next, err := q.List(tctx, s, cursor, limit)
		if err != nil {
			tb.Fatalf("List(%s, %q, %d): %v", s, cursor, limit, err)
		}
		if limit > 0 && len(items) > limit {
			tb.Fatalf("List returned %d items, limit %d", len(items), limit)
		}
		all = append(all, items...)
		if next == "" {
			return all
		}
		if len(items) == 0 {
			tb.Fatalf("List returned an empty page with a next cursor")
		}
		cursor = next
	}
}

// assertIndexesConsistent checks that Counts matches List for every state.
func assertIndexesConsistent(tb testing.TB, q *Bolt) {
	tb.Helper()
	counts := countsOK(tb, q)
	for _, s := range states {
		items := listEvery(tb, q, s, 7)
		if len(items) != counts[s] {
			tb.Errorf("Counts[%s] = %d, List has %d", s, counts[s], len(items))
		}
		for i, it := range items {
			if it.State != s {
				tb.Errorf("List(%s) holds %q in state %s", s, it.ID, it.State)
			}
			if i > 0 && it.UpdatedAt.Before(items[i-1].UpdatedAt) {
				tb.Errorf("List(%s) not oldest first at %q", s, it.ID)
			}
		}
	}
}

func TestBoltRoundTrip(t *testing.T) {
	q, _ := openTempBolt(t)
	loc := time.FixedZone("CEST", 2*3600)
	in := &Item{
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
		State:       Pending,
		Attempts:    2,
		CreatedAt:   tBase.Add(-time.Minute).In(loc),
		NextAt:      tBase.Add(-time.Second),
		UpdatedAt:   tBase.Add(-30 * time.Second),
		LastStatus:  503,
		LastError:   "503 Service Unavailable",
	}
	before := *in
	before.Event = bytes.Clone(in.Event)

	stored := enqueueOK(t, q, in)
	if len(stored) != 1 {
		t.Fatalf("Enqueue returned %d items", len(stored))
	}
	assertItem(t, "Enqueue", stored[0], in)
	if stored[0] == in || &stored[0].Event[0] == &in.Event[0] {
		t.Error("Enqueue returned the caller's item or event instead of a copy")
	}
	if !reflect.DeepEqual(*in, before) {
		t.Error("Enqueue modified its argument")
	}
	assertItem(t, "Get", getOK(t, q, in.ID), in)

	claimed := claimOK(t, q, tBase, 10)
	if len(claimed) != 1 {
		t.Fatalf("Claim returned %v", itemIDs(claimed))
	}
	assertItem(t, "Claim", claimed[0], in)

	listed, next, err := q.List(tctx, Pending, "", 10)
	if err != nil || next != "" || len(listed) != 1 {
		t.Fatalf("List = %v, %q, %v", itemIDs(listed), next, err)
	}
	assertItem(t, "List", listed[0], in)
	assertCountsEq(t, q, countsOf(1, 0, 0, 0))
}

func TestBoltEnqueueDefaults(t *testing.T) {
	q, _ := openTempBolt(t)
	in := &Item{ID: "bare", Event: []byte(`{}`)}
	before := time.Now()
	got := enqueueOK(t, q, in)[0]
	after := time.Now()
	if got.State != Pending {
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
	assertItem(t, "Get", getOK(t, q, "bare"), got)
	// Due at once.
	if c := claimOK(t, q, time.Now(), 10); len(c) != 1 {
		t.Errorf("Claim = %v, want [bare]", itemIDs(c))
	}
}

func TestBoltEnqueueInitialStates(t *testing.T) {
	q, _ := openTempBolt(t)
	items := []*Item{
		testItem("p", tBase.Add(-time.Minute)),
		testItem("dl", tBase.Add(-time.Minute)),
		testItem("dd", tBase.Add(-time.Minute)),
		testItem("sk", tBase.Add(-time.Minute)),
	}
	items[1].State, items[2].State, items[3].State = Delivered, Dead, Skipped
	stored := enqueueOK(t, q, items...)
	if stored[1].Event != nil {
		t.Error("an item enqueued as delivered kept its event")
	}
	if stored[2].Event == nil || stored[3].Event == nil {
		t.Error("dead or skipped items lost their event")
	}
	assertCountsEq(t, q, countsOf(1, 1, 1, 1))
	if c := claimOK(t, q, tBase, 10); !slices.Equal(itemIDs(c), []string{"p"}) {
		t.Errorf("Claim = %v, want [p]", itemIDs(c))
	}
	assertIndexesConsistent(t, q)
}

func TestBoltEnqueueDuplicate(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, q *Bolt) // stores "x" first
		again *Item                       // enqueued with the same ID
		count map[State]int
	}{
		{
			name:  "pending",
			setup: func(t *testing.T, q *Bolt) { enqueueOK(t, q, testItem("x", tBase)) },
			again: func() *Item { it := testItem("x", tBase.Add(time.Hour)); it.Variant = "other"; return it }(),
			count: countsOf(1, 0, 0, 0),
		},
		{
			name: "delivered stays delivered",
			setup: func(t *testing.T, q *Bolt) {
				enqueueOK(t, q, testItem("x", tBase))
				updateOK(t, q, &Item{ID: "x", State: Delivered, Attempts: 1, LastStatus: 200, UpdatedAt: tBase})
			},
			again: testItem("x", tBase),
			count: countsOf(0, 1, 0, 0),
		},
		{
			name: "dead stays dead",
			setup: func(t *testing.T, q *Bolt) {
				enqueueOK(t, q, testItem("x", tBase))
				updateOK(t, q, &Item{ID: "x", State: Dead, Attempts: 5, LastStatus: 400, LastError: "bad", UpdatedAt: tBase})
			},
			again: testItem("x", tBase),
			count: countsOf(0, 0, 1, 0),
		},
		{
			name: "skipped stays skipped",
			setup: func(t *testing.T, q *Bolt) {
				it := testItem("x", tBase)
				it.State = Skipped
				enqueueOK(t, q, it)
			},
			again: testItem("x", tBase),
			count: countsOf(0, 0, 0, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := openTempBolt(t)
			tt.setup(t, q)
			stored := getOK(t, q, "x")
			got := enqueueOK(t, q, tt.again, testItem("y", tBase))
			assertItem(t, "duplicate", got[0], stored)
			assertItem(t, "after", getOK(t, q, "x"), stored)
			if got[1].ID != "y" || got[1].State != Pending {
				t.Errorf("new item in the same batch = %+v", got[1])
			}
			want := cloneCounts(tt.count)
			want[Pending]++
			assertCountsEq(t, q, want)
			assertIndexesConsistent(t, q)
		})
	}

	t.Run("within one batch", func(t *testing.T) {
		q, _ := openTempBolt(t)
		a, b := testItem("x", tBase), testItem("x", tBase.Add(time.Hour))
		b.Variant = "second"
		got := enqueueOK(t, q, a, b)
		assertItem(t, "first", got[0], a)
		assertItem(t, "second", got[1], a)
		assertCountsEq(t, q, countsOf(1, 0, 0, 0))
		assertIndexesConsistent(t, q)
	})
}

func cloneCounts(m map[State]int) map[State]int {
	c := make(map[State]int, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestBoltEnqueueInvalid(t *testing.T) {
	tests := []struct {
		name string
		item *Item
	}{
		{"nil item", nil},
		{"empty ID", &Item{Event: []byte(`{}`)}},
		{"unknown state", &Item{ID: "a", State: "lost"}},
		{"ID too long", &Item{ID: strings.Repeat("x", MaxIDLen+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := openTempBolt(t)
			// A valid item first: the batch is all or nothing.
			if _, err := q.Enqueue(tctx, []*Item{testItem("ok", tBase), tt.item}); err == nil {
				t.Fatal("Enqueue succeeded")
			}
			assertCountsEq(t, q, countsOf(0, 0, 0, 0))
			if _, err := q.Get(tctx, "ok"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(ok) = %v, want ErrNotFound", err)
			}
		})
	}
	t.Run("empty batch", func(t *testing.T) {
		q, _ := openTempBolt(t)
		got, err := q.Enqueue(tctx, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("Enqueue(nil) = %v, %v", got, err)
		}
	})
}

func TestBoltClaim(t *testing.T) {
	q, _ := openTempBolt(t)
	enqueueOK(t, q,
		testItem("b", tBase.Add(-1*time.Minute)),
		testItem("a", tBase.Add(-3*time.Minute)),
		testItem("c", tBase.Add(-2*time.Minute)),
		testItem("d", tBase.Add(1*time.Minute)), // not yet due
		testItem("e", tBase),                    // due exactly now
		func() *Item { it := testItem("z", tBase.Add(-time.Hour)); it.State = Dead; return it }(),
	)
	steps := []struct {
		name    string
		release []string
		now     time.Time
		max     int
		want    []string
	}{
		{name: "oldest first, max honoured", now: tBase, max: 2, want: []string{"a", "c"}},
		{name: "leased items skipped", now: tBase, max: 10, want: []string{"b", "e"}},
		{name: "nothing left due", now: tBase, max: 10, want: nil},
		{name: "max zero", now: tBase.Add(time.Hour), max: 0, want: nil},
		{name: "later now", now: tBase.Add(time.Minute), max: 10, want: []string{"d"}},
		{name: "release gives back", release: []string{"c", "a", "unknown"}, now: tBase, max: 10, want: []string{"a", "c"}},
		{name: "release one", release: []string{"e"}, now: tBase.Add(time.Hour), max: 10, want: []string{"e"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.release != nil {
				if err := q.Release(tctx, st.release...); err != nil {
					t.Fatalf("Release: %v", err)
				}
			}
			got := claimOK(t, q, st.now, st.max)
			if !slices.Equal(itemIDs(got), st.want) {
				t.Errorf("Claim(%v, %d) = %v, want %v", st.now.Sub(tBase), st.max, itemIDs(got), st.want)
			}
			for _, it := range got {
				if it.State != Pending {
					t.Errorf("claimed %q in state %s", it.ID, it.State)
				}
			}
		})
	}
}

func TestBoltClaimConcurrent(t *testing.T) {
	q, _ := openTempBolt(t)
	const n = 300
	items := make([]*Item, n)
	for i := range items {
		items[i] = testItem(fmt.Sprintf("i%03d", i), tBase.Add(-time.Duration(i)*time.Second))
	}
	enqueueOK(t, q, items...)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				got, err := q.Claim(tctx, tBase, 7)
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

func TestBoltUpdate(t *testing.T) {
	tests := []struct {
		name      string
		update    Item
		wantState State
		wantEvent bool
		claimAt   time.Time // when it is claimable again (zero: never)
		countsOf  map[State]int
	}{
		{
			name:      "pending with a later NextAt",
			update:    Item{State: Pending, Attempts: 1, NextAt: tBase.Add(time.Hour), UpdatedAt: tBase, LastStatus: 503, LastError: "503 Service Unavailable"},
			wantState: Pending,
			wantEvent: true,
			claimAt:   tBase.Add(time.Hour),
			countsOf:  countsOf(3, 0, 0, 0),
		},
		{
			name:      "delivered drops the event",
			update:    Item{State: Delivered, Attempts: 1, UpdatedAt: tBase, LastStatus: 200},
			wantState: Delivered,
			countsOf:  countsOf(2, 1, 0, 0),
		},
		{
			name:      "dead keeps the event",
			update:    Item{State: Dead, Attempts: 8, UpdatedAt: tBase, LastStatus: 400, LastError: "400 Bad Request"},
			wantState: Dead,
			wantEvent: true,
			countsOf:  countsOf(2, 0, 1, 0),
		},
		{
			name:      "skipped keeps the event",
			update:    Item{State: Skipped, UpdatedAt: tBase, LastError: "consent withdrawn"},
			wantState: Skipped,
			wantEvent: true,
			countsOf:  countsOf(2, 0, 0, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, _ := openTempBolt(t)
			orig := testItem("x", tBase.Add(-time.Minute))
			enqueueOK(t, q, orig, testItem("y", tBase.Add(-2*time.Minute)), testItem("z", tBase.Add(2*time.Hour)))
			if c := claimOK(t, q, tBase, 10); !slices.Equal(itemIDs(c), []string{"y", "x"}) {
				t.Fatalf("Claim = %v", itemIDs(c))
			}
			u := tt.update
			u.ID = "x"
			u.Variant = "ignored" // only the outcome is stored
			updateOK(t, q, &u)

			want := *orig
			want.State, want.Attempts, want.NextAt, want.UpdatedAt = u.State, u.Attempts, u.NextAt, u.UpdatedAt
			want.LastStatus, want.LastError = u.LastStatus, u.LastError
			if !tt.wantEvent {
				want.Event = nil
			}
			got := getOK(t, q, "x")
			assertItem(t, "Get", got, &want)
			assertCountsEq(t, q, tt.countsOf)
			assertIndexesConsistent(t, q)

			// The lease is gone, but the item is only claimable when due.
			if c := claimOK(t, q, tBase, 10); len(c) != 0 {
				t.Errorf("Claim at tBase = %v, want none", itemIDs(c))
			}
			later := claimOK(t, q, tBase.Add(3*time.Hour), 10)
			wantIDs := []string{"z"}
			if !tt.claimAt.IsZero() {
				wantIDs = []string{"x", "z"}
			}
			if !slices.Equal(itemIDs(later), wantIDs) {
				t.Errorf("Claim later = %v, want %v", itemIDs(later), wantIDs)
			}

			// Enqueueing it again changes nothing.
			again := enqueueOK(t, q, testItem("x", tBase))
			assertItem(t, "re-enqueue", again[0], &want)
		})
	}
}

func TestBoltUpdateErrors(t *testing.T) {
	q, _ := openTempBolt(t)
	enqueueOK(t, q, testItem("d", tBase), testItem("p", tBase))
	updateOK(t, q, &Item{ID: "d", State: Delivered, UpdatedAt: tBase})
	tests := []struct {
		name string
		item *Item
		is   error
	}{
		{"nil", nil, nil},
		{"empty ID", &Item{State: Pending}, nil},
		{"unknown ID", &Item{ID: "nope", State: Dead}, ErrNotFound},
		{"empty state", &Item{ID: "p"}, nil},
		{"unknown state", &Item{ID: "p", State: "gone"}, nil},
		{"delivered back to pending", &Item{ID: "d", State: Pending, NextAt: tBase}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := q.Update(tctx, tt.item)
			if err == nil {
				t.Fatal("Update succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Update = %v, want %v", err, tt.is)
			}
		})
	}
	assertCountsEq(t, q, countsOf(1, 1, 0, 0))
	assertIndexesConsistent(t, q)
	// Updating a delivered item as delivered again is allowed.
	updateOK(t, q, &Item{ID: "d", State: Delivered, Attempts: 2, UpdatedAt: tBase.Add(time.Second)})
	assertCountsEq(t, q, countsOf(1, 1, 0, 0))
}

func TestBoltUpdateDefaults(t *testing.T) {
	q, _ := openTempBolt(t)
	enqueueOK(t, q, testItem("x", tBase.Add(time.Hour)))
	before := time.Now()
	updateOK(t, q, &Item{ID: "x", State: Pending, Attempts: 1})
	got := getOK(t, q, "x")
	if got.NextAt.Before(before.Truncate(time.Microsecond)) || got.UpdatedAt.Before(before.Truncate(time.Microsecond)) {
		t.Errorf("zero NextAt/UpdatedAt not defaulted to now: %v %v", got.NextAt, got.UpdatedAt)
	}
	if c := claimOK(t, q, time.Now(), 1); len(c) != 1 {
		t.Error("item with a defaulted NextAt is not due")
	}
}

func TestBoltList(t *testing.T) {
	q, _ := openTempBolt(t)
	const n = 10
	var items []*Item
	// Enqueued newest first, so that List order is not insertion order.
	for i := n - 1; i >= 0; i-- {
		it := testItem(fmt.Sprintf("i%02d", i), tBase)
		it.UpdatedAt = tBase.Add(time.Duration(i) * time.Second)
		items = append(items, it)
	}
	enqueueOK(t, q, items...)
	var all []string
	for i := range n {
		all = append(all, fmt.Sprintf("i%02d", i))
	}

	for _, limit := range []int{1, 3, 5, 10, 11, 0} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var pages [][]string
			cursor := ""
			for {
				got, next, err := q.List(tctx, Pending, cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				pages = append(pages, itemIDs(got))
				if next == "" {
					break
				}
				cursor = next
			}
			var flat []string
			for _, p := range pages {
				flat = append(flat, p...)
			}
			if !slices.Equal(flat, all) {
				t.Errorf("pages %v, want %v in order", pages, all)
			}
			per := limit
			if per <= 0 {
				per = DefaultListLimit
			}
			if want := max(1, (n+per-1)/per); len(pages) != want {
				t.Errorf("%d pages, want %d: %v", len(pages), want, pages)
			}
		})
	}

	t.Run("empty state", func(t *testing.T) {
		got, next, err := q.List(tctx, Dead, "", 10)
		if err != nil || len(got) != 0 || next != "" {
			t.Errorf("List(dead) = %v, %q, %v", itemIDs(got), next, err)
		}
	})
	t.Run("item moved between pages", func(t *testing.T) {
		page, next, err := q.List(tctx, Pending, "", 3)
		if err != nil || next == "" {
			t.Fatal(page, next, err)
		}
		// The last item of the page goes dead: the cursor still works.
		updateOK(t, q, &Item{ID: page[2].ID, State: Dead, UpdatedAt: tBase.Add(time.Minute)})
		rest := listIDsFrom(t, q, Pending, next, 3)
		if !slices.Equal(rest, all[3:]) {
			t.Errorf("rest = %v, want %v", rest, all[3:])
		}
		dead, _, _ := q.List(tctx, Dead, "", 10)
		if !slices.Equal(itemIDs(dead), []string{page[2].ID}) {
			t.Errorf("dead = %v", itemIDs(dead))
		}
		assertCountsEq(t, q, countsOf(n-1, 0, 1, 0))
	})
	t.Run("bad arguments", func(t *testing.T) {
		for _, c := range []string{"!!!", "AAAA", "not base64 at all"} {
			if _, _, err := q.List(tctx, Pending, c, 3); err == nil {
				t.Errorf("List with cursor %q succeeded", c)
			}
		}
		if _, _, err := q.List(tctx, "unknown", "", 3); err == nil {
			t.Error("List of an unknown state succeeded")
		}
	})
}

func listIDsFrom(tb testing.TB, q *Bolt, s State, cursor string, limit int) []string {
	tb.Helper()
	var out []string
	for {
		got, next, err := q.List(tctx, s, cursor, limit)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, itemIDs(got)...)
		if next == "" {
			return out
		}
		cursor = next
	}
}

func TestBoltReplay(t *testing.T) {
	q, _ := openTempBolt(t)
	var items []*Item
	for _, id := range []string{"d1", "d2", "d3", "p1", "s1", "ok"} {
		items = append(items, testItem(id, tBase.Add(-time.Minute)))
	}
	enqueueOK(t, q, items...)
	for _, id := range []string{"d1", "d2", "d3"} {
		updateOK(t, q, &Item{ID: id, State: Dead, Attempts: 7, UpdatedAt: tBase, LastStatus: 500, LastError: "boom"})
	}
	updateOK(t, q, &Item{ID: "s1", State: Skipped, UpdatedAt: tBase})
	updateOK(t, q, &Item{ID: "ok", State: Delivered, UpdatedAt: tBase, LastStatus: 200})
	assertCountsEq(t, q, countsOf(1, 1, 3, 1))
	p1 := getOK(t, q, "p1")

	now := tBase.Add(time.Hour)
	steps := []struct {
		name   string
		ids    []string
		want   int
		counts map[State]int
	}{
		{"some IDs, non-dead ignored", []string{"d1", "p1", "s1", "ok", "unknown", "d1", ""}, 1, countsOf(2, 1, 2, 1)},
		{"empty list", []string{}, 0, countsOf(2, 1, 2, 1)},
		{"all", nil, 2, countsOf(4, 1, 0, 1)},
		{"all again", nil, 0, countsOf(4, 1, 0, 1)},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n, err := q.Replay(tctx, st.ids, now)
			if err != nil {
				t.Fatal(err)
			}
			if n != st.want {
				t.Errorf("Replay = %d, want %d", n, st.want)
			}
			assertCountsEq(t, q, st.counts)
			assertIndexesConsistent(t, q)
		})
	}
	for _, id := range []string{"d1", "d2", "d3"} {
		got := getOK(t, q, id)
		want := *items[slices.IndexFunc(items, func(it *Item) bool { return it.ID == id })]
		want.State, want.NextAt, want.UpdatedAt = Pending, now, now
		want.Attempts, want.LastStatus, want.LastError = 0, 0, ""
		assertItem(t, "replayed "+id, got, &want)
	}
	assertItem(t, "p1 untouched", getOK(t, q, "p1"), p1)
	if s := getOK(t, q, "s1"); s.State != Skipped {
		t.Errorf("s1 = %s", s.State)
	}
	if c := claimOK(t, q, now, 10); !slices.Equal(itemIDs(c), []string{"p1", "d1", "d2", "d3"}) {
		t.Errorf("Claim = %v", itemIDs(c))
	}
}

func TestBoltReopen(t *testing.T) {
	q, path := openTempBolt(t)
	var items []*Item
	for i := range 6 {
		items = append(items, testItem(fmt.Sprintf("r%d", i), tBase.Add(-time.Duration(6-i)*time.Minute)))
	}
	enqueueOK(t, q, items...)
	claimed := claimOK(t, q, tBase, 5) // r0..r4
	updateOK(t, q, &Item{ID: "r0", State: Delivered, Attempts: 1, UpdatedAt: tBase, LastStatus: 204})
	updateOK(t, q, &Item{ID: "r1", State: Dead, Attempts: 3, UpdatedAt: tBase, LastStatus: 422, LastError: "invalid"})
	updateOK(t, q, &Item{ID: "r2", State: Pending, Attempts: 1, NextAt: tBase.Add(time.Minute), UpdatedAt: tBase, LastStatus: 429})
	updateOK(t, q, &Item{ID: "r3", State: Skipped, UpdatedAt: tBase})
	// r4 stays claimed, r5 was never claimed.
	if len(claimed) != 5 {
		t.Fatalf("claimed %v", itemIDs(claimed))
	}
	if c := claimOK(t, q, tBase, 10); !slices.Equal(itemIDs(c), []string{"r5"}) {
		t.Fatalf("Claim before close = %v", itemIDs(c))
	}
	before := map[string]*Item{}
	for _, it := range items {
		before[it.ID] = getOK(t, q, it.ID)
	}
	counts := countsOK(t, q)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	for id, want := range before {
		assertItem(t, "after reopen", getOK(t, q2, id), want)
	}
	assertCountsEq(t, q2, counts)
	assertIndexesConsistent(t, q2)
	// Leases did not survive: r4 and r5 are claimable; r2 when due.
	if c := claimOK(t, q2, tBase, 10); !slices.Equal(itemIDs(c), []string{"r4", "r5"}) {
		t.Errorf("Claim after reopen = %v, want [r4 r5]", itemIDs(c))
	}
	if c := claimOK(t, q2, tBase.Add(time.Minute), 10); !slices.Equal(itemIDs(c), []string{"r2"}) {
		t.Errorf("Claim of r2 = %v", itemIDs(c))
	}
	// Re-enqueueing after reopen is still a no-op.
	if got := enqueueOK(t, q2, testItem("r0", tBase))[0]; got.State != Delivered {
		t.Errorf("re-enqueued r0 is %s", got.State)
	}
}

func TestBoltInUse(t *testing.T) {
	q, path := openTempBolt(t)
	for _, tt := range []struct {
		name string
		opts []BoltOption
		max  time.Duration
	}{
		{"default timeout", nil, 3 * time.Second},
		{"short timeout", []BoltOption{WithLockTimeout(50 * time.Millisecond)}, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			q2, err := OpenBolt(path, tt.opts...)
			took := time.Since(start)
			if err == nil {
				q2.Close()
				t.Fatal("second OpenBolt succeeded")
			}
			if !errors.Is(err, ErrInUse) {
				t.Errorf("error %v does not match ErrInUse", err)
			}
			if want := "outbox " + path + " is in use by another process"; err.Error() != want {
				t.Errorf("error = %q, want %q", err, want)
			}
			if took > tt.max {
				t.Errorf("took %v", took)
			}
		})
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	q3, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt after Close: %v", err)
	}
	q3.Close()
}

func TestBoltConcurrentUpdates(t *testing.T) {
	q, _ := openTempBolt(t)
	const workers, per = 8, 40
	var items []*Item
	for i := range workers * per {
		items = append(items, testItem(fmt.Sprintf("c%03d", i), tBase.Add(-time.Duration(i)*time.Millisecond)))
	}
	enqueueOK(t, q, items...)
	claimed := claimOK(t, q, tBase, len(items))
	if len(claimed) != len(items) {
		t.Fatalf("claimed %d", len(claimed))
	}
	outcome := func(i int) State { return states[i%len(states)] }
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for j := range per {
				i := w*per + j
				it := claimed[i]
				it.State = outcome(i)
				it.Attempts++
				it.NextAt = tBase.Add(time.Hour)
				it.UpdatedAt = tBase.Add(time.Duration(i) * time.Millisecond)
				it.LastStatus = 200 + i
				if err := q.Update(tctx, it); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	want := map[State]int{}
	for i, it := range claimed {
		want[outcome(i)]++
		got := getOK(t, q, it.ID)
		if got.State != it.State || got.LastStatus != it.LastStatus || got.Attempts != 1 {
			t.Errorf("%s = %s/%d/%d, want %s/%d/1", it.ID, got.State, got.LastStatus, got.Attempts, it.State, it.LastStatus)
		}
	}
	assertCountsEq(t, q, want)
	assertIndexesConsistent(t, q)
	// Every lease was released: the pending ones are claimable when due.
	if c := claimOK(t, q, tBase.Add(time.Hour), len(items)); len(c) != want[Pending] {
		t.Errorf("Claim after updates = %d items, want %d", len(c), want[Pending])
	}
}

func TestBoltFileMode(t *testing.T) {
	_, path := openTempBolt(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("file mode = %v, want 0600", got)
		}
		di, err := os.Stat(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if got := di.Mode().Perm(); got&0o077 != 0 {
			t.Errorf("created folder mode = %v, want 0700", got)
		}
	}
}

func TestBoltClosed(t *testing.T) {
	q, _ := openTempBolt(t)
	enqueueOK(t, q, testItem("x", tBase))
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Enqueue": func() error { _, err := q.Enqueue(tctx, []*Item{testItem("y", tBase)}); return err },
		"Claim":   func() error { _, err := q.Claim(tctx, tBase, 1); return err },
		"Update":  func() error { return q.Update(tctx, &Item{ID: "x", State: Dead}) },
		"Release": func() error { return q.Release(tctx, "x") },
		"Get":     func() error { _, err := q.Get(tctx, "x"); return err },
		"List":    func() error { _, _, err := q.List(tctx, Pending, "", 1); return err },
		"Counts":  func() error { _, err := q.Counts(tctx); return err },
		"Replay":  func() error { _, err := q.Replay(tctx, nil, tBase); return err },
		"Close":   q.Close,
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestBoltCloseWhileBusy(t *testing.T) {
	q, _ := openTempBolt(t)
	enqueueOK(t, q, testItem("x", tBase))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				err := q.Update(tctx, &Item{ID: "x", State: Pending, Attempts: i, NextAt: tBase})
				if _, err2 := q.Claim(tctx, tBase, 1); err == nil {
					err = err2
				}
				if err != nil {
					if !errors.Is(err, ErrClosed) {
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

func TestBoltContextCanceled(t *testing.T) {
	q, _ := openTempBolt(t)
	enqueueOK(t, q, testItem("x", tBase))
	cctx, cancel := context.WithCancel(tctx)
	cancel()
	calls := map[string]func() error{
		"Enqueue": func() error { _, err := q.Enqueue(cctx, []*Item{testItem("y", tBase)}); return err },
		"Claim":   func() error { _, err := q.Claim(cctx, tBase, 1); return err },
		"Update":  func() error { return q.Update(cctx, &Item{ID: "x", State: Dead}) },
		"Release": func() error { return q.Release(cctx, "x") },
		"Get":     func() error { _, err := q.Get(cctx, "x"); return err },
		"List":    func() error { _, _, err := q.List(cctx, Pending, "", 1); return err },
		"Counts":  func() error { _, err := q.Counts(cctx); return err },
		"Replay":  func() error { _, err := q.Replay(cctx, nil, tBase); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context = %v", name, err)
		}
	}
	// Nothing happened.
	assertItem(t, "x", getOK(t, q, "x"), testItem("x", tBase))
	if _, err := q.Get(tctx, "y"); !errors.Is(err, ErrNotFound) {
		t.Errorf("y was enqueued: %v", err)
	}
}

func TestBoltGetNotFound(t *testing.T) {
	q, _ := openTempBolt(t)
	for _, id := range []string{"nope", "", strings.Repeat("x", MaxIDLen+1)} {
		if _, err := q.Get(tctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%.10q) = %v, want ErrNotFound", id, err)
		}
	}
}

// corrupt rewrites the stored record of id in the closed outbox at path.
func corruptRecord(t *testing.T, path, id string, record []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketItems).Put([]byte(id), record)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestBoltCorruptRecord(t *testing.T) {
	records := map[string][]byte{
		"bad JSON":      []byte(`{"id":"bad","state":`),
		"not an object": []byte(`[1,2,3]`),
		"other ID":      []byte(`{"id":"other","state":"pending"}`),
		"unknown state": []byte(`{"id":"bad","state":"weird"}`),
		"empty":         {},
	}
	for name, record := range records {
		t.Run(name, func(t *testing.T) {
			q, path := openTempBolt(t)
			enqueueOK(t, q, testItem("bad", tBase.Add(-time.Minute)), testItem("good", tBase.Add(-2*time.Minute)))
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			corruptRecord(t, path, "bad", record)
			q, err := OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()

			check := func(op string, err error) {
				t.Helper()
				if err == nil {
					t.Errorf("%s succeeded on a corrupt record", op)
					return
				}
				if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"bad"`) {
					t.Errorf("%s = %v, want ErrCorrupt naming \"bad\"", op, err)
				}
			}
			_, err = q.Get(tctx, "bad")
			check("Get", err)
			_, err = q.Claim(tctx, tBase, 10)
			check("Claim", err)
			_, _, err = q.List(tctx, Pending, "", 10)
			check("List", err)
			_, err = q.Enqueue(tctx, []*Item{testItem("bad", tBase)})
			check("Enqueue", err)
			check("Update", q.Update(tctx, &Item{ID: "bad", State: Dead}))
			_, err = q.Replay(tctx, []string{"bad"}, tBase)
			check("Replay", err)

			// The rest of the outbox works.
			getOK(t, q, "good")
			if c := claimOK(t, q, tBase, 1); !slices.Equal(itemIDs(c), []string{"good"}) {
				t.Errorf("Claim = %v", itemIDs(c))
			}
			updateOK(t, q, &Item{ID: "good", State: Delivered})
			assertCountsEq(t, q, countsOf(1, 1, 0, 0))
		})
	}
}

func TestBoltNotAnOutbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a bolt file\n"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	if q, err := OpenBolt(path); err == nil {
		q.Close()
		t.Fatal("OpenBolt of a junk file succeeded")
	} else if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}

	// A bbolt file without our buckets' version.
	other := filepath.Join(t.TempDir(), "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keyVersion, []byte("99"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if q, err := OpenBolt(other); err == nil {
		q.Close()
		t.Fatal("OpenBolt of a future format succeeded")
	}
}

func TestBoltIndexKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		tBase,
		tBase.Add(time.Nanosecond),
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeKey(times[i-1]), timeKey(times[i])
		if bytes.Compare(a[:], b[:]) > 0 {
			t.Errorf("timeKey(%v) > timeKey(%v)", times[i-1], times[i])
		}
	}
}

// The crash test: a child process (this test binary, re-executed) works on
// the outbox and is killed with SIGKILL mid-way; the parent reopens the
// file and checks that nothing acknowledged was lost.

const (
	crashPathEnv  = "OUTBOX_CRASH_CHILD_PATH"
	crashRoundEnv = "OUTBOX_CRASH_CHILD_ROUND"
)

// crashOutcome is what the child stores for a claimed item.
func crashOutcome(id string) State {
	h := fnv.New32a()
	h.Write([]byte(id))
	switch h.Sum32() % 4 {
	case 0:
		return Delivered
	case 1:
		return Dead
	case 2:
		return Pending // with a NextAt an hour later
	default:
		return "" // claimed and never updated
	}
}

// crashChild runs in the child process until it is killed.
func crashChild(path, round string) {
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "crash child: %v\n", err)
		os.Exit(2)
	}
	q, err := OpenBolt(path, WithBatchDelay(time.Millisecond))
	if err != nil {
		fail(err)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
		outMu.Unlock()
	}
	go func() {
		for b := 0; ; b++ {
			batch := make([]*Item, 20)
			for i := range batch {
				batch[i] = testItem(fmt.Sprintf("%s-%06d", round, b*len(batch)+i), time.Now())
			}
			if _, err := q.Enqueue(tctx, batch); err != nil {
				fail(err)
			}
			for _, it := range batch {
				say("E %s", it.ID)
			}
		}
	}()
	for range 4 {
		go func() {
			for {
				claimed, err := q.Claim(tctx, time.Now(), 5)
				if err != nil {
					fail(err)
				}
				if len(claimed) == 0 {
					time.Sleep(time.Millisecond)
				}
				for _, it := range claimed {
					s := crashOutcome(it.ID)
					if s == "" {
						continue
					}
					it.State = s
					it.Attempts++
					it.NextAt = time.Now().Add(time.Hour)
					it.UpdatedAt = time.Now()
					if err := q.Update(tctx, it); err != nil {
						fail(err)
					}
					say("U %s %s", it.ID, s)
				}
			}
		}()
	}
	// In case the parent is gone.
	time.Sleep(2 * time.Minute)
	os.Exit(3)
}

func TestBoltCrashRecovery(t *testing.T) {
	if path := os.Getenv(crashPathEnv); path != "" {
		crashChild(path, os.Getenv(crashRoundEnv))
		return
	}
	if testing.Short() {
		t.Skip("spawns processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	path := filepath.Join(t.TempDir(), "outbox.db")
	enqueued := map[string]bool{}
	updated := map[string]State{}
	for round := range 3 {
		name := fmt.Sprintf("r%d", round)
		cmd := exec.Command(exe, "-test.run=^TestBoltCrashRecovery$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashRoundEnv+"="+name)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var killed atomic.Bool
		kill := func() {
			if killed.CompareAndSwap(false, true) {
				_ = cmd.Process.Kill() // SIGKILL
			}
		}
		watchdog := time.AfterFunc(90*time.Second, kill)
		wantE, wantU := 200+100*round, 20
		nE, nU := 0, 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "E":
				enqueued[f[1]] = true
				nE++
			case len(f) == 3 && f[0] == "U":
				updated[f[1]] = State(f[2])
				nU++
			default:
				continue
			}
			if nE >= wantE && nU >= wantU {
				kill()
			}
		}
		watchdog.Stop()
		err = cmd.Wait()
		if !killed.Load() || nE < wantE {
			t.Fatalf("round %d: child ended on its own (%v) after %d enqueued, %d updated:\n%s", round, err, nE, nU, stderr.String())
		}
		t.Logf("round %d: killed after %d acknowledged enqueues and %d updates", round, nE, nU)

		q, err := OpenBolt(path)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		for id := range enqueued {
			it, err := q.Get(tctx, id)
			if err != nil {
				t.Fatalf("round %d: acknowledged item %s lost: %v", round, id, err)
			}
			want, ok := updated[id]
			switch {
			case ok && it.State != want:
				t.Errorf("round %d: %s is %s, its acknowledged update was %s", round, id, it.State, want)
			case !ok && it.State != Pending && it.State != crashOutcome(id):
				t.Errorf("round %d: %s is %s", round, id, it.State)
			}
			if it.State == Delivered && it.Event != nil {
				t.Errorf("round %d: delivered %s kept its event", round, id)
			}
			if it.State != Delivered && len(it.Event) == 0 {
				t.Errorf("round %d: %s lost its event", round, id)
			}
		}
		assertIndexesConsistent(t, q)
		counts := countsOK(t, q)
		// No lease survives the crash: every pending item is claimable.
		claimed := claimOK(t, q, time.Now().Add(2*time.Hour), 1<<30)
		if len(claimed) != counts[Pending] {
			t.Errorf("round %d: %d claimable, %d pending", round, len(claimed), counts[Pending])
		}
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func boltBenchItems(prefix string, n int, event []byte) []*Item {
	items := make([]*Item, n)
	now := time.Now()
	for i := range items {
		it := testItem(fmt.Sprintf("%s-%09d", prefix, i), now)
		it.Event = event
		items[i] = it
	}
	return items
}

var boltBenchEvent = []byte(`{"event":"purchase","user_id":"u-123456","email":"someone@example.com","items":[{"sku":"A-1","price":19.99,"qty":2},{"sku":"B-7","price":5.5,"qty":1}],"currency":"EUR","value":45.48,"page":{"url":"https://shop.example.com/checkout/done","referrer":"https://shop.example.com/cart"}}`)

// BenchmarkEnqueue enqueues batches of 100 new items (one fsync'd
// transaction each).
func BenchmarkEnqueue(b *testing.B) {
	q, _ := openTempBolt(b)
	const batch = 100
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		items := make([]*Item, batch)
		now := time.Now()
		for i := range items {
			items[i] = &Item{
				ID:          fmt.Sprintf("e-%09d-%03d", n, i),
				Integration: "ga4@1.2.0/default",
				Blueprint:   "catalog:ga4@1.2.0",
				Variant:     "default",
				Event:       boltBenchEvent,
				NextAt:      now,
			}
		}
		if _, err := q.Enqueue(tctx, items); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkUpdate stores attempt outcomes from many goroutines at once;
// db.Batch coalesces them into few fsync'd transactions.
func BenchmarkUpdate(b *testing.B) {
	q, _ := openTempBolt(b)
	const n = 10000
	var all []string
	for c := 0; c < n; c += 1000 {
		items := boltBenchItems(fmt.Sprintf("u%d", c), 1000, boltBenchEvent)
		enqueueOK(b, q, items...)
		all = append(all, itemIDs(items)...)
	}
	var next atomic.Int64
	base := time.Now()
	b.ReportAllocs()
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			err := q.Update(tctx, &Item{
				ID:         all[int(i)%n],
				State:      Pending,
				Attempts:   int(i),
				NextAt:     base.Add(time.Duration(i) * time.Millisecond),
				UpdatedAt:  base.Add(time.Duration(i)),
				LastStatus: 503,
				LastError:  "503 Service Unavailable",
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
}
