package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Regression tests for issue #11 finding 12: a damaged outbox file must
// give errors naming it, never a crash, and one unreadable record must
// not block the others. Each failed (or crashed the test binary: bbolt's
// faults are fatal) before the fix.

// damageFixture writes a closed outbox of n items, a quarter in each
// state, with 800-byte events (so that it spans many pages), and returns
// its path and items.
func damageFixture(t *testing.T, n int) (string, []*Item) {
	t.Helper()
	q, path := openTempBolt(t)
	pad := strings.Repeat("x", 800)
	var items []*Item
	for i := range n {
		it := testItem(fmt.Sprintf("id-%05d", i), tBase.Add(time.Duration(i)*time.Millisecond))
		it.Event = []byte(`{"event":"purchase","pad":"` + pad + `"}`)
		it.State = states[i%len(states)]
		it.UpdatedAt = tBase.Add(time.Duration(i) * time.Millisecond)
		items = append(items, it)
	}
	for chunk := range slices.Chunk(items, 500) {
		enqueueOK(t, q, chunk...)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	return path, items
}

// leafPages returns the pages of the items bucket that hold records.
func itemPages(t *testing.T, path string) []uint64 {
	t.Helper()
	pf, err := openPageFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	w := newWalker(pf)
	var items *bucketRef
	w.forEach(bucketRef{root: pf.meta.root}, func(k, _ []byte, child *bucketRef) {
		if string(k) == string(bucketItems) {
			items = child
		}
	})
	if items == nil || items.root == 0 {
		t.Fatal("no items bucket with pages")
	}
	before := map[uint64]bool{}
	for id := range w.seen {
		before[id] = true
	}
	w.forEach(*items, func(_, _ []byte, _ *bucketRef) {})
	var out []uint64
	for id := range w.seen {
		if !before[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// overwritePage writes random bytes over page id of the file at path.
func overwritePage(t *testing.T, path string, id uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, 4096)
	r := rand.New(rand.NewPCG(id, 7))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	if _, err := f.WriteAt(junk, int64(id)*4096); err != nil {
		t.Fatal(err)
	}
}

func assertDamaged(t *testing.T, what string, err error, path string) {
	t.Helper()
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Errorf("%s = %v; want an error matching ErrDamaged naming %s", what, err, path)
	}
}

// A truncated file (truncate -s 100000 outbox.db) is refused with an
// error naming it, by OpenBolt and Compact, and left as it is.
func TestOpenBoltTruncated(t *testing.T) {
	path, _ := damageFixture(t, 2000)
	if err := os.Truncate(path, 100000); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(path)
	q, err := OpenBolt(path)
	if err == nil {
		q.Close()
		t.Fatal("OpenBolt of a truncated file succeeded")
	}
	assertDamaged(t, "OpenBolt", err, path)
	if !strings.Contains(err.Error(), "truncated") {
		t.Errorf("the error does not say truncated: %v", err)
	}
	_, _, err = Compact(path)
	assertDamaged(t, "Compact", err, path)
	if now, _ := os.ReadFile(path); !bytes.Equal(now, orig) {
		t.Error("the damaged file was changed")
	}
	if _, err := os.Stat(path + ".compact"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Compact left its temporary file: %v", err)
	}
}

// Garbage: over the whole file, over the free-page list (bbolt panics
// while opening), over the root page.
func TestOpenBoltGarbage(t *testing.T) {
	t.Run("whole file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "outbox.db")
		junk := make([]byte, 64<<10)
		for i := range junk {
			junk[i] = byte(rand.Uint32())
		}
		if err := os.WriteFile(path, junk, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenBolt(path)
		assertDamaged(t, "OpenBolt", err, path)
		_, _, err = Compact(path)
		assertDamaged(t, "Compact", err, path)
	})
	for _, which := range []string{"free-page list", "root page"} {
		t.Run(which, func(t *testing.T) {
			path, _ := damageFixture(t, 500)
			pf, err := openPageFile(path)
			if err != nil {
				t.Fatal(err)
			}
			page := pf.meta.freelist
			if which == "root page" {
				page = pf.meta.root
			}
			pf.Close()
			overwritePage(t, path, page)
			_, err = OpenBolt(path)
			assertDamaged(t, "OpenBolt", err, path)
			_, _, err = Compact(path)
			assertDamaged(t, "Compact", err, path)
		})
	}
}

// Garbage over the pages holding records passes the cheap checks of
// OpenBolt; what reads them then fails with ErrDamaged (bbolt panics on
// such a page), and nothing more is written.
func TestBoltGarbageRecordPages(t *testing.T) {
	path, _ := damageFixture(t, 500)
	pages := itemPages(t, path)
	for _, p := range pages {
		overwritePage(t, path, p)
	}
	q, err := OpenBolt(path)
	if err != nil {
		t.Fatalf("OpenBolt: %v (the cheap checks do not read record pages)", err)
	}
	defer q.Close()
	_, err = q.Claim(tctx, tBase.Add(time.Hour), 10)
	assertDamaged(t, "Claim", err, path)
	_, err = q.Enqueue(tctx, []*Item{testItem("new", tBase)})
	assertDamaged(t, "Enqueue after", err, path)
	err = q.Update(tctx, &Item{ID: "id-00000", State: Dead})
	assertDamaged(t, "Update after", err, path)
	_, err = q.Counts(tctx)
	assertDamaged(t, "Counts after", err, path)
	if err := q.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	_, _, err = Compact(path)
	assertDamaged(t, "Compact", err, path)
}

// A file truncated while it is open (here, under a Bolt's feet) makes
// bbolt touch pages beyond its end: a SIGBUS, fatal unless caught. Each
// method returns ErrDamaged instead.
func TestBoltTruncatedWhileOpen(t *testing.T) {
	calls := map[string]func(q *Bolt) error{
		"Claim":   func(q *Bolt) error { _, err := q.Claim(tctx, tBase.Add(time.Hour), 10); return err },
		"Counts":  func(q *Bolt) error { _, err := q.Counts(tctx); return err },
		"List":    func(q *Bolt) error { _, _, err := q.List(tctx, Dead, "", 10); return err },
		"Get":     func(q *Bolt) error { _, err := q.Get(tctx, "id-01999"); return err },
		"Update":  func(q *Bolt) error { return q.Update(tctx, &Item{ID: "id-01996", State: Dead}) },
		"Enqueue": func(q *Bolt) error { _, err := q.Enqueue(tctx, []*Item{testItem("new", tBase)}); return err },
		"Purge":   func(q *Bolt) error { _, err := q.Purge(tctx, tBase.Add(time.Hour)); return err },
		"Replay":  func(q *Bolt) error { _, err := q.Replay(tctx, nil, tBase); return err },
		"Remove":  func(q *Bolt) error { _, err := q.Remove(tctx, "id-01999"); return err },
	}
	fixture, _ := damageFixture(t, 2000)
	orig, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outbox.db")
			if err := os.WriteFile(path, orig, 0o600); err != nil {
				t.Fatal(err)
			}
			q, err := OpenBolt(path)
			if err != nil {
				t.Fatal(err)
			}
			defer q.Close()
			if err := os.Truncate(path, 2*4096); err != nil {
				t.Fatal(err)
			}
			assertDamaged(t, name, call(q), path)
		})
	}
}

// corruptions are the kinds of unreadable records.
var corruptions = map[string]func(id string) []byte{
	"bad JSON":      func(id string) []byte { return []byte(`{"id":"` + id + `","state":`) },
	"not an object": func(string) []byte { return []byte(`[1,2,3]`) },
	"other ID":      func(string) []byte { return []byte(`{"id":"other","state":"pending"}`) },
	"unknown state": func(id string) []byte { return []byte(`{"id":"` + id + `","state":"weird"}`) },
	"empty":         func(string) []byte { return []byte{} },
}

// corruptAll rewrites the stored records of ids in the closed outbox at
// path, and reopens it.
func corruptAll(t *testing.T, q *Bolt, path, kind string, ids ...string) *Bolt {
	t.Helper()
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		corruptRecord(t, path, id, corruptions[kind](id))
	}
	q, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// skips returns a context that records what OnSkip is told.
func skips() (context.Context, *[]Skip) {
	var got []Skip
	return OnSkip(tctx, func(s Skip) { got = append(got, s) }), &got
}

// OnSkip inside OnSkip tells both, the outer first: a worker that logs
// what it skips does not hide it from the caller that runs the worker.
func TestOnSkipNests(t *testing.T) {
	var told []string
	ctx := OnSkip(tctx, func(s Skip) { told = append(told, "outer "+s.ID) })
	ctx = OnSkip(ctx, func(s Skip) { told = append(told, "inner "+s.ID) })
	reportSkip(ctx, Skip{ID: "a"})
	if !slices.Equal(told, []string{"outer a", "inner a"}) {
		t.Errorf("told %q", told)
	}
}

// One pending record that cannot be read, due first, used to make Claim
// fail (and so every send, for good). Claim skips it, moves it to the
// quarantine with its bytes, and goes on.
func TestBoltClaimSkipsUnreadable(t *testing.T) {
	for kind, bad := range corruptions {
		t.Run(kind, func(t *testing.T) {
			q, path := openTempBolt(t)
			enqueueOK(t, q, testItem("bad", tBase.Add(-2*time.Minute)), testItem("good", tBase.Add(-time.Minute)))
			q = corruptAll(t, q, path, kind, "bad")

			ctx, skipped := skips()
			got, err := q.Claim(ctx, tBase, 10)
			if err != nil {
				t.Fatalf("Claim: %v", err)
			}
			if !slices.Equal(itemIDs(got), []string{"good"}) {
				t.Errorf("Claim = %v, want [good]", itemIDs(got))
			}
			if len(*skipped) != 1 || (*skipped)[0].ID != "bad" || !(*skipped)[0].Quarantined || !errors.Is((*skipped)[0].Err, ErrCorrupt) {
				t.Errorf("OnSkip was told %+v", *skipped)
			}
			qr, err := q.Quarantine(tctx)
			if err != nil || len(qr) != 1 || qr[0].ID != "bad" || !bytes.Equal(qr[0].Raw, bad("bad")) || qr[0].Reason == "" {
				t.Errorf("Quarantine = %+v, %v", qr, err)
			}
			if _, err := q.Get(tctx, "bad"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get(bad) after the quarantine = %v", err)
			}
			updateOK(t, q, &Item{ID: "good", State: Delivered})
			assertCountsEq(t, q, countsOf(0, 1, 0, 0))
			assertIndexesConsistent(t, q)
			if c := claimOK(t, q, tBase.Add(time.Hour), 10); len(c) != 0 {
				t.Errorf("Claim after = %v", itemIDs(c))
			}
		})
	}
}

// A dead letter that does not parse used to fail dlq list, replay --all
// and purge. They skip it, report it, and do the rest.
func TestBoltListReplayPurgeSkipUnreadable(t *testing.T) {
	setup := func(t *testing.T, kind string) *Bolt {
		q, path := openTempBolt(t)
		var items []*Item
		for _, id := range []string{"d1", "d2", "dbad"} {
			it := testItem(id, tBase)
			it.State, it.UpdatedAt = Dead, tBase
			items = append(items, it)
		}
		for _, id := range []string{"ok1", "okbad"} {
			it := testItem(id, tBase)
			it.State, it.UpdatedAt = Delivered, tBase
			items = append(items, it)
		}
		enqueueOK(t, q, items...)
		return corruptAll(t, q, path, kind, "dbad", "okbad")
	}
	for kind := range corruptions {
		t.Run(kind, func(t *testing.T) {
			t.Run("List", func(t *testing.T) {
				q := setup(t, kind)
				ctx, skipped := skips()
				got, next, err := q.List(ctx, Dead, "", 10)
				if err != nil || next != "" || !slices.Equal(itemIDs(got), []string{"d1", "d2"}) {
					t.Errorf("List(dead) = %v, %q, %v; want [d1 d2]", itemIDs(got), next, err)
				}
				if len(*skipped) != 1 || (*skipped)[0].ID != "dbad" {
					t.Errorf("OnSkip was told %+v", *skipped)
				}
				// okbad, delivered, is not met yet: counted until it is.
				assertCountsEq(t, q, countsOf(0, 2, 2, 0))
			})
			t.Run("Replay", func(t *testing.T) {
				q := setup(t, kind)
				ctx, skipped := skips()
				n, err := q.Replay(ctx, nil, tBase)
				if err != nil || n != 2 {
					t.Errorf("Replay(all) = %d, %v; want 2", n, err)
				}
				if len(*skipped) != 1 || (*skipped)[0].ID != "dbad" {
					t.Errorf("OnSkip was told %+v", *skipped)
				}
				assertCountsEq(t, q, countsOf(2, 2, 0, 0))
			})
			t.Run("Purge", func(t *testing.T) {
				q := setup(t, kind)
				ctx, skipped := skips()
				n, err := q.Purge(ctx, tBase.Add(time.Hour), Delivered, Dead)
				if err != nil || n != 3 {
					t.Errorf("Purge = %d, %v; want 3", n, err)
				}
				if len(*skipped) != 2 {
					t.Errorf("OnSkip was told %+v", *skipped)
				}
				assertCountsEq(t, q, countsOf(0, 0, 0, 0))
				assertIndexesConsistent(t, q)
				if qr, _ := q.Quarantine(tctx); len(qr) != 2 {
					t.Errorf("quarantined %d, want 2", len(qr))
				}
			})
		})
	}
}

// Enqueue over an unreadable record makes a new item (at least once);
// Update of one fails with ErrCorrupt and quarantines it; Remove deletes
// it, and its quarantined copies.
func TestBoltWritesOverUnreadable(t *testing.T) {
	q, path := openTempBolt(t)
	enqueueOK(t, q, testItem("a", tBase), testItem("b", tBase), testItem("c", tBase))
	q = corruptAll(t, q, path, "bad JSON", "a", "b", "c")

	ctx, skipped := skips()
	got, err := q.Enqueue(ctx, []*Item{testItem("a", tBase)})
	if err != nil || got[0].State != Pending {
		t.Fatalf("Enqueue over an unreadable record = %v, %v", got, err)
	}
	if len(*skipped) != 1 {
		t.Errorf("OnSkip was told %+v", *skipped)
	}
	assertItem(t, "a enqueued again", getOK(t, q, "a"), testItem("a", tBase))

	err = q.Update(tctx, &Item{ID: "b", State: Delivered})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "quarantine") {
		t.Errorf("Update of an unreadable record = %v", err)
	}
	if n, err := q.Remove(tctx, "b", "c"); err != nil || n != 2 {
		t.Errorf("Remove = %d, %v; want 2 (one quarantined, one unreadable)", n, err)
	}
	if qr, _ := q.Quarantine(tctx); len(qr) != 1 || qr[0].ID != "a" {
		t.Errorf("quarantine after Remove: %+v, want a's old record only", qr)
	}
	if n, err := q.Remove(tctx, "a"); err != nil || n != 1 {
		t.Errorf("Remove(a) = %d, %v", n, err)
	}
	if qr, _ := q.Quarantine(tctx); len(qr) != 0 {
		t.Errorf("quarantine after removing a: %+v", qr)
	}
	assertCountsEq(t, q, countsOf(0, 0, 0, 0))
	assertIndexesConsistent(t, q)
}

// Check reads a damaged file without crashing and says what is wrong;
// Salvage copies what is readable into a new file that works.
func TestCheckAndSalvage(t *testing.T) {
	t.Run("sound", func(t *testing.T) {
		path, items := damageFixture(t, 400)
		r, err := Check(path)
		if err != nil || !r.OK() {
			t.Fatalf("Check of a sound file = %+v, %v", r, err)
		}
		if r.Records[Pending] != 100 || r.Records[Dead] != 100 {
			t.Errorf("Records = %v", r.Records)
		}
		newPath := filepath.Join(t.TempDir(), "salvaged.db")
		rep, err := Salvage(path, newPath)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Items[Delivered] != 100 || rep.Quarantined != 0 {
			t.Errorf("Salvage = %+v", rep)
		}
		q, err := OpenBolt(newPath)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		for _, it := range items {
			want := *it
			if want.State == Delivered {
				want.Event = nil
			}
			assertItem(t, it.ID, getOK(t, q, it.ID), &want)
		}
		assertIndexesConsistent(t, q)
		if _, err := Salvage(path, newPath); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("Salvage over an existing file: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		path, items := damageFixture(t, 2000)
		// 60 % of the pages in use (the file's free tail is no loss).
		pf, err := openPageFile(path)
		if err != nil {
			t.Fatal(err)
		}
		used := int64(pf.hwm) * pf.pageSize
		pf.Close()
		if err := os.Truncate(path, used*6/10+123); err != nil {
			t.Fatal(err)
		}
		r, err := Check(path)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK() || r.PagesLost == 0 || !strings.Contains(strings.Join(r.Damage, "\n"), "truncated") {
			t.Errorf("Check of a truncated file = %+v", r)
		}
		newPath := filepath.Join(t.TempDir(), "salvaged.db")
		rep, err := Salvage(path, newPath)
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for _, n := range rep.Items {
			got += n
		}
		if got < 500 || got >= len(items) {
			t.Errorf("salvaged %d of %d records from 60 %% of the file", got, len(items))
		}
		q, err := OpenBolt(newPath)
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()
		assertIndexesConsistent(t, q)
		// Every salvaged record is one that was stored.
		byID := map[string]*Item{}
		for _, it := range items {
			byID[it.ID] = it
		}
		for _, s := range states {
			for _, it := range listEvery(t, q, s, 0) {
				want := *byID[it.ID]
				if want.State == Delivered {
					want.Event = nil
				}
				assertItem(t, "salvaged "+it.ID, it, &want)
			}
		}
		if c := claimOK(t, q, tBase.Add(time.Hour), 10); len(c) == 0 {
			t.Error("nothing to claim in the salvaged file")
		}
	})
	t.Run("unreadable records", func(t *testing.T) {
		q, path := openTempBolt(t)
		enqueueOK(t, q, testItem("good", tBase), testItem("bad", tBase))
		q.Close()
		corruptRecord(t, path, "bad", []byte(`{"id":"bad","state":"weird"}`))
		r, err := Check(path)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK() || len(r.Unreadable) != 1 || r.Unreadable[0].ID != "bad" || len(r.Damage) != 0 {
			t.Errorf("Check = %+v", r)
		}
		newPath := filepath.Join(t.TempDir(), "salvaged.db")
		if _, err := Salvage(path, newPath); err != nil {
			t.Fatal(err)
		}
		q2, err := OpenBolt(newPath)
		if err != nil {
			t.Fatal(err)
		}
		defer q2.Close()
		qr, err := q2.Quarantine(tctx)
		if err != nil || len(qr) != 1 || qr[0].ID != "bad" || string(qr[0].Raw) != `{"id":"bad","state":"weird"}` {
			t.Errorf("the new file's quarantine: %+v, %v", qr, err)
		}
		getOK(t, q2, "good")
		q2.Close()
		r2, err := Check(newPath)
		if err != nil || !r2.OK() || r2.Quarantined != 1 {
			t.Errorf("Check of the salvaged file = %+v, %v", r2, err)
		}
	})
	t.Run("in use", func(t *testing.T) {
		q, path := openTempBolt(t)
		enqueueOK(t, q, testItem("a", tBase))
		if _, err := Check(path, WithLockTimeout(50*time.Millisecond)); !errors.Is(err, ErrInUse) {
			t.Errorf("Check of an open file = %v, want ErrInUse", err)
		}
	})
}

// The index repair keeps the counts those of the indexes, and drops
// entries too short to hold an ID.
func TestBoltRepairIndexes(t *testing.T) {
	q, path := openTempBolt(t)
	enqueueOK(t, q, testItem("a", tBase), testItem("b", tBase))
	q.Close()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		due := tx.Bucket(bucketDue)
		if err := due.Put([]byte("short"), nil); err != nil {
			return err
		}
		// A stale due entry for b, and a counter off by 5.
		if err := due.Put(indexKey(tBase.Add(-time.Hour), "b"), nil); err != nil {
			return err
		}
		c := make([]byte, 8)
		c[7] = 7
		return tx.Bucket(bucketCounts).Put([]byte(Pending), c)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Check(path)
	if err != nil || r.IndexProblems == 0 || len(r.Damage) != 0 {
		t.Fatalf("Check = %+v, %v", r, err)
	}
	q, err = OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	got := claimOK(t, q, tBase, 10) // meets the bad entries, repairs
	if ids := itemIDs(got); !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Errorf("Claim = %v, want [a b] (b once)", ids)
	}
	assertCountsEq(t, q, countsOf(2, 0, 0, 0))
	assertIndexesConsistent(t, q)
	q.Close()
	if r, err := Check(path); err != nil || !r.OK() {
		t.Errorf("Check after the repair = %+v, %v", r, err)
	}
}

// A file bbolt cannot open for another reason than damage (here, no
// permission) is not called damaged.
func TestOpenBoltNotDamagedButUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	path, _ := damageFixture(t, 10)
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBolt(path)
	if err == nil || errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), path) {
		t.Errorf("OpenBolt of an unreadable file = %v; want an error naming it, not ErrDamaged", err)
	}
}
