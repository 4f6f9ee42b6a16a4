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

// Bolt-specific: IDs are part of index keys, which bbolt bounds.
func TestBoltIDTooLong(t *testing.T) {
	q, _ := openTempBolt(t)
	long := strings.Repeat("x", MaxIDLen+1)
	if _, err := q.Enqueue(tctx, []*Item{testItem("ok", tBase), {ID: long}}); err == nil {
		t.Error("Enqueue of a too long ID succeeded")
	}
	if _, err := q.Get(tctx, long); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(too long) = %v, want ErrNotFound", err)
	}
	if err := q.Update(tctx, &Item{ID: long, State: Dead}); err == nil {
		t.Error("Update of a too long ID succeeded")
	}
	assertCountsEq(t, q, countsOf(0, 0, 0, 0))
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

// TestBoltConcurrentEnqueuesShareCommits: enqueues that arrive together
// (a service storing each request's events as they come) share write
// transactions and fsyncs, and each keeps its own outcome: the same ID
// enqueued twice in one transaction is stored once.
func TestBoltConcurrentEnqueuesShareCommits(t *testing.T) {
	q, _ := openTempBolt(t, WithBatchDelay(20*time.Millisecond))
	before := q.commits.Load()
	const n = 64
	var wg sync.WaitGroup
	outs := make([][]*Item, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Pairs of callers enqueue the same ID.
			outs[i], errs[i] = q.Enqueue(tctx, []*Item{testItem(fmt.Sprintf("e%02d", i/2), tBase)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		if len(outs[i]) != 1 || outs[i][0].ID != fmt.Sprintf("e%02d", i/2) {
			t.Fatalf("Enqueue %d returned %v", i, outs[i])
		}
	}
	if got := countsOK(t, q)[Pending]; got != n/2 {
		t.Fatalf("%d pending, want %d (one per ID)", got, n/2)
	}
	assertIndexesConsistent(t, q)
	if commits := q.commits.Load() - before; commits >= n/2 {
		t.Fatalf("%d concurrent Enqueues took %d write transactions: they do not share commits", n, commits)
	}
}
