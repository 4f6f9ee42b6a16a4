package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// purgeFixture enqueues, in every state, an item updated an hour before
// tBase ("old") and one updated at tBase ("new").
func purgeFixture(tb testing.TB, q Queue) {
	tb.Helper()
	var items []*Item
	for _, s := range states {
		for _, age := range []struct {
			name string
			at   time.Time
		}{{"old", tBase.Add(-time.Hour)}, {"new", tBase}} {
			it := testItem(string(s)+"-"+age.name, tBase)
			it.State, it.UpdatedAt = s, age.at
			items = append(items, it)
		}
	}
	if _, err := q.Enqueue(tctx, items); err != nil {
		tb.Fatalf("Enqueue: %v", err)
	}
}

// remaining lists the IDs stored in q, sorted.
func remaining(tb testing.TB, q Queue) []string {
	tb.Helper()
	var ids []string
	for _, s := range states {
		cursor := ""
		for {
			items, next, err := q.List(tctx, s, cursor, 0)
			if err != nil {
				tb.Fatalf("List: %v", err)
			}
			ids = append(ids, itemIDs(items)...)
			if next == "" {
				break
			}
			cursor = next
		}
	}
	slices.Sort(ids)
	return ids
}

func without(all []string, gone ...string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(id string) bool { return slices.Contains(gone, id) })
}

// TestPurge runs the same cases on both Queue implementations.
func TestPurge(t *testing.T) {
	all := []string{"dead-new", "dead-old", "delivered-new", "delivered-old", "pending-new", "pending-old", "skipped-new", "skipped-old"}
	for _, tt := range []struct {
		name   string
		before time.Time
		states []State
		gone   []string
	}{
		{"default states: delivered and skipped", tBase, nil, []string{"delivered-old", "skipped-old"}},
		{"before is exclusive", tBase.Add(-time.Hour), nil, nil},
		{"later cutoff", tBase.Add(time.Nanosecond), nil, []string{"delivered-new", "delivered-old", "skipped-new", "skipped-old"}},
		{"dead letters when named", tBase, []State{Dead}, []string{"dead-old"}},
		{"named states, repeated", tBase, []State{Dead, Delivered, Dead}, []string{"dead-old", "delivered-old"}},
		{"zero time purges nothing", time.Time{}, []State{Delivered, Skipped, Dead}, nil},
	} {
		for name, open := range queues() {
			t.Run(name+"/"+tt.name, func(t *testing.T) {
				q := open(t)
				purgeFixture(t, q)
				n, err := q.Purge(tctx, tt.before, tt.states...)
				if err != nil {
					t.Fatalf("Purge: %v", err)
				}
				if n != len(tt.gone) {
					t.Errorf("Purge = %d, want %d", n, len(tt.gone))
				}
				if got, want := remaining(t, q), without(all, tt.gone...); !reflect.DeepEqual(got, want) {
					t.Errorf("left\n %v\nwant\n %v", got, want)
				}
				counts, err := q.Counts(tctx)
				if err != nil {
					t.Fatal(err)
				}
				want := map[State]int{}
				for _, id := range without(all, tt.gone...) {
					want[State(strings.Split(id, "-")[0])]++
				}
				for _, s := range states {
					if counts[s] != want[s] {
						t.Errorf("Counts[%s] = %d, want %d", s, counts[s], want[s])
					}
				}
				if b, ok := q.(*Bolt); ok {
					assertIndexesConsistent(t, b)
				}
				// A purged ID is forgotten: enqueueing it again makes a new
				// pending item.
				for _, id := range tt.gone {
					out, err := q.Enqueue(tctx, []*Item{testItem(id, tBase)})
					if err != nil {
						t.Fatal(err)
					}
					if out[0].State != Pending {
						t.Errorf("%s enqueued again is %s, want pending", id, out[0].State)
					}
				}
			})
		}
	}
}

func TestPurgeRefuses(t *testing.T) {
	for name, open := range queues() {
		t.Run(name, func(t *testing.T) {
			q := open(t)
			purgeFixture(t, q)
			for _, tt := range []struct {
				states []State
				want   string
			}{
				{[]State{Pending}, "pending items are never purged"},
				{[]State{Delivered, Pending}, "pending items are never purged"},
				{[]State{"gone"}, `unknown state "gone"`},
			} {
				n, err := q.Purge(tctx, tBase.Add(time.Hour), tt.states...)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Purge(%v) = %d, %v; want an error with %q", tt.states, n, err, tt.want)
				}
			}
			if got := remaining(t, q); len(got) != 2*len(states) {
				t.Errorf("a refused purge deleted items: %v left", got)
			}
			if err := q.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := q.Purge(tctx, tBase); !errors.Is(err, ErrClosed) {
				t.Errorf("Purge after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// queues opens an empty queue of each implementation.
func queues() map[string]func(testing.TB) Queue {
	return map[string]func(testing.TB) Queue{
		"bolt": func(tb testing.TB) Queue { q, _ := openTempBolt(tb); return q },
		"memory": func(tb testing.TB) Queue {
			q := NewMemory()
			tb.Cleanup(func() { _ = q.Close() })
			return q
		},
	}
}

// TestBoltPurgeBatches purges over several write transactions, and stops
// between two when the context is done.
func TestBoltPurgeBatches(t *testing.T) {
	defer func(n int) { purgeBatch = n }(purgeBatch)
	purgeBatch = 3
	q, _ := openTempBolt(t)
	var items []*Item
	for i := range 10 {
		it := testItem(fmt.Sprintf("d%02d", i), tBase)
		it.State, it.UpdatedAt = Delivered, tBase.Add(time.Duration(i)*time.Second)
		items = append(items, it)
	}
	enqueueOK(t, q, items...)
	n, err := q.Purge(tctx, tBase.Add(9*time.Second)) // all but d09
	if err != nil || n != 9 {
		t.Fatalf("Purge = %d, %v; want 9", n, err)
	}
	if got := remaining(t, q); !reflect.DeepEqual(got, []string{"d09"}) {
		t.Errorf("left %v", got)
	}
	assertIndexesConsistent(t, q)

	enqueueOK(t, q, items[:9]...)
	ctx, cancel := context.WithCancel(tctx)
	cancel()
	if n, err := q.Purge(ctx, tBase.Add(time.Hour)); !errors.Is(err, context.Canceled) || n != 0 {
		t.Errorf("Purge with a done context = %d, %v", n, err)
	}
	assertCountsEq(t, q, countsOf(0, 10, 0, 0))

	// No transaction deletes more than purgeBatch, across states too.
	var txs []int
	purgeCommitted = func(n int) { txs = append(txs, n) }
	defer func() { purgeCommitted = nil }()
	var skipped []*Item
	for i := range 2 {
		it := testItem(fmt.Sprintf("s%02d", i), tBase)
		it.State, it.UpdatedAt = Skipped, tBase
		skipped = append(skipped, it)
	}
	enqueueOK(t, q, skipped...)
	if n, err := q.Purge(tctx, tBase.Add(time.Hour), Delivered, Skipped); err != nil || n != 12 {
		t.Fatalf("Purge = %d, %v; want 12", n, err)
	}
	if !reflect.DeepEqual(txs, []int{3, 3, 3, 3, 0}) {
		t.Errorf("items deleted per transaction: %v, want [3 3 3 3 0]", txs)
	}
	assertIndexesConsistent(t, q)

	// A context done between two transactions stops the purge there.
	enqueueOK(t, q, items...)
	ctx, cancel = context.WithCancel(tctx)
	txs = nil
	purgeCommitted = func(n int) { txs = append(txs, n); cancel() }
	n, err = q.Purge(ctx, tBase.Add(time.Hour))
	if !errors.Is(err, context.Canceled) || n != 3 || len(txs) != 1 {
		t.Errorf("Purge cancelled after its first transaction = %d, %v (transactions %v)", n, err, txs)
	}
	assertCountsEq(t, q, countsOf(0, 7, 0, 0))
}

// TestBoltPurgeOutOfSync: an index entry whose record says another state
// is reported, naming the ID, and nothing is deleted.
func TestBoltPurgeOutOfSync(t *testing.T) {
	q, path := openTempBolt(t)
	it := testItem("x", tBase)
	it.State, it.UpdatedAt = Delivered, tBase
	enqueueOK(t, q, it)
	q.Close()
	stored := *it
	stored.Event, stored.State = nil, Dead
	record, err := json.Marshal(&stored)
	if err != nil {
		t.Fatal(err)
	}
	corruptRecord(t, path, "x", record)
	q2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	_, err = q2.Purge(tctx, tBase.Add(time.Hour))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("Purge over a corrupt index: %v", err)
	}
}

// TestCompact: after a purge, Compact gives the space back and keeps every
// live item, index and count as they were.
func TestCompact(t *testing.T) {
	q, path := openTempBolt(t)
	event := bytes.Repeat([]byte("x"), 2048)
	var items []*Item
	for i := range 1000 {
		it := testItem(fmt.Sprintf("i%04d", i), tBase.Add(time.Duration(i)*time.Millisecond))
		it.Event = event
		items = append(items, it)
	}
	enqueueOK(t, q, items...)
	for i, it := range items {
		if i%10 == 0 {
			continue // left pending
		}
		it.State, it.UpdatedAt = Delivered, tBase.Add(-time.Hour)
		if i%10 == 1 {
			it.State = Dead
		}
		updateOK(t, q, it)
	}
	if _, err := q.Purge(tctx, tBase); err != nil {
		t.Fatal(err)
	}
	want := snapshot(t, q)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	before, after, err := Compact(path)
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after != fi.Size() || after >= before/4 {
		t.Errorf("Compact: %d -> %d bytes (file: %d); want it at most a quarter", before, after, fi.Size())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("compacted file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	q2, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if got := snapshot(t, q2); !reflect.DeepEqual(got, want) {
		t.Error("the compacted outbox differs from the original")
	}
	assertIndexesConsistent(t, q2)
	if got := claimOK(t, q2, tBase.Add(time.Hour), 1000); len(got) != 100 {
		t.Errorf("Claim after Compact: %d items, want 100", len(got))
	}
}

// snapshot is every item of q by state, and its counts.
func snapshot(tb testing.TB, q *Bolt) map[State][]Item {
	tb.Helper()
	out := map[State][]Item{}
	for _, s := range states {
		for _, it := range listEvery(tb, q, s, 0) {
			out[s] = append(out[s], utcItem(it))
		}
	}
	for s, n := range countsOK(tb, q) {
		if n != len(out[s]) {
			tb.Fatalf("Counts[%s] = %d, List has %d", s, n, len(out[s]))
		}
	}
	return out
}

func TestCompactRefuses(t *testing.T) {
	t.Run("in use", func(t *testing.T) {
		q, path := openTempBolt(t)
		enqueueOK(t, q, testItem("a", tBase))
		_, _, err := Compact(path, WithLockTimeout(50*time.Millisecond))
		if !errors.Is(err, ErrInUse) {
			t.Errorf("Compact of an open outbox: %v, want ErrInUse", err)
		}
		if got := remaining(t, q); !reflect.DeepEqual(got, []string{"a"}) {
			t.Errorf("left %v", got)
		}
	})
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.db")
		if _, _, err := Compact(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Compact of a missing file: %v", err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Error("Compact created the file")
		}
	})
	t.Run("not an outbox", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		orig, _ := os.ReadFile(path)
		if _, _, err := Compact(path); err == nil || !strings.Contains(err.Error(), "not an outbox file") {
			t.Errorf("Compact of another bbolt file: %v", err)
		}
		if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
			t.Error("the file was changed")
		}
	})
}

// TestOpenWhileReplaced: a process waiting for the lock while Compact
// replaces the file opens the new file, not the old one it was waiting on
// (whose writes would be lost).
func TestOpenWhileReplaced(t *testing.T) {
	q, path := openTempBolt(t)
	enqueueOK(t, q, testItem("old", tBase))

	type opened struct {
		q   *Bolt
		err error
	}
	done := make(chan opened, 1)
	go func() {
		q2, err := OpenBolt(path, WithLockTimeout(10*time.Second))
		done <- opened{q2, err}
	}()
	time.Sleep(100 * time.Millisecond) // let it open the old file and wait

	// Replace the file as Compact does, then let go of the old one's lock.
	fresh := filepath.Join(filepath.Dir(path), "fresh.db")
	q3, err := OpenBolt(fresh)
	if err != nil {
		t.Fatal(err)
	}
	enqueueOK(t, q3, testItem("new", tBase))
	q3.Close()
	if err := os.Rename(fresh, path); err != nil {
		t.Fatal(err)
	}
	q.Close()

	r := <-done
	if r.err != nil {
		t.Fatalf("OpenBolt: %v", r.err)
	}
	defer r.q.Close()
	if got := remaining(t, r.q); !reflect.DeepEqual(got, []string{"new"}) {
		t.Errorf("the waiting OpenBolt opened a file holding %v, want the new one", got)
	}
}

// TestPurgeBoundsTheFile: with a purge after each round of traffic, the
// file stops growing (bbolt reuses the freed pages), which is what makes
// a retention window bound the outbox's size on disk.
func TestPurgeBoundsTheFile(t *testing.T) {
	q, path := openTempBolt(t)
	event := bytes.Repeat([]byte("e"), 1024)
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	var sizes []int64
	for round := range 8 {
		var items []*Item
		for i := range 100 {
			it := testItem(fmt.Sprintf("r%02d-%03d", round, i), tBase)
			it.Event = event
			items = append(items, it)
		}
		enqueueOK(t, q, items...)
		var wg sync.WaitGroup
		for _, it := range items { // concurrent Updates share transactions
			it.State, it.UpdatedAt = Delivered, tBase
			wg.Go(func() { updateOK(t, q, it) })
		}
		wg.Wait()
		if n, err := q.Purge(tctx, tBase.Add(time.Second)); err != nil || n != len(items) {
			t.Fatalf("round %d: Purge = %d, %v", round, n, err)
		}
		sizes = append(sizes, size())
	}
	t.Logf("file size after each round: %v", sizes)
	if last, early := sizes[len(sizes)-1], sizes[2]; last > early+early/4 {
		t.Errorf("the file grows under purged traffic: %v bytes after each round", sizes)
	}
}

// Compact through a symlink compacts the file it points to and keeps the
// link; the new file keeps the old one's mode.
func TestCompactSymlinkAndMode(t *testing.T) {
	q, real := openTempBolt(t)
	enqueueOK(t, q, testItem("a", tBase))
	q.Close()
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, _, err := Compact(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi.Mode(), err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v after Compact, want 0640", fi.Mode().Perm())
	}
	q2, err := OpenBolt(link)
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	if got := remaining(t, q2); !reflect.DeepEqual(got, []string{"a"}) {
		t.Errorf("left %v", got)
	}
}

// A List cursor stays valid when the item it ends on is purged before the
// next page is read.
func TestListCursorSurvivesPurge(t *testing.T) {
	for name, open := range queues() {
		t.Run(name, func(t *testing.T) {
			q := open(t)
			var items []*Item
			for i := range 5 {
				it := testItem(fmt.Sprintf("d%d", i), tBase)
				it.State, it.UpdatedAt = Delivered, tBase.Add(time.Duration(i)*time.Second)
				items = append(items, it)
			}
			if _, err := q.Enqueue(tctx, items); err != nil {
				t.Fatal(err)
			}
			page, next, err := q.List(tctx, Delivered, "", 2)
			if err != nil || len(page) != 2 || next == "" {
				t.Fatalf("first page %v, %q, %v", itemIDs(page), next, err)
			}
			// d0 and d1 listed; purge them (d1 is the cursor's item).
			if n, err := q.Purge(tctx, tBase.Add(2*time.Second)); err != nil || n != 2 {
				t.Fatalf("Purge = %d, %v", n, err)
			}
			page, _, err = q.List(tctx, Delivered, next, 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := itemIDs(page); !reflect.DeepEqual(got, []string{"d2", "d3", "d4"}) {
				t.Errorf("next page %v, want [d2 d3 d4]", got)
			}
			if _, _, err := q.List(tctx, Delivered, "junk", 10); err == nil {
				t.Error("a junk cursor was accepted")
			}
		})
	}
}
