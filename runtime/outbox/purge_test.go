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

// remaining lists the IDs stored in q, sorted.
func remaining(tb testing.TB, q *Bolt) []string {
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
// is skipped (not deleted: the record is not the one purged), and the
// index is repaired; the purge goes on with the rest. Before, the purge
// failed, and failed again at every run.
func TestBoltPurgeOutOfSync(t *testing.T) {
	q, path := openTempBolt(t)
	x, y := testItem("x", tBase), testItem("y", tBase)
	x.State, x.UpdatedAt = Delivered, tBase
	y.State, y.UpdatedAt = Delivered, tBase
	enqueueOK(t, q, x, y)
	q.Close()
	stored := *x
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
	n, err := q2.Purge(tctx, tBase.Add(time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Purge over an out-of-step index = %d, %v; want y purged", n, err)
	}
	if got := getOK(t, q2, "x"); got.State != Dead {
		t.Errorf("x is %s, want dead (as its record says)", got.State)
	}
	assertCountsEq(t, q2, countsOf(0, 0, 1, 0))
	assertIndexesConsistent(t, q2)
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
