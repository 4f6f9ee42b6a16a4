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
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ Queue = (*Bolt)(nil)

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

// formatVersion is the layout of the buckets, stored in the meta bucket.
const formatVersion = "1"

// Bucket names. See the doc comment of Bolt.
var (
	bucketItems  = []byte("items")
	bucketDue    = []byte("due")
	bucketStates = []byte("states")
	bucketCounts = []byte("counts")
	bucketMeta   = []byte("meta")
	keyVersion   = []byte("version")
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

// Bolt is the embedded Queue: a single bbolt file, no server. It is safe
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
//   - meta: "version" → the layout version.
//
// Times before 1970 or after 2262 are clamped in the index keys.
//
// Leases (items returned by Claim and not yet updated or released) are
// kept in memory only: reopening the file makes every pending item
// claimable again.
type Bolt struct {
	db     *bolt.DB
	path   string
	closed atomic.Bool

	// mu guards leases. Claim holds it for the whole read transaction, so
	// that two Claims never lease the same item.
	mu     sync.Mutex
	leases map[string]struct{}
}

// inUseError is the error of OpenBolt when the lock is held elsewhere.
type inUseError struct{ path string }

func (e *inUseError) Error() string {
	return "outbox " + e.path + " is in use by another process"
}

func (e *inUseError) Is(target error) bool { return target == ErrInUse }

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
// (DefaultLockTimeout unless WithLockTimeout says otherwise).
func OpenBolt(path string, opts ...BoltOption) (*Bolt, error) {
	if path == "" {
		return nil, errors.New("outbox: empty path")
	}
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
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	db, err := openDB(path, cfg.lockTimeout)
	if err != nil {
		return nil, err
	}
	db.MaxBatchDelay = cfg.batchDelay
	db.MaxBatchSize = cfg.maxBatchSize
	if err := db.Update(initBuckets); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("outbox %s: %w", path, err)
	}
	return &Bolt{db: db, path: path, leases: make(map[string]struct{})}, nil
}

// openDB opens the bbolt file at path and takes its lock. If the file was
// replaced while this waited for the lock (Compact renames a new file over
// the old one while it holds the old one's lock), the lock it got is the
// old file's: writing there would be lost, so it opens the new file.
func openDB(path string, lockTimeout time.Duration) (*bolt.DB, error) {
	for range 10 {
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
// followed, and stays.
func Compact(path string, opts ...BoltOption) (before, after int64, err error) {
	cfg := boltConfig{lockTimeout: DefaultLockTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&cfg)
		}
	}
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
		return 0, 0, err
	}
	defer func() { _ = src.Close() }()
	if err := src.View(func(tx *bolt.Tx) error { _, err := openTx(tx); return err }); err != nil {
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
	// Every transaction of Compact is committed and fsync'd.
	err = bolt.Compact(dst, src, compactTxSize)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, real)
	}
	if err != nil {
		_ = os.Remove(tmp)
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
	for _, name := range [][]byte{bucketItems, bucketDue, bucketCounts} {
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
	return ctx.Err()
}

// wrap turns an error of a transaction into the error of an operation.
func (q *Bolt) wrap(op string, err error) error {
	var te *txError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return te.err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	default:
		return fmt.Errorf("outbox %s: %s: %w", q.path, op, err)
	}
}

// Enqueue implements Queue. The whole batch is written in one write
// transaction, fsync'd before Enqueue returns. Missing CreatedAt, NextAt
// and UpdatedAt default to now and a missing State to Pending; the items
// passed in are not modified. A Delivered item is stored without its
// Event.
func (q *Bolt) Enqueue(ctx context.Context, items []*Item) ([]*Item, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	fresh := make([]*Item, len(items))
	for i, it := range items {
		p, err := prepareNew(it, now)
		if err != nil {
			return nil, fmt.Errorf("outbox: enqueue item %d: %w", i, err)
		}
		fresh[i] = p
	}
	out := make([]*Item, len(items))
	if len(items) == 0 {
		return out, nil
	}
	err := q.db.Update(func(tx *bolt.Tx) error {
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
		for i, p := range fresh {
			old, err := t.get(p.ID)
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
	return out, nil
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

// Claim implements Queue. A zero now means time.Now(); max <= 0 claims
// nothing. It fails (with an error matching ErrCorrupt and naming the ID)
// if the record of a due item cannot be read.
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
	defer q.mu.Unlock()
	var out []*Item
	err := q.db.View(func(tx *bolt.Tx) error {
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
		c := t.due.Cursor()
		for k, _ := c.First(); k != nil && len(out) < max; k, _ = c.Next() {
			if len(k) <= 8 {
				return txErr(&corruptError{id: string(k), msg: "bad key in the due index"})
			}
			if bytes.Compare(k[:8], limit[:]) > 0 {
				break
			}
			if _, leased := q.leases[string(k[8:])]; leased {
				continue
			}
			id := string(k[8:])
			it, err := t.get(id)
			if err != nil {
				return txErr(err)
			}
			if it == nil {
				return txErr(&corruptError{id: id, msg: "in the due index but not stored"})
			}
			if it.State != Pending {
				return txErr(&corruptError{id: id, msg: fmt.Sprintf("in the due index but %s", it.State)})
			}
			out = append(out, it)
		}
		return nil
	})
	if err != nil {
		return nil, q.wrap("claim", err)
	}
	for _, it := range out {
		q.leases[it.ID] = struct{}{}
	}
	return out, nil
}

// Update implements Queue. It stores State, Attempts, NextAt, UpdatedAt,
// LastStatus and LastError of item over the stored record (other fields
// are kept as stored); a zero UpdatedAt means now, and so does a zero
// NextAt for a pending item. Concurrent Updates share one write
// transaction and one fsync (see WithBatchDelay). A Delivered item loses
// its Event; a delivered item cannot go back to another state. An unknown
// ID gives an error matching ErrNotFound. If Update fails, the lease is
// kept: the caller may retry or Release the item.
func (q *Bolt) Update(ctx context.Context, item *Item) error {
	if err := q.ready(ctx); err != nil {
		return err
	}
	if item == nil {
		return errors.New("outbox: update: nil item")
	}
	if err := checkID(item.ID); err != nil {
		return fmt.Errorf("outbox: update: %w", err)
	}
	if !knownState(item.State) {
		return fmt.Errorf("outbox: update item %q: unknown state %q", item.ID, item.State)
	}
	now := time.Now().UTC()
	id := item.ID
	st := item.State
	attempts := item.Attempts
	nextAt := item.NextAt.UTC()
	if st == Pending {
		nextAt = orNow(item.NextAt, now)
	}
	updatedAt := orNow(item.UpdatedAt, now)
	lastStatus := item.LastStatus
	lastError := item.LastError

	// The function may run more than once (bbolt retries a batch without
	// a failing call), so it only reads its arguments.
	err := q.db.Batch(func(tx *bolt.Tx) error {
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
		old, err := t.get(id)
		if err != nil {
			return txErr(err)
		}
		if old == nil {
			return txErr(fmt.Errorf("%w: %s", ErrNotFound, id))
		}
		if old.State == Delivered && st != Delivered {
			return txErr(fmt.Errorf("outbox: update item %q: already delivered, cannot become %s", id, st))
		}
		n := *old
		n.State = st
		n.Attempts = attempts
		n.NextAt = nextAt
		n.UpdatedAt = updatedAt
		n.LastStatus = lastStatus
		n.LastError = lastError
		if st == Delivered {
			n.Event = nil
		}
		return txErr(t.put(old, &n))
	})
	if err != nil {
		return q.wrap("update", err)
	}
	q.mu.Lock()
	delete(q.leases, id)
	q.mu.Unlock()
	return nil
}

// Release implements Queue. Unknown or unleased IDs are ignored.
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

// Get implements Queue. An unknown ID gives an error matching ErrNotFound.
func (q *Bolt) Get(ctx context.Context, id string) (*Item, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	var it *Item
	err := q.db.View(func(tx *bolt.Tx) error {
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
		if id != "" && len(id) <= MaxIDLen {
			it, err = t.get(id)
		}
		return txErr(err)
	})
	if err != nil {
		return nil, q.wrap("get", err)
	}
	if it == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return it, nil
}

// List implements Queue. A limit that is not positive means
// DefaultListLimit. The cursor is opaque: pass the next value of the
// previous page. Items updated between two pages move to the end of the
// list of their (new) state.
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
	)
	err := q.db.View(func(tx *bolt.Tx) error {
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
		c := t.state(state).Cursor()
		var k []byte
		if after == nil {
			k, _ = c.First()
		} else if k, _ = c.Seek(after); k != nil && bytes.Equal(k, after) {
			k, _ = c.Next()
		}
		var last []byte
		for ; k != nil; k, _ = c.Next() {
			if len(items) == limit {
				next = base64.RawURLEncoding.EncodeToString(last)
				break
			}
			if len(k) <= 8 {
				return txErr(&corruptError{id: string(k), msg: "bad key in the " + string(state) + " index"})
			}
			id := string(k[8:])
			it, err := t.get(id)
			if err != nil {
				return txErr(err)
			}
			if it == nil || it.State != state {
				return txErr(&corruptError{id: id, msg: "out of sync with the " + string(state) + " index"})
			}
			items = append(items, it)
			last = k
		}
		return nil
	})
	if err != nil {
		return nil, "", q.wrap("list", err)
	}
	return items, next, nil
}

// Counts implements Queue. Every State is in the map, with 0 if no item
// is in it. It reads counters kept with every change: O(states).
func (q *Bolt) Counts(ctx context.Context) (map[State]int, error) {
	if err := q.ready(ctx); err != nil {
		return nil, err
	}
	counts := make(map[State]int, len(states))
	err := q.db.View(func(tx *bolt.Tx) error {
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
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

// Replay implements Queue, in one write transaction. A zero now means
// time.Now(). ids nil replays every dead item; an empty non-nil slice
// replays none.
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
	var n int
	err := q.db.Update(func(tx *bolt.Tx) error {
		n = 0
		t, err := openTx(tx)
		if err != nil {
			return txErr(err)
		}
		targets := ids
		if targets == nil {
			// Collect first: the index changes under the loop below.
			err := t.state(Dead).ForEach(func(k, _ []byte) error {
				if len(k) <= 8 {
					return &corruptError{id: string(k), msg: "bad key in the dead index"}
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
			if err != nil {
				return txErr(err)
			}
			if old == nil || old.State != Dead {
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
		return nil
	})
	if err != nil {
		return 0, q.wrap("replay", err)
	}
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
// (returning what it deleted so far, and ctx's error).
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
		n := 0
		err := q.db.Update(func(tx *bolt.Tx) error {
			n = 0
			t, err := openTx(tx)
			if err != nil {
				return txErr(err)
			}
			for _, s := range sts {
				m, err := t.purge(s, limit, purgeBatch-n)
				if err != nil {
					return txErr(err)
				}
				n += m
			}
			return nil
		})
		if err != nil {
			return total, q.wrap("purge", err)
		}
		if purgeCommitted != nil {
			purgeCommitted(n)
		}
		total += n
		if n < purgeBatch {
			return total, nil
		}
		if err := q.ready(ctx); err != nil {
			return total, err
		}
	}
}

// purge deletes up to max items in state s updated before limit.
func (t *boltTx) purge(s State, limit [8]byte, max int) (int, error) {
	idx := t.state(s)
	var keys [][]byte
	c := idx.Cursor()
	for k, _ := c.First(); k != nil && len(keys) < max; k, _ = c.Next() {
		if len(k) <= 8 {
			return 0, &corruptError{id: string(k), msg: "bad key in the " + string(s) + " index"}
		}
		if bytes.Compare(k[:8], limit[:]) >= 0 {
			break
		}
		// Copied: the keys are deleted below, not while the cursor walks.
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		id := string(k[8:])
		it, err := t.get(id)
		if err != nil {
			return 0, err
		}
		if it == nil || it.State != s {
			return 0, &corruptError{id: id, msg: "out of sync with the " + string(s) + " index"}
		}
		if err := idx.Delete(k); err != nil {
			return 0, err
		}
		if err := t.items.Delete(k[8:]); err != nil {
			return 0, err
		}
	}
	if len(keys) > 0 {
		if err := t.add(s, -int64(len(keys))); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
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
	items, due, states, counts *bolt.Bucket
}

func openTx(tx *bolt.Tx) (*boltTx, error) {
	t := &boltTx{
		items:  tx.Bucket(bucketItems),
		due:    tx.Bucket(bucketDue),
		states: tx.Bucket(bucketStates),
		counts: tx.Bucket(bucketCounts),
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

// get returns the stored item, nil if there is none.
func (t *boltTx) get(id string) (*Item, error) {
	v := t.items.Get([]byte(id))
	if v == nil {
		return nil, nil
	}
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
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(c))
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
