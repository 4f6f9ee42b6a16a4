package outbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ Store = (*Bolt)(nil)

// Defaults of the options of OpenBolt.
const (
	// DefaultLockTimeout is how long OpenBolt waits for the file lock held
	// by another process before it gives up with ErrInUse.
	DefaultLockTimeout = time.Second
	// DefaultBatchDelay is how long an Update waits for concurrent Updates
	// to join its write transaction (and its fsync). bbolt's own default
	// (10ms) caps a sequential sender at about 90 Updates a second; while
	// a transaction commits, the next batch fills up anyway.
	DefaultBatchDelay = time.Millisecond
	// DefaultMaxBatchSize is the most Updates coalesced into one write
	// transaction.
	DefaultMaxBatchSize = 1000
	// DefaultListLimit is the page size of List when its limit is not
	// positive.
	DefaultListLimit = 100
)

// MaxIDLen is the longest item ID, in bytes, that Bolt accepts (an ID is
// part of the keys of its indexes, which bbolt bounds).
const MaxIDLen = bolt.MaxKeySize - 8

// ErrClosed is returned by the methods of a queue (Bolt, and Memory too)
// called after Close.
var ErrClosed = errors.New("outbox: closed")

// ErrInUse is matched (with errors.Is) by the error OpenBolt returns when
// another process holds the outbox file.
var ErrInUse = errors.New("outbox: in use by another process")

// ErrCorrupt is matched (with errors.Is) by the errors returned for a
// stored record or index entry that cannot be read; the error names the
// item ID.
var ErrCorrupt = errors.New("outbox: corrupt record")

// ErrDamaged is matched (with errors.Is) by the errors returned for an
// outbox file that is damaged as a file (truncated, overwritten, not a
// bbolt file): OpenBolt and Compact refuse it, naming the file and what
// is wrong, and a Bolt that meets a damaged page while it runs returns an
// error matching ErrDamaged from that call and from every later one
// (nothing more is written to the file). Check tells what is readable and
// Salvage copies it into a new file.
var ErrDamaged = errors.New("outbox: damaged file")

// formatVersion is the layout of the buckets, stored in the meta bucket.
// The quarantine bucket came later: it is created when missing, and
// older programs ignore it.
const formatVersion = "1"

// Bucket names. See the doc comment of Bolt.
var (
	bucketItems      = []byte("items")
	bucketDue        = []byte("due")
	bucketStates     = []byte("states")
	bucketCounts     = []byte("counts")
	bucketMeta       = []byte("meta")
	bucketQuarantine = []byte("quarantine")
	keyVersion       = []byte("version")
)

// states lists every State, in the order Counts reports them.
var states = [...]State{Pending, Delivered, Dead, Skipped}

func knownState(s State) bool {
	for _, k := range states {
		if s == k {
			return true
		}
	}
	return false
}

// BoltOption configures OpenBolt.
type BoltOption func(*boltConfig)

type boltConfig struct {
	lockTimeout  time.Duration
	batchDelay   time.Duration
	maxBatchSize int
}

// WithLockTimeout sets how long OpenBolt waits for another process to
// release the file before it fails with ErrInUse (DefaultLockTimeout if d
// is not positive).
func WithLockTimeout(d time.Duration) BoltOption {
	return func(c *boltConfig) {
		if d > 0 {
			c.lockTimeout = d
		}
	}
}

// WithBatchDelay sets how long an Update waits for concurrent Updates to
// share its write transaction (DefaultBatchDelay if d is not positive). A
// longer delay means fewer fsyncs under load and a longer latency for each
// Update.
func WithBatchDelay(d time.Duration) BoltOption {
	return func(c *boltConfig) {
		if d > 0 {
			c.batchDelay = d
		}
	}
}

// WithMaxBatchSize sets the most Updates coalesced into one write
// transaction (DefaultMaxBatchSize if n is not positive).
func WithMaxBatchSize(n int) BoltOption {
	return func(c *boltConfig) {
		if n > 0 {
			c.maxBatchSize = n
		}
	}
}

func newBoltConfig(opts []BoltOption) boltConfig {
	cfg := boltConfig{
		lockTimeout:  DefaultLockTimeout,
		batchDelay:   DefaultBatchDelay,
		maxBatchSize: DefaultMaxBatchSize,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
	return cfg
}

// Bolt is the embedded Store: a single bbolt file, no server. It is safe
// for concurrent use by the goroutines of one process; bbolt's file lock
// keeps other processes out while it is open.
//
// The file holds these buckets:
//
//   - items: ID → JSON of the Item. Delivered items keep their record (so
//     that enqueueing the same ID again stays a no-op) without their Event.
//   - due: NextAt (8-byte big-endian unix nanoseconds) ‖ ID → empty, for
//     pending items only, so that Claim is a cursor walk from the first
//     key, not a scan.
//   - states: one nested bucket per State; in each, UpdatedAt (8-byte
//     big-endian unix nanoseconds) ‖ ID → empty, for List.
//   - counts: State → 8-byte big-endian count, kept in the same
//     transaction as every change, for Counts.
//   - quarantine: when it was quarantined (8 bytes, as above) ‖ ID → JSON
//     of a Quarantined: records that could not be read, moved out of the
//     way with their bytes.
//   - meta: "version" → the layout version.
//
// Times before 1970 or after 2262 are clamped in the index keys.
//
// Leases (items returned by Claim and not yet updated or released) are
// kept in memory only: reopening the file makes every pending item
// claimable again.
//
// # Damage
//
// OpenBolt checks the file before bbolt maps it: its meta pages, that the
// file is as long as they say, the free-page list and the root page (a
// few small reads; a file whose size is not a whole number of pages, or
// with a damaged meta page, is walked in full first). A damaged file is
// refused with an error matching ErrDamaged that names it; Check and
// Salvage work on such a file. Damage met later (a page overwritten while
// the file was open) ends in an error matching ErrDamaged, never in a
// crash, and no more is written.
//
// A record that cannot be read (bad JSON, an unknown state, stored under
// another ID) blocks nothing: Claim, List, Get, Replay, Purge, Update and
// Enqueue move it to the quarantine (with its bytes, for salvage) and go
// on; the methods that skip it tell the function set with OnSkip. Index
// entries out of step with their records are repaired on the way. Remove
// deletes quarantined records of its IDs too.
type Bolt struct {
	db     *bolt.DB
	path   string
	closed atomic.Bool
	// broken is set (to an error matching ErrDamaged) once bbolt panicked
	// or faulted on a damaged page: every later call returns it.
	broken atomic.Pointer[damagedError]

	// mu guards leases. Claim holds it for the whole read transaction, so
	// that two Claims never lease the same item.
	mu     sync.Mutex
	leases map[string]struct{}

	// Update batching (see batch): bmu guards next, the batch being
	// filled; wmu lets one batch commit at a time, so that a batch keeps
	// filling while the one before it commits.
	bmu        sync.Mutex
	next       *writeBatch
	wmu        sync.Mutex
	batchDelay time.Duration
	maxBatch   int
	commits    atomic.Int64 // write transactions committed (tests read it)
}

// inUseError is the error of OpenBolt when the lock is held elsewhere.
type inUseError struct{ path string }

func (e *inUseError) Error() string {
	return "outbox " + e.path + " is in use by another process"
}

func (e *inUseError) Is(target error) bool { return target == ErrInUse }

// damagedError reports a damaged outbox file.
type damagedError struct {
	path string
	msg  string
}

func (e *damagedError) Error() string {
	return "outbox " + e.path + " is damaged: " + e.msg
}

func (e *damagedError) Is(target error) bool { return target == ErrDamaged }

// corruptError reports an unreadable record or index entry.
type corruptError struct {
	id  string
	msg string
	err error
}

func (e *corruptError) Error() string {
	s := fmt.Sprintf("outbox: item %q: corrupt record: %s", e.id, e.msg)
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *corruptError) Unwrap() error { return e.err }

func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// txError marks an error returned by our own transaction functions, which
// is already self-explanatory, from an error of bbolt itself (commit,
// I/O), which gets the file path added.
type txError struct{ err error }

func (e *txError) Error() string { return e.err.Error() }
func (e *txError) Unwrap() error { return e.err }

func txErr(err error) error {
	if err == nil {
		return nil
	}
	return &txError{err}
}

// OpenBolt opens the outbox file at path, creating it (mode 0600, as it
// holds events that may be personal data) and its parent folder (mode
// 0700) if needed. It fails with an error matching ErrInUse if another
// process holds the file for longer than the lock timeout
// (DefaultLockTimeout unless WithLockTimeout says otherwise), and with an
// error matching ErrDamaged, naming the file, if the file is damaged.
func OpenBolt(path string, opts ...BoltOption) (*Bolt, error) {
	if path == "" {
		return nil, errors.New("outbox: empty path")
	}
	cfg := newBoltConfig(opts)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	db, err := openDB(path, cfg.lockTimeout)
	if err != nil {
		return nil, err
	}
	q := &Bolt{db: db, path: path, leases: make(map[string]struct{}), batchDelay: cfg.batchDelay, maxBatch: cfg.maxBatchSize}
	err = q.guard(func() error { return db.Update(initBuckets) })
	if err != nil {
		_ = db.Close()
		if errors.Is(err, ErrDamaged) {
			return nil, err
		}
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	return q, nil
}

// openDB checks the bbolt file at path (see preflight), opens it and takes
// its lock. If the file was replaced while this waited for the lock
// (Compact renames a new file over the old one while it holds the old
// one's lock), the lock it got is the old file's: writing there would be
// lost, so it opens the new file.
func openDB(path string, lockTimeout time.Duration) (*bolt.DB, error) {
	for range 10 {
		if err := preflight(path, lockTimeout); err != nil {
			return nil, err
		}
		var f *os.File
		db, err := bolt.Open(path, 0o600, &bolt.Options{
			Timeout:      lockTimeout,
			FreelistType: bolt.FreelistMapType,
			OpenFile: func(name string, flag int, mode os.FileMode) (*os.File, error) {
				file, err := os.OpenFile(name, flag, mode)
				f = file
				return file, err
			},
		})
		if err != nil {
			if errors.Is(err, berrors.ErrTimeout) {
				return nil, &inUseError{path: path}
			}
			return nil, fmt.Errorf("outbox %s: open: %w", path, err)
		}
		if f == nil || sameFile(f, path) {
			return db, nil
		}
		_ = db.Close()
	}
	return nil, fmt.Errorf("outbox %s: open: the file keeps being replaced while it is opened", path)
}

// sameFile reports whether the open file f is the one now at path.
func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// guardPanics runs fn, turning a panic, or a memory fault (bbolt reading a
// page of the memory-mapped file that is damaged or beyond the end of a
// truncated file), into an error for path.
func guardPanics(path string, fn func() error) (err error) {
	prev := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(prev)
		if p := recover(); p != nil {
			err = &damagedError{path: path, msg: fmt.Sprintf("reading it failed (%v)", p)}
		}
	}()
	return fn()
}

// guard runs fn as guardPanics does; a panic marks q broken.
func (q *Bolt) guard(fn func() error) error {
	err := guardPanics(q.path, fn)
	var d *damagedError
	if errors.As(err, &d) {
		q.broken.CompareAndSwap(nil, d)
	}
	return err
}

// view runs fn in a read transaction, guarded.
func (q *Bolt) view(fn func(t *boltTx) error) error {
	return q.guard(func() error {
		return q.db.View(func(tx *bolt.Tx) error {
			t, err := openTx(tx)
			if err != nil {
				return txErr(err)
			}
			return fn(t)
		})
	})
}

// update runs fn in a write transaction, guarded (the commit too). It
// does what DB.Update does, except on a panic: DB.Update's deferred
// rollback reloads the free-page list from the file, which on a damaged
// file faults again and leaves the writer lock held (Close would then
// hang), where Tx.Rollback only undoes the transaction in memory.
func (q *Bolt) update(fn func(t *boltTx) error) error {
	return q.guard(func() error {
		tx, err := q.db.Begin(true)
		if err != nil {
			return err
		}
		defer func() {
			if p := recover(); p != nil {
				_ = tx.Rollback()
				panic(p)
			}
		}()
		t, err := openTx(tx)
		if err == nil {
			err = fn(t)
		} else {
			err = txErr(err)
		}
		if err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		q.commits.Add(1)
		return nil
	})
}

// writeBatch is a batch of Update calls sharing one write transaction.
type writeBatch struct {
	calls []batchCall
	full  chan struct{} // closed when the batch is full
}

type batchCall struct {
	fn   func(*boltTx) error
	done chan error
}

// batch runs fn in a write transaction shared with the concurrent calls
// of batch, as bbolt's DB.Batch does, except that the transaction runs on
// the goroutine of the first caller (the leader), under guard: a fault
// while committing becomes an error, not a crash. The leader waits
// batchDelay (or until the batch is full), then for the batch before it
// to commit, and commits every call that joined meanwhile. fn may run more
// than once: if a call fails, the transaction is rolled back and run again
// without it, and that call gets its error.
func (q *Bolt) batch(fn func(*boltTx) error) error {
	c := batchCall{fn: fn, done: make(chan error, 1)}
	q.bmu.Lock()
	b := q.next
	lead := b == nil
	if lead {
		b = &writeBatch{full: make(chan struct{})}
		q.next = b
	}
	b.calls = append(b.calls, c)
	if len(b.calls) >= q.maxBatch {
		q.next = nil // sealed: later calls start a new batch
		close(b.full)
	}
	q.bmu.Unlock()
	if lead {
		q.runBatch(b)
	}
	return <-c.done
}

func (q *Bolt) runBatch(b *writeBatch) {
	timer := time.NewTimer(q.batchDelay)
	select {
	case <-timer.C:
	case <-b.full:
	}
	timer.Stop()
	q.wmu.Lock()
	defer q.wmu.Unlock()
	q.bmu.Lock()
	if q.next == b {
		q.next = nil
	}
	calls := b.calls
	q.bmu.Unlock()
	for len(calls) > 0 {
		failed := -1
		err := q.update(func(t *boltTx) error {
			for i, c := range calls {
				if err := c.fn(t); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 && !errors.Is(err, ErrDamaged) {
			calls[failed].done <- err
			calls = slices.Delete(calls, failed, failed+1)
			continue
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// compactTxSize is how many bytes Compact copies per write transaction.
const compactTxSize = 64 << 20

// Compact rewrites the outbox file at path with only its live data and
// replaces it, giving back to the file system the space of purged and
// delivered items (bbolt reuses freed pages but never shrinks its file).
// It returns the file's size before and after.
//
// It needs the file to itself: it takes the file's lock (failing with an
// error matching ErrInUse after the lock timeout, DefaultLockTimeout
// unless WithLockTimeout says otherwise) and holds it until the new file is
// in place, so run it between two runs of a sender, or at the start of
// one. It is safe against a crash at any point: the new file is written
// beside the old one, synced, and renamed over it; a process waiting for
// the lock meanwhile opens the new file. The new file keeps the old one's
// mode and (where this process may set it) owner; a symlink at path is
// followed, and stays. A damaged file is refused (an error matching
// ErrDamaged) and left as it is: see Salvage. Compacting also erases from
// the file the bytes of removed and purged items, which stay in its free
// pages until then.
func Compact(path string, opts ...BoltOption) (before, after int64, err error) {
	cfg := newBoltConfig(opts)
	if _, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	// A symlink is followed: the file it points to is compacted in place,
	// and the link stays.
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	src, err := openDB(real, cfg.lockTimeout)
	if err != nil {
		var d *damagedError
		if errors.As(err, &d) {
			d.path = path
		}
		return 0, 0, err
	}
	defer func() { _ = src.Close() }()
	err = guardPanics(path, func() error {
		return src.View(func(tx *bolt.Tx) error { _, err := openTx(tx); return err })
	})
	if errors.Is(err, ErrDamaged) {
		return 0, 0, err
	}
	if err != nil {
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	fi, err := os.Stat(real) // under the lock: what is compacted
	if err != nil {
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	before = fi.Size()
	tmp := real + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	dst, err := bolt.Open(tmp, fi.Mode().Perm(), &bolt.Options{Timeout: cfg.lockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	// The new file keeps the old one's mode and, where this process may
	// set it, its owner (a root compaction must not lock the service out).
	_ = os.Chmod(tmp, fi.Mode().Perm())
	chownLike(tmp, fi)
	// Every transaction of Compact is committed and fsync'd. A damaged
	// page of the old file met on the way stops it (the new file is
	// removed).
	err = guardPanics(path, func() error { return bolt.Compact(dst, src, compactTxSize) })
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, real)
	}
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, ErrDamaged) {
			return 0, 0, err
		}
		return 0, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	// The rename is durable once the folder is synced.
	if d, err := os.Open(filepath.Dir(real)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	fi, err = os.Stat(real)
	if err != nil {
		return before, 0, fmt.Errorf("outbox %s: compact: %w", path, err)
	}
	return before, fi.Size(), nil
}

// initBuckets creates the buckets of a new file and checks the layout
// version of an existing one.
func initBuckets(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	switch v := meta.Get(keyVersion); {
	case v == nil:
		if err := meta.Put(keyVersion, []byte(formatVersion)); err != nil {
			return err
		}
	case string(v) != formatVersion:
		return fmt.Errorf("unsupported outbox format version %q (want %q)", v, formatVersion)
	}
	for _, name := range [][]byte{bucketItems, bucketDue, bucketCounts, bucketQuarantine} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	sb, err := tx.CreateBucketIfNotExists(bucketStates)
	if err != nil {
		return err
	}
	for _, s := range states {
		if _, err := sb.CreateBucketIfNotExists([]byte(s)); err != nil {
			return err
		}
	}
	return nil
}

// ready reports why an operation cannot start.
func (q *Bolt) ready(ctx context.Context) error {
	if q.closed.Load() {
		return ErrClosed
	}
	if d := q.broken.Load(); d != nil {
		return d
	}
	return ctx.Err()
}

// wrap turns an error of a transaction into the error of an operation.
func (q *Bolt) wrap(op string, err error) error {
	var te *txError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrDamaged):
		return err
	case errors.As(err, &te):
		return te.err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	default:
		return fmt.Errorf("outbox %s: %s: %w", q.path, op, err)
	}
}

// Enqueue implements Queue. The whole batch is written in one write
// transaction, fsync'd before Enqueue returns; concurrent Enqueues (and
// Updates) share that transaction and its fsync, as Update does (see
// WithBatchDelay): a service enqueueing each request's events as they
// arrive pays one fsync per group, not one per request. An ID whose stored record
// cannot be read is quarantined and enqueued anew (at least once: the
// event may be sent again).
func (q *Bolt) Enqueue(ctx context.Context, items []*Item) ([]*Item, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	fresh, err := prepareAll(items, now)
	if err != nil {
		return nil, err
	}
	out := make([]*Item, len(items))
	if len(items) == 0 {
		return out, nil
	}
	var skipped []Skip
	// The function may run more than once (a batch is run again without
	// a failing call): it starts over each time.
	err = q.batch(func(t *boltTx) error {
		skipped = skipped[:0]
		for i, p := range fresh {
			old, err := t.get(p.ID)
			if errors.Is(err, ErrCorrupt) {
				s, rerr := t.repair(map[string]bool{p.ID: true}, now, true)
				if rerr != nil {
					return txErr(rerr)
				}
				skipped = append(skipped, s...)
				old, err = nil, nil
			}
			if err != nil {
				return txErr(err)
			}
			if old != nil {
				out[i] = old
				continue
			}
			if err := t.put(nil, p); err != nil {
				return txErr(err)
			}
			out[i] = p
		}
		return nil
	})
	if err != nil {
		return nil, q.wrap("enqueue", err)
	}
	reportSkips(ctx, skipped)
	return out, nil
}

func reportSkips(ctx context.Context, skipped []Skip) {
	for _, s := range skipped {
		reportSkip(ctx, s)
	}
}

// prepareAll validates the items given to Enqueue and returns normalized
// copies.
func prepareAll(items []*Item, now time.Time) ([]*Item, error) {
	fresh := make([]*Item, len(items))
	for i, it := range items {
		p, err := prepareNew(it, now)
		if err != nil {
			return nil, fmt.Errorf("outbox: enqueue item %d: %w", i, err)
		}
		fresh[i] = p
	}
	return fresh, nil
}

// prepareNew validates an item to enqueue and returns a normalized copy.
func prepareNew(it *Item, now time.Time) (*Item, error) {
	if it == nil {
		return nil, errors.New("nil item")
	}
	if err := checkID(it.ID); err != nil {
		return nil, err
	}
	p := *it
	p.Event = bytes.Clone(it.Event)
	switch {
	case p.State == "":
		p.State = Pending
	case !knownState(p.State):
		return nil, fmt.Errorf("item %q: unknown state %q", p.ID, p.State)
	}
	p.CreatedAt = orNow(p.CreatedAt, now)
	p.NextAt = orNow(p.NextAt, now)
	p.UpdatedAt = orNow(p.UpdatedAt, now)
	if p.State == Delivered {
		p.Event = nil
	}
	return &p, nil
}

// prepareUpdate validates the item given to Update (whose ID the caller
// checked) and returns a copy of the outcome it holds (State, Attempts,
// NextAt, UpdatedAt, LastStatus, LastError) with its times normalized: in
// UTC, a zero UpdatedAt, and a zero NextAt of a pending item, now.
func prepareUpdate(item *Item, now time.Time) (*Item, error) {
	if item == nil {
		return nil, errors.New("outbox: update: nil item")
	}
	if !knownState(item.State) {
		return nil, fmt.Errorf("outbox: update item %q: unknown state %q", item.ID, item.State)
	}
	u := &Item{ID: item.ID, State: item.State, Attempts: item.Attempts, NextAt: item.NextAt.UTC(),
		UpdatedAt: orNow(item.UpdatedAt, now), LastStatus: item.LastStatus, LastError: item.LastError}
	if u.State == Pending {
		u.NextAt = orNow(item.NextAt, now)
	}
	return u, nil
}

// updated returns the stored item old with the outcome u (prepareUpdate's)
// over it, its other fields as stored: a delivered item loses its Event,
// and cannot go back to another state.
func updated(old, u *Item) (*Item, error) {
	if old.State == Delivered && u.State != Delivered {
		return nil, fmt.Errorf("outbox: update item %q: already delivered, cannot become %s", u.ID, u.State)
	}
	n := *old
	n.State, n.Attempts, n.NextAt, n.UpdatedAt = u.State, u.Attempts, u.NextAt, u.UpdatedAt
	n.LastStatus, n.LastError = u.LastStatus, u.LastError
	if n.State == Delivered {
		n.Event = nil
	}
	return &n, nil
}

func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("empty item ID")
	case len(id) > MaxIDLen:
		return fmt.Errorf("item ID of %d bytes is longer than %d", len(id), MaxIDLen)
	}
	return nil
}

// orNow returns t in UTC without its monotonic reading, or now if t is zero.
func orNow(t, now time.Time) time.Time {
	if t.IsZero() {
		return now
	}
	return t.UTC()
}

// findings collects what a read transaction met that a write transaction
// must set right: unreadable records and index entries out of step.
type findings struct {
	ids     map[string]bool  // IDs to repair
	corrupt map[string]error // of those, the unreadable records
}

func (f *findings) add(id string, err error) {
	if f.ids == nil {
		f.ids = map[string]bool{}
	}
	f.ids[id] = true
	if err != nil {
		if f.corrupt == nil {
			f.corrupt = map[string]error{}
		}
		f.corrupt[id] = err
	}
}

func (f *findings) any() bool { return len(f.ids) > 0 }

// repairLater runs repair, after a read transaction, for what it found,
// and tells OnSkip about the unreadable records. A failed repair only
// means that they are met again next time; it is not the caller's error.
func (q *Bolt) repairLater(ctx context.Context, f *findings) {
	if !f.any() {
		return
	}
	var skipped []Skip
	err := q.update(func(t *boltTx) error {
		var err error
		skipped, err = t.repair(f.ids, time.Now().UTC(), true)
		return err
	})
	if err != nil {
		skipped = skipped[:0]
		for id, e := range f.corrupt {
			skipped = append(skipped, Skip{ID: id, Err: e})
		}
	}
	reportSkips(ctx, skipped)
}

// Claim implements Queue. A zero now means time.Now(); max <= 0 claims
// nothing. A due item whose record cannot be read is skipped (and
// quarantined, see Bolt).
func (q *Bolt) Claim(ctx context.Context, now time.Time, max int) ([]*Item, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, nil
	}
	if now.IsZero() {
		now = time.Now()
	}
	limit := timeKey(now)

	q.mu.Lock()
	var (
		out []*Item
		bad findings
	)
	err := q.view(func(t *boltTx) error {
		c := t.due.Cursor()
		for k, _ := c.First(); k != nil && len(out) < max; k, _ = c.Next() {
			if len(k) <= 8 {
				bad.add(string(k), nil) // a bad key: the repair walk drops it
				continue
			}
			if bytes.Compare(k[:8], limit[:]) > 0 {
				break
			}
			id := string(k[8:])
			if _, leased := q.leases[id]; leased {
				continue
			}
			it, err := t.get(id)
			switch {
			case errors.Is(err, ErrCorrupt):
				bad.add(id, err)
				continue
			case err != nil:
				return txErr(err)
			case it == nil || it.State != Pending || !bytes.Equal(k, indexKey(it.NextAt, id)):
				bad.add(id, nil) // a stale due entry
				continue
			}
			out = append(out, it)
		}
		return nil
	})
	if err == nil {
		for _, it := range out {
			q.leases[it.ID] = struct{}{}
		}
	}
	q.mu.Unlock()
	if err != nil {
		return nil, q.wrap("claim", err)
	}
	q.repairLater(ctx, &bad)
	return out, nil
}

// Update implements Queue. Concurrent Updates share one write transaction
// and one fsync (see WithBatchDelay). If Update fails, the lease is kept:
// the caller may retry or Release the item. A stored record that cannot
// be read is quarantined, and Update fails with an error matching
// ErrCorrupt.
func (q *Bolt) Update(ctx context.Context, item *Item) error {
	if err := q.ready(ctx); err != nil {
		return err
	}
	if item != nil {
		if err := checkID(item.ID); err != nil {
			return fmt.Errorf("outbox: update: %w", err)
		}
	}
	u, err := prepareUpdate(item, time.Now().UTC())
	if err != nil {
		return err
	}
	id := u.ID

	// The function may run more than once (a batch is run again without
	// a failing call), so it only reads its arguments.
	err = q.batch(func(t *boltTx) error {
		old, err := t.get(id)
		if err != nil {
			return txErr(err)
		}
		if old == nil {
			return txErr(fmt.Errorf("%w: %s", ErrNotFound, id))
		}
		n, err := updated(old, u)
		if err != nil {
			return txErr(err)
		}
		return txErr(t.put(old, n))
	})
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			var f findings
			f.add(id, err)
			q.repairLater(ctx, &f)
			return fmt.Errorf("%w (moved to the quarantine)", q.wrap("update", err))
		}
		return q.wrap("update", err)
	}
	q.mu.Lock()
	delete(q.leases, id)
	q.mu.Unlock()
	return nil
}

// Release implements Queue.
func (q *Bolt) Release(ctx context.Context, ids ...string) error {
	if err := q.ready(ctx); err != nil {
		return err
	}
	q.mu.Lock()
	for _, id := range ids {
		delete(q.leases, id)
	}
	q.mu.Unlock()
	return nil
}

// Get implements Store. A record that cannot be read gives an error
// matching ErrCorrupt, and is quarantined.
func (q *Bolt) Get(ctx context.Context, id string) (*Item, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	var (
		it  *Item
		bad findings
	)
	err := q.view(func(t *boltTx) error {
		if id == "" || len(id) > MaxIDLen {
			return nil
		}
		var err error
		it, err = t.get(id)
		if errors.Is(err, ErrCorrupt) {
			bad.add(id, err)
		}
		return txErr(err)
	})
	if err != nil {
		err = q.wrap("get", err)
		if bad.any() {
			q.repairLater(ctx, &bad)
			return nil, fmt.Errorf("%w (moved to the quarantine)", err)
		}
		return nil, err
	}
	if it == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return it, nil
}

// List implements Store. The cursor is opaque: pass the next value of the
// previous page. Items updated between two pages move to the end of the
// list of their (new) state. Records that cannot be read are skipped
// (and quarantined): a page may then hold fewer than limit items.
func (q *Bolt) List(ctx context.Context, state State, cursor string, limit int) ([]*Item, string, error) {
	if err := q.ready(ctx); err != nil {
		return nil, "", err
	}
	if !knownState(state) {
		return nil, "", fmt.Errorf("outbox: list: unknown state %q", state)
	}
	if limit <= 0 {
		limit = DefaultListLimit
	}
	var after []byte
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(b) <= 8 {
			return nil, "", fmt.Errorf("outbox: list: invalid cursor %q", cursor)
		}
		after = b
	}
	var (
		items []*Item
		next  string
		bad   findings
	)
	err := q.view(func(t *boltTx) error {
		c := t.state(state).Cursor()
		var k []byte
		if after == nil {
			k, _ = c.First()
		} else if k, _ = c.Seek(after); k != nil && bytes.Equal(k, after) {
			k, _ = c.Next()
		}
		for ; k != nil; k, _ = c.Next() {
			if len(items) == limit {
				next = base64.RawURLEncoding.EncodeToString(indexKey(items[len(items)-1].UpdatedAt, items[len(items)-1].ID))
				break
			}
			if len(k) <= 8 {
				bad.add(string(k), nil)
				continue
			}
			id := string(k[8:])
			it, err := t.get(id)
			switch {
			case errors.Is(err, ErrCorrupt):
				bad.add(id, err)
				continue
			case err != nil:
				return txErr(err)
			case it == nil || it.State != state || !bytes.Equal(k, indexKey(it.UpdatedAt, id)):
				bad.add(id, nil)
				continue
			}
			items = append(items, it)
		}
		return nil
	})
	if err != nil {
		return nil, "", q.wrap("list", err)
	}
	q.repairLater(ctx, &bad)
	return items, next, nil
}

// Counts implements Store. Every State is in the map, with 0 if no item
// is in it. It reads counters kept with every change: O(states).
func (q *Bolt) Counts(ctx context.Context) (map[State]int, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	counts := make(map[State]int, len(states))
	err := q.view(func(t *boltTx) error {
		for _, s := range states {
			counts[s] = int(t.count(s))
		}
		return nil
	})
	if err != nil {
		return nil, q.wrap("counts", err)
	}
	return counts, nil
}

// Replay implements Store, in one write transaction. Dead letters whose
// record cannot be read are skipped (and quarantined).
func (q *Bolt) Replay(ctx context.Context, ids []string, now time.Time) (int, error) {
	if err := q.ready(ctx); err != nil {
		return 0, err
	}
	if ids != nil && len(ids) == 0 {
		return 0, nil
	}
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	var (
		n       int
		skipped []Skip
	)
	err := q.update(func(t *boltTx) error {
		n = 0
		var bad findings
		targets := ids
		if targets == nil {
			// Collect first: the index changes under the loop below.
			err := t.state(Dead).ForEach(func(k, _ []byte) error {
				if len(k) <= 8 {
					bad.add(string(k), nil)
					return nil
				}
				targets = append(targets, string(k[8:]))
				return nil
			})
			if err != nil {
				return txErr(err)
			}
		}
		for _, id := range targets {
			if id == "" || len(id) > MaxIDLen {
				continue
			}
			old, err := t.get(id)
			if errors.Is(err, ErrCorrupt) {
				bad.add(id, err)
				continue
			}
			if err != nil {
				return txErr(err)
			}
			if old == nil || old.State != Dead {
				if ids == nil {
					bad.add(id, nil) // listed as dead, but not: a stale entry
				}
				continue
			}
			r := *old
			r.State = Pending
			r.NextAt = now
			r.UpdatedAt = now
			r.Attempts = 0
			r.LastStatus = 0
			r.LastError = ""
			if err := t.put(old, &r); err != nil {
				return txErr(err)
			}
			n++
		}
		var err error
		if bad.any() {
			skipped, err = t.repair(bad.ids, now, true)
		}
		return txErr(err)
	})
	if err != nil {
		return 0, q.wrap("replay", err)
	}
	reportSkips(ctx, skipped)
	return n, nil
}

// purgeBatch is the most items Purge deletes in one write transaction, so
// that a large purge does not hold the writer (and Updates) for long.
var purgeBatch = 10_000

// purgeCommitted, when set (by tests), is told how many items each
// committed purge transaction deleted.
var purgeCommitted func(n int)

// Purge implements Queue. It walks the index of each state from the
// oldest UpdatedAt, so its cost is in the number of items it deletes, not
// in the size of the outbox; it deletes at most purgeBatch items per
// write transaction, and stops between two transactions when ctx is done
// (returning what it deleted so far, and ctx's error). Records that
// cannot be read are skipped (and quarantined), not deleted.
func (q *Bolt) Purge(ctx context.Context, before time.Time, states ...State) (int, error) {
	if err := q.ready(ctx); err != nil {
		return 0, err
	}
	sts, err := purgeStates(states)
	if err != nil {
		return 0, err
	}
	limit := timeKey(before)
	total := 0
	for {
		n, seen := 0, 0
		var skipped []Skip
		err := q.update(func(t *boltTx) error {
			n, seen = 0, 0
			var bad findings
			for _, s := range sts {
				d, m, err := t.purge(s, limit, purgeBatch-seen, &bad)
				if err != nil {
					return txErr(err)
				}
				n += d
				seen += m
			}
			var err error
			if bad.any() {
				skipped, err = t.repair(bad.ids, time.Now().UTC(), true)
			}
			return txErr(err)
		})
		if err != nil {
			return total, q.wrap("purge", err)
		}
		reportSkips(ctx, skipped)
		if purgeCommitted != nil {
			purgeCommitted(n)
		}
		total += n
		if seen < purgeBatch {
			return total, nil
		}
		if err := q.ready(ctx); err != nil {
			return total, err
		}
	}
}

// purge deletes up to max items in state s updated before limit. It
// returns how many it deleted and how many index entries it went through;
// entries it could not delete (an unreadable record, an entry out of step
// with its record) are added to bad.
func (t *boltTx) purge(s State, limit [8]byte, max int, bad *findings) (deleted, seen int, err error) {
	idx := t.state(s)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < max; k, _ = c.Next() {
		if len(k) > 8 && bytes.Compare(k[:8], limit[:]) >= 0 {
			break
		}
		// Copied: the keys are deleted below, not while the cursor walks.
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if len(k) <= 8 {
			bad.add(string(k), nil)
			continue
		}
		id := string(k[8:])
		it, err := t.get(id)
		switch {
		case errors.Is(err, ErrCorrupt):
			bad.add(id, err)
			continue
		case err != nil:
			return 0, 0, err
		case it == nil || it.State != s || !bytes.Equal(k, indexKey(it.UpdatedAt, id)):
			bad.add(id, nil)
			continue
		}
		if err := idx.Delete(k); err != nil {
			return 0, 0, err
		}
		if err := t.items.Delete(k[8:]); err != nil {
			return 0, 0, err
		}
		deleted++
	}
	if deleted > 0 {
		if err := t.add(s, -int64(deleted)); err != nil {
			return 0, 0, err
		}
	}
	return deleted, len(keys), nil
}

// Remove implements Store, in one write transaction: the records of the
// IDs (readable or not), their index entries and their quarantined
// records. The bytes stay in the file's free pages until bbolt reuses
// them; Compact erases them from the file.
func (q *Bolt) Remove(ctx context.Context, ids ...string) (int, error) {
	if err := q.ready(ctx); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	var n int
	err := q.update(func(t *boltTx) error {
		n = 0
		var walk findings
		for _, id := range ids {
			if id == "" || len(id) > bolt.MaxKeySize {
				continue
			}
			removed := false
			old, err := t.get(id)
			switch {
			case errors.Is(err, ErrCorrupt):
				walk.add(id, nil) // its index entries are found by a walk
			case err != nil:
				return txErr(err)
			case old != nil:
				ok, err := t.unindex(old)
				if err != nil {
					return txErr(err)
				}
				if !ok {
					walk.add(id, nil)
				}
			}
			if t.items.Get([]byte(id)) != nil {
				if err := t.items.Delete([]byte(id)); err != nil {
					return txErr(err)
				}
				removed = true
			}
			m, err := t.unquarantine(id)
			if err != nil {
				return txErr(err)
			}
			if removed || m > 0 {
				n++
			}
		}
		if walk.any() {
			// The records are gone: the walk drops every entry left.
			_, err := t.repair(walk.ids, time.Now().UTC(), false)
			return txErr(err)
		}
		return nil
	})
	if err != nil {
		return 0, q.wrap("remove", err)
	}
	q.mu.Lock()
	for _, id := range ids {
		delete(q.leases, id)
	}
	q.mu.Unlock()
	return n, nil
}

// Quarantined is a record that could not be read, moved to Bolt's
// quarantine with its bytes.
type Quarantined struct {
	// ID is the key the record was stored under.
	ID string `json:"id"`
	// Reason says what was wrong with it.
	Reason string `json:"reason"`
	// At is when it was quarantined.
	At time.Time `json:"quarantined_at"`
	// Raw is the record as it was stored.
	Raw []byte `json:"raw"`
}

// Quarantine returns the quarantined records, oldest first. Remove
// deletes them by ID; Salvage copies them into the new file's quarantine.
func (q *Bolt) Quarantine(ctx context.Context) ([]Quarantined, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	var out []Quarantined
	err := q.view(func(t *boltTx) error {
		if t.quarantine == nil {
			return nil
		}
		return t.quarantine.ForEach(func(k, v []byte) error {
			out = append(out, parseQuarantined(k, v))
			return nil
		})
	})
	if err != nil {
		return nil, q.wrap("quarantine", err)
	}
	return out, nil
}

// parseQuarantined reads a quarantine entry; one that does not parse
// itself is shown with its bytes.
func parseQuarantined(k, v []byte) Quarantined {
	var e Quarantined
	if json.Unmarshal(v, &e) != nil {
		e = Quarantined{Reason: "unreadable quarantine entry", Raw: bytes.Clone(v)}
		if len(k) > 8 {
			e.ID = string(k[8:])
			e.At = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8]))).UTC()
		}
	}
	return e
}

// Close implements Queue: it waits for running transactions, closes the
// file and forgets the leases. Every later call returns ErrClosed.
func (q *Bolt) Close() error {
	if !q.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	err := q.db.Close()
	q.mu.Lock()
	clear(q.leases)
	q.mu.Unlock()
	if err != nil {
		return fmt.Errorf("outbox %s: close: %w", q.path, err)
	}
	return nil
}

// Path returns the path of the outbox file.
func (q *Bolt) Path() string { return q.path }

// boltTx holds the buckets of one transaction.
type boltTx struct {
	tx                                     *bolt.Tx
	items, due, states, counts, quarantine *bolt.Bucket
}

func openTx(tx *bolt.Tx) (*boltTx, error) {
	t := &boltTx{
		tx:         tx,
		items:      tx.Bucket(bucketItems),
		due:        tx.Bucket(bucketDue),
		states:     tx.Bucket(bucketStates),
		counts:     tx.Bucket(bucketCounts),
		quarantine: tx.Bucket(bucketQuarantine), // nil in a file not opened by OpenBolt since it came
	}
	if t.items == nil || t.due == nil || t.states == nil || t.counts == nil {
		return nil, errors.New("outbox: missing bucket (not an outbox file?)")
	}
	for _, s := range states {
		if t.states.Bucket([]byte(s)) == nil {
			return nil, fmt.Errorf("outbox: missing %s index (not an outbox file?)", s)
		}
	}
	return t, nil
}

func (t *boltTx) state(s State) *bolt.Bucket { return t.states.Bucket([]byte(s)) }

// get returns the stored item, nil if there is none; an error matching
// ErrCorrupt if its record cannot be read.
func (t *boltTx) get(id string) (*Item, error) {
	v := t.items.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	return decodeItem(id, v)
}

// decodeItem reads the record v stored under id.
func decodeItem(id string, v []byte) (*Item, error) {
	it := new(Item)
	if err := json.Unmarshal(v, it); err != nil {
		return nil, &corruptError{id: id, msg: "bad JSON", err: err}
	}
	if it.ID != id {
		return nil, &corruptError{id: id, msg: fmt.Sprintf("stored under another ID %q", it.ID)}
	}
	if !knownState(it.State) {
		return nil, &corruptError{id: id, msg: fmt.Sprintf("unknown state %q", it.State)}
	}
	return it, nil
}

// put stores n, which replaces old (nil for a new item), and maintains
// the indexes and counts.
func (t *boltTx) put(old, n *Item) error {
	v, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("outbox: item %q: %w", n.ID, err)
	}
	if old != nil {
		if old.State == Pending {
			if err := t.due.Delete(indexKey(old.NextAt, old.ID)); err != nil {
				return err
			}
		}
		if err := t.state(old.State).Delete(indexKey(old.UpdatedAt, old.ID)); err != nil {
			return err
		}
		if old.State != n.State {
			if err := t.add(old.State, -1); err != nil {
				return err
			}
		}
	}
	if old == nil || old.State != n.State {
		if err := t.add(n.State, 1); err != nil {
			return err
		}
	}
	if n.State == Pending {
		if err := t.due.Put(indexKey(n.NextAt, n.ID), []byte{}); err != nil {
			return fmt.Errorf("outbox: item %q: %w", n.ID, err)
		}
	}
	if err := t.state(n.State).Put(indexKey(n.UpdatedAt, n.ID), []byte{}); err != nil {
		return fmt.Errorf("outbox: item %q: %w", n.ID, err)
	}
	if err := t.items.Put([]byte(n.ID), v); err != nil {
		return fmt.Errorf("outbox: item %q: %w", n.ID, err)
	}
	return nil
}

// unindex deletes the index entries of the stored item it, with its
// count; ok is false if one of them was missing (the index is out of step:
// the caller walks it).
func (t *boltTx) unindex(it *Item) (ok bool, err error) {
	ok = true
	del := func(b *bolt.Bucket, k []byte) error {
		if b.Get(k) == nil {
			ok = false
			return nil
		}
		return b.Delete(k)
	}
	if it.State == Pending {
		if err := del(t.due, indexKey(it.NextAt, it.ID)); err != nil {
			return false, err
		}
	}
	k := indexKey(it.UpdatedAt, it.ID)
	if t.state(it.State).Get(k) != nil {
		if err := t.state(it.State).Delete(k); err != nil {
			return false, err
		}
		if err := t.add(it.State, -1); err != nil {
			return false, err
		}
	} else {
		ok = false
	}
	return ok, nil
}

// repair sets the records and index entries of ids right, in a write
// transaction: an unreadable record is moved to the quarantine (or, with
// keep false, deleted), and every index entry of these IDs that its
// record (if any) does not imply is deleted, and the missing ones added;
// index keys too short to hold an ID are deleted. The counts are then
// those of the state indexes. It walks every index: O(items), for the
// rare damaged record. It returns the unreadable records it met.
func (t *boltTx) repair(ids map[string]bool, now time.Time, keep bool) ([]Skip, error) {
	var skipped []Skip
	recs := make(map[string]*Item, len(ids))
	for id := range ids {
		if id == "" || len(id) > bolt.MaxKeySize {
			continue
		}
		v := t.items.Get([]byte(id))
		if v == nil {
			continue
		}
		it, err := decodeItem(id, v)
		if err == nil {
			recs[id] = it
			continue
		}
		if keep {
			if err := t.putQuarantine(Quarantined{ID: id, Reason: err.Error(), At: now, Raw: bytes.Clone(v)}); err != nil {
				return nil, err
			}
		}
		if err := t.items.Delete([]byte(id)); err != nil {
			return nil, err
		}
		skipped = append(skipped, Skip{ID: id, Err: err, Quarantined: keep})
	}
	// want holds every index entry the readable records imply, by index
	// name ("due" or a state); an entry met is crossed off, and those
	// left are added.
	want := map[string]map[string]bool{}
	wantKey := func(name string, k []byte) {
		if want[name] == nil {
			want[name] = map[string]bool{}
		}
		want[name][string(k)] = true
	}
	for id, it := range recs {
		if it.State == Pending {
			wantKey("due", indexKey(it.NextAt, id))
		}
		wantKey(string(it.State), indexKey(it.UpdatedAt, id))
	}
	// clean walks one index and returns how many entries it holds after.
	clean := func(name string, b *bolt.Bucket) (int, error) {
		var drop [][]byte
		n := 0
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			switch {
			case len(k) <= 8:
				drop = append(drop, bytes.Clone(k))
				continue
			case !ids[string(k[8:])]:
			case want[name][string(k)]:
				delete(want[name], string(k))
			default:
				drop = append(drop, bytes.Clone(k))
				continue
			}
			n++
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return 0, err
			}
		}
		for k := range want[name] {
			if err := b.Put([]byte(k), []byte{}); err != nil {
				return 0, err
			}
			n++
		}
		return n, nil
	}
	if _, err := clean("due", t.due); err != nil {
		return nil, err
	}
	for _, s := range states {
		n, err := clean(string(s), t.state(s))
		if err != nil {
			return nil, err
		}
		if err := t.setCount(s, n); err != nil {
			return nil, err
		}
	}
	return skipped, nil
}

// putQuarantine stores e in the quarantine, under when ‖ ID.
func (t *boltTx) putQuarantine(e Quarantined) error {
	b, err := t.tx.CreateBucketIfNotExists(bucketQuarantine)
	if err != nil {
		return err
	}
	t.quarantine = b
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	id := e.ID
	if len(id) > MaxIDLen {
		id = id[:MaxIDLen] // the whole ID is in the value
	}
	for at := e.At; ; at = at.Add(time.Nanosecond) {
		k := indexKey(at, id)
		if b.Get(k) == nil {
			return b.Put(k, v)
		}
	}
}

// unquarantine deletes the quarantined records of id and returns how many
// there were.
func (t *boltTx) unquarantine(id string) (int, error) {
	if t.quarantine == nil {
		return 0, nil
	}
	var drop [][]byte
	c := t.quarantine.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) > 8 && string(k[8:]) == id || parseQuarantined(k, v).ID == id {
			drop = append(drop, bytes.Clone(k))
		}
	}
	for _, k := range drop {
		if err := t.quarantine.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(drop), nil
}

func (t *boltTx) count(s State) uint64 {
	v := t.counts.Get([]byte(s))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (t *boltTx) add(s State, delta int64) error {
	c := int64(t.count(s)) + delta
	if c < 0 {
		c = 0
	}
	return t.setCount(s, int(c))
}

func (t *boltTx) setCount(s State, n int) error {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return t.counts.Put([]byte(s), v)
}

var (
	minKeyTime = time.Unix(0, 0)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

// timeKey is t as 8-byte big-endian unix nanoseconds, clamped to
// [1970, 2262] so that the byte order is the time order.
func timeKey(t time.Time) [8]byte {
	var n int64
	switch {
	case t.Before(minKeyTime):
		n = 0
	case t.After(maxKeyTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	return b
}

// indexKey is timeKey(t) ‖ id, in a new slice (bbolt keeps keys until
// the commit).
func indexKey(t time.Time, id string) []byte {
	tk := timeKey(t)
	k := make([]byte, 0, 8+len(id))
	k = append(k, tk[:]...)
	return append(k, id...)
}
