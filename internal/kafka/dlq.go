package kafka

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	bolt "go.etcd.io/bbolt"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// DLQIndexFile is the dead-letter index's file in a service's state
// directory.
const DLQIndexFile = "dlq-index.db"

// Kinds of dead letters.
const (
	KindDelivery = "delivery" // a request whose attempts ran out, or that failed permanently (DeadRecord)
	KindReject   = "reject"   // an event an integration rejected (delivery.RejectRecord)
)

// ErrorUnreadable is the error of a dead letter whose record on dlq-events
// could not be read: it is listed, with the reason in its details, and
// cannot be replayed.
const ErrorUnreadable = "unreadable_record"

// RejectIDPrefix starts the ID of every reject: the ID of a dead delivery
// is its item ID (hex), which never starts with it.
const RejectIDPrefix = "rej_"

var (
	// ErrNotFound: no dead letter of that ID in the integration.
	ErrNotFound = errors.New("kafka: dlq: no such dead letter")
)

// NotFoundError names the IDs a replay was given that are not dead
// letters of the integration; it matches ErrNotFound.
type NotFoundError struct{ IDs []string }

func (e *NotFoundError) Error() string {
	return ErrNotFound.Error() + ": " + strings.Join(e.IDs, ", ")
}

func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

var (
	// ErrUnavailable: Kafka did not answer (the index could not catch up
	// with dlq-events, or a replay's records were not acknowledged).
	ErrUnavailable = errors.New("kafka: dlq: Kafka is unavailable")
)

// DLQIndexOptions configure a DLQIndex.
type DLQIndexOptions struct {
	Config Config
	// Path is the index's bbolt file (a state directory's DLQIndexFile).
	Path string
	// Scrub, when set, is given each dead letter's original_event before
	// it is stored (its producer scrubbed it already; a service scrubs it
	// again with the integration's current secrets). It must return JSON.
	Scrub func(integrationID string, event json.RawMessage) json.RawMessage
	// MaxRejects is how many rejects an integration keeps, the oldest
	// dropped beyond it (default 10,000, as the embedded service's store).
	MaxRejects int
	// Retention is how long a replayed dead delivery is remembered (a
	// replay naming it again answers that it is no longer dead) before
	// it is forgotten (default 7 days, the embedded outbox's retention).
	Retention time.Duration
	// ConfigOffset, when set, is the integrations topic's end as the
	// process that replays last published it (kafkaconfig's owner). Every
	// record a replay produces to delivery-{id} carries it in ConfigHeader,
	// as the processor's records carry their event's: a deliverer that
	// follows the topic then holds a replayed request until it has applied
	// the config published before the replay, so "PATCH the key, then
	// replay" never sends the replayed requests with the old key from a
	// deliver process that has not read the PATCH yet.
	ConfigOffset func() int64
	Logger       *slog.Logger
	Now          func() time.Time
}

// DeadLetter is one dead letter of an integration, as the index holds it:
// the last dlq-events record of a dead delivery (by item ID), or one
// reject (by record).
type DeadLetter struct {
	// ID is the item ID of a dead delivery (the same request's ID on
	// delivery-{id}), or for a reject rej_ and a digest of the
	// integration and the event (rejectID): the same in every process that
	// reads the topic, and for the same reject produced twice.
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	IntegrationID string          `json:"integration_id"`
	Error         string          `json:"error"`
	Details       string          `json:"details"`
	Fields        []string        `json:"fields"`
	OriginalEvent json.RawMessage `json:"original_event,omitempty"`
	// MessageID is the event's message id (a dead delivery's).
	MessageID string `json:"message_id,omitempty"`
	// Request, Status and Attempts describe a dead delivery.
	Request  int `json:"request,omitempty"`
	Status   int `json:"status,omitempty"`
	Attempts int `json:"attempts,omitempty"`
	// Unreadable says why the record could not be read ("" when it
	// could); such a dead letter is listed and cannot be replayed.
	Unreadable string `json:"unreadable,omitempty"`
	// Key is the record's key (the event's), kept for a replay.
	Key []byte `json:"key,omitempty"`
	// Partition and Offset locate the last record on dlq-events; Seq is
	// the index's order of reading it.
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Seq       uint64 `json:"seq"`
	// Records is how many dead records of this item were read (a replayed
	// request that dies again is the same item).
	Records int `json:"records"`
	// FirstAt and At are the times of the first and the last record.
	FirstAt time.Time `json:"first_at"`
	At      time.Time `json:"at"`
	// ReplayedAt is set once a dead delivery is replayed (and cleared when
	// it dies again): it is then no longer listed.
	ReplayedAt time.Time `json:"replayed_at,omitzero"`
}

// DLQIndex keeps what the dead-letter API shows of dlq-events: a direct
// consumer of every partition (no consumer group: every process that
// serves the API reads the whole topic) writes each record, and the
// offset after it, in one bbolt transaction, so a restart goes on exactly
// where it stopped and replays recorded here are never undone by reading
// a record again. It holds what the records hold (events with the
// integrations' secrets scrubbed, never a credential).
type DLQIndex struct {
	opts DLQIndexOptions
	db   *bolt.DB
	cl   *kgo.Client // replays' produces, end offsets

	replayMu  sync.Mutex // one replay at a time
	closeOnce sync.Once
	closeErr  error

	mu      sync.Mutex
	next    map[int32]int64 // the offset after the last record indexed
	changed chan struct{}   // closed and replaced after each indexed batch
	nudge   chan struct{}   // asks Run to look for new partitions
}

// Buckets: offsets (partition → next offset), integrations (one bucket per
// integration: e = ID → DeadLetter, o = Seq → ID, and the reject count),
// unattributed (records naming no integration, partition/offset → why).
var (
	bOffsets      = []byte("offsets")
	bIntegrations = []byte("integrations")
	bUnattributed = []byte("unattributed")
	bEntries      = []byte("e")
	bOrder        = []byte("o")
	kRejects      = []byte("nrej")
)

// OpenDLQIndex opens (creating it) the index at opts.Path and connects
// its producer. Run reads dlq-events into it.
func OpenDLQIndex(opts DLQIndexOptions) (*DLQIndex, error) {
	if opts.Path == "" {
		return nil, errors.New("kafka: dlq index: no path")
	}
	if opts.MaxRejects <= 0 {
		opts.MaxRejects = 10_000
	}
	if opts.Retention <= 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("kafka: dlq index %s: in use by another process", opts.Path)
		}
		return nil, fmt.Errorf("kafka: dlq index: %w", err)
	}
	x := &DLQIndex{opts: opts, db: db, next: map[int32]int64{}, changed: make(chan struct{}), nudge: make(chan struct{}, 1)}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bOffsets, bIntegrations, bUnattributed} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bOffsets).ForEach(func(k, v []byte) error {
			if len(k) != 4 || len(v) != 8 {
				return fmt.Errorf("offsets: a damaged entry (%d, %d bytes)", len(k), len(v))
			}
			x.next[int32(binary.BigEndian.Uint32(k))] = int64(binary.BigEndian.Uint64(v))
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("kafka: dlq index %s: %w", opts.Path, err)
	}
	if x.cl, err = opts.Config.client(); err != nil {
		db.Close()
		return nil, fmt.Errorf("kafka: dlq index: %w", err)
	}
	return x, nil
}

// Close disconnects and closes the file (once: later calls return the
// first's error). Stop Run first; a call made after Close fails.
func (x *DLQIndex) Close() error {
	x.closeOnce.Do(func() {
		x.cl.Close()
		x.closeErr = x.db.Close()
	})
	return x.closeErr
}

// Run reads dlq-events into the index until ctx is done: every partition,
// from the offset after the last record indexed (the start, the first
// time), new partitions looked for every 30 s and on Sync. A batch that
// cannot be written stops Run with the error, nothing of it recorded:
// restarted, it reads the batch again.
func (x *DLQIndex) Run(ctx context.Context) error {
	cl, err := x.opts.Config.client(kgo.FetchMaxWait(250 * time.Millisecond))
	if err != nil {
		return fmt.Errorf("kafka: dlq index: %w", err)
	}
	defer cl.Close()
	consuming := map[int32]bool{}
	if err := x.addPartitions(ctx, cl, consuming); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := x.purge(); err != nil {
		x.opts.Logger.Error("dlq index: replayed dead letters not purged", "error", err.Error())
	}
	checked, purged := time.Now(), time.Now()
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) {
				x.opts.Logger.Warn("dlq index: fetch error", "topic", e.Topic, "partition", e.Partition, "error", e.Err)
			}
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) > 0 {
			if err := x.index(recs); err != nil {
				return fmt.Errorf("kafka: dlq index: %w", err)
			}
		}
		look := time.Since(checked) > 30*time.Second
		select {
		case <-x.nudge:
			look = true
		default:
		}
		if look {
			if err := x.addPartitions(ctx, cl, consuming); err != nil && ctx.Err() == nil {
				x.opts.Logger.Warn("dlq index: partitions not listed", "error", err.Error())
			}
			checked = time.Now()
		}
		if time.Since(purged) > time.Hour {
			if err := x.purge(); err != nil {
				x.opts.Logger.Error("dlq index: replayed dead letters not purged", "error", err.Error())
			}
			purged = time.Now()
		}
	}
}

// addPartitions starts consuming the partitions of dlq-events not yet
// consumed, each from the offset after its last indexed record.
func (x *DLQIndex) addPartitions(ctx context.Context, cl *kgo.Client, consuming map[int32]bool) error {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(lctx, DLQEvents)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("kafka: dlq index: list %s: %w", DLQEvents, err)
	}
	add := map[int32]kgo.Offset{}
	x.mu.Lock()
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic != DLQEvents || consuming[o.Partition] {
			return
		}
		consuming[o.Partition] = true
		if n, ok := x.next[o.Partition]; ok {
			add[o.Partition] = kgo.NewOffset().At(n)
		} else {
			add[o.Partition] = kgo.NewOffset().AtStart()
		}
	})
	x.mu.Unlock()
	if len(add) > 0 {
		cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{DLQEvents: add})
	}
	return nil
}

// Sync waits until the index has read dlq-events up to its end as of now:
// every dead letter produced before the call is then in it. ErrUnavailable
// when Kafka does not answer or ctx ends first.
func (x *DLQIndex) Sync(ctx context.Context) error {
	ends, err := kadm.NewClient(x.cl).ListEndOffsets(ctx, DLQEvents)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return fmt.Errorf("%w: list the end of %s: %v", ErrUnavailable, DLQEvents, err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Topic == DLQEvents {
			want[o.Partition] = o.Offset
		}
	})
	select {
	case x.nudge <- struct{}{}: // a partition new to Run is looked for
	default:
	}
	return x.waitFor(ctx, want)
}

func (x *DLQIndex) waitFor(ctx context.Context, want map[int32]int64) error {
	for {
		x.mu.Lock()
		behind := false
		for p, o := range want {
			if o > 0 && x.next[p] < o {
				behind = true
				break
			}
		}
		ch := x.changed
		x.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: the dead-letter index has not read %s to its end: %v", ErrUnavailable, DLQEvents, ctx.Err())
		}
	}
}

// maxIDLen bounds the integration and item IDs the index keys by.
const maxIDLen = 256

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// index writes a poll's records and the offsets after them in one
// transaction.
func (x *DLQIndex) index(recs []*kgo.Record) error {
	next := map[int32]int64{}
	var unreadable []DeadLetter
	err := x.db.Update(func(tx *bolt.Tx) error {
		unreadable = unreadable[:0]
		for _, r := range recs {
			dl := x.parse(r)
			if dl.Unreadable != "" {
				unreadable = append(unreadable, dl)
			}
			if err := x.put(tx, dl); err != nil {
				return err
			}
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		}
		ob := tx.Bucket(bOffsets)
		for p, n := range next {
			if err := ob.Put(binary.BigEndian.AppendUint32(nil, uint32(p)), binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, dl := range unreadable {
		if dl.IntegrationID == "" {
			x.opts.Logger.Error("dlq index: a dlq-events record names no integration: it cannot be listed (kept in the index's unattributed bucket)",
				"partition", dl.Partition, "offset", dl.Offset, "reason", dl.Unreadable)
			continue
		}
		x.opts.Logger.Error("dlq index: unreadable dead letter, listed with its reason", "integration", dl.IntegrationID, "id", dl.ID,
			"partition", dl.Partition, "offset", dl.Offset, "reason", dl.Unreadable)
	}
	x.mu.Lock()
	for p, n := range next {
		x.next[p] = max(x.next[p], n)
	}
	close(x.changed)
	x.changed = make(chan struct{})
	x.mu.Unlock()
	return nil
}

// parse reads a dlq-events record: a DeadRecord ("kind":"delivery") or a
// delivery.RejectRecord (no kind). One that cannot be read is a dead
// letter all the same, with the reason in Unreadable.
func (x *DLQIndex) parse(r *kgo.Record) DeadLetter {
	at := r.Timestamp.UTC()
	dl := DeadLetter{Kind: KindReject, Fields: []string{}, Key: r.Key, Partition: r.Partition, Offset: r.Offset, Records: 1, FirstAt: at, At: at}
	v := r.Value
	if g := gjson.GetBytes(v, "integration_id"); g.Type == gjson.String && len(g.Str) <= maxIDLen {
		// (A longer one is no integration's, and would not fit a bbolt key:
		// the record is unattributed rather than stopping the index.)
		dl.IntegrationID = g.Str
	}
	kind := gjson.GetBytes(v, "kind")
	if kind.Str == KindDelivery || gjson.GetBytes(v, "item_id").Exists() {
		dl.Kind = KindDelivery
	}
	unreadable := func(why string) DeadLetter {
		id := fmt.Sprintf("dlq_%d_%d", r.Partition, r.Offset)
		if dl.Kind == KindReject {
			id = fmt.Sprintf("%s%d_%d", RejectIDPrefix, r.Partition, r.Offset)
		}
		return DeadLetter{ID: id, Kind: dl.Kind, IntegrationID: dl.IntegrationID, Error: ErrorUnreadable, Fields: []string{},
			Details:    fmt.Sprintf("the record at %s partition %d offset %d could not be read (%s); it cannot be replayed, and it stays on the topic", DLQEvents, r.Partition, r.Offset, why),
			Unreadable: why, Key: r.Key, Partition: r.Partition, Offset: r.Offset, Records: 1, FirstAt: at, At: at}
	}
	switch {
	case !json.Valid(v):
		return unreadable("not JSON")
	case kind.Exists() && kind.Str != KindDelivery && kind.Str != KindReject:
		return unreadable(fmt.Sprintf("unknown kind %s", kind.Raw))
	case dl.IntegrationID == "":
		return unreadable("no integration_id")
	}
	if dl.Kind == KindDelivery {
		var dr DeadRecord
		if err := json.Unmarshal(v, &dr); err != nil {
			return unreadable(err.Error())
		}
		if dr.ItemID == "" || len(dr.ItemID) > maxIDLen || strings.HasPrefix(dr.ItemID, RejectIDPrefix) {
			return unreadable(fmt.Sprintf("item_id %q is not an item ID", dr.ItemID))
		}
		dl.ID, dl.Error, dl.Details, dl.OriginalEvent = dr.ItemID, dr.Error, dr.Details, dr.OriginalEvent
		dl.Request, dl.Status, dl.Attempts = dr.Request, dr.Status, dr.Attempts
		dl.MessageID = messageID(dr.OriginalEvent)
		if dr.Fields != nil {
			dl.Fields = dr.Fields
		}
	} else {
		var rr delivery.RejectRecord
		if err := json.Unmarshal(v, &rr); err != nil {
			return unreadable(err.Error())
		}
		dl.ID = rejectID(dl.IntegrationID, rr.OriginalEvent, r)
		dl.Error, dl.Details, dl.OriginalEvent = rr.Error, rr.Details, rr.OriginalEvent
		if rr.Fields != nil {
			dl.Fields = rr.Fields
		}
	}
	if len(dl.OriginalEvent) > 0 && x.opts.Scrub != nil {
		dl.OriginalEvent = x.opts.Scrub(dl.IntegrationID, dl.OriginalEvent)
		if !json.Valid(dl.OriginalEvent) {
			dl.OriginalEvent, _ = json.Marshal(string(dl.OriginalEvent))
		}
	}
	return dl
}

// put stores dl: a dead delivery replaces the entry of its item (it died
// again: listed again); a reject is a new entry, the integration's oldest
// rejects dropped beyond MaxRejects.
func (x *DLQIndex) put(tx *bolt.Tx, dl DeadLetter) error {
	if dl.IntegrationID == "" {
		// Not listable under any integration: kept here and logged.
		why, _ := json.Marshal(map[string]any{"reason": dl.Unreadable, "at": dl.At})
		return tx.Bucket(bUnattributed).Put(fmt.Appendf(nil, "%d/%d", dl.Partition, dl.Offset), why)
	}
	ib, err := tx.Bucket(bIntegrations).CreateBucketIfNotExists([]byte(dl.IntegrationID))
	if err != nil {
		return err
	}
	e, err := ib.CreateBucketIfNotExists(bEntries)
	if err != nil {
		return err
	}
	o, err := ib.CreateBucketIfNotExists(bOrder)
	if err != nil {
		return err
	}
	seq, err := ib.NextSequence()
	if err != nil {
		return err
	}
	dl.Seq = seq
	rejects := count(ib)
	if old, ok, err := getEntry(e, dl.ID); err != nil {
		return err
	} else if ok {
		if err := o.Delete(seqKey(old.Seq)); err != nil {
			return err
		}
		if dl.Kind == KindDelivery && old.Kind == KindDelivery {
			dl.FirstAt, dl.Records = old.FirstAt, old.Records+1
		}
		if old.Kind == KindReject {
			rejects--
		}
	}
	if err := putEntry(e, dl); err != nil {
		return err
	}
	if err := o.Put(seqKey(seq), []byte(dl.ID)); err != nil {
		return err
	}
	if dl.Kind == KindReject {
		rejects++
	}
	// The oldest rejects beyond the bound.
	c := o.Cursor()
	for k, v := c.First(); k != nil && rejects > x.opts.MaxRejects; {
		old, ok, err := getEntry(e, string(v))
		if err != nil {
			return err
		}
		if !ok || old.Kind != KindReject {
			k, v = c.Next()
			continue
		}
		k = slices.Clone(k) // the page under k changes with the deletes
		if err := e.Delete(v); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
		rejects--
		k, v = c.Seek(k)
	}
	return ib.Put(kRejects, strconv.AppendInt(nil, int64(rejects), 10))
}

func count(ib *bolt.Bucket) int {
	n, _ := strconv.Atoi(string(ib.Get(kRejects)))
	return n
}

func getEntry(e *bolt.Bucket, id string) (DeadLetter, bool, error) {
	v := e.Get([]byte(id))
	if v == nil {
		return DeadLetter{}, false, nil
	}
	var dl DeadLetter
	if err := json.Unmarshal(v, &dl); err != nil {
		return DeadLetter{}, false, fmt.Errorf("dead letter %s: a damaged entry: %w", id, err)
	}
	return dl, true, nil
}

func putEntry(e *bolt.Bucket, dl DeadLetter) error {
	v, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	return e.Put([]byte(dl.ID), v)
}

// deleteEntry removes an entry (and its order key, and counts a reject).
func deleteEntry(ib *bolt.Bucket, dl DeadLetter) error {
	if err := ib.Bucket(bEntries).Delete([]byte(dl.ID)); err != nil {
		return err
	}
	if err := ib.Bucket(bOrder).Delete(seqKey(dl.Seq)); err != nil {
		return err
	}
	if dl.Kind == KindReject {
		return ib.Put(kRejects, strconv.AppendInt(nil, int64(max(count(ib)-1, 0)), 10))
	}
	return nil
}

// List returns the integration's dead letters that are not replayed: dead
// deliveries, the one that died longest ago first, then rejects, newest
// first (the order of the embedded service's view).
func (x *DLQIndex) List(integrationID string) ([]DeadLetter, error) {
	var dels, rejs []DeadLetter
	err := x.db.View(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bIntegrations).Bucket([]byte(integrationID))
		if ib == nil {
			return nil
		}
		e := ib.Bucket(bEntries)
		return ib.Bucket(bOrder).ForEach(func(_, id []byte) error {
			dl, ok, err := getEntry(e, string(id))
			switch {
			case err != nil:
				return err
			case !ok || !dl.ReplayedAt.IsZero():
			case dl.Kind == KindDelivery:
				dels = append(dels, dl)
			default:
				rejs = append(rejs, dl)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("kafka: dlq index: %w", err)
	}
	slices.Reverse(rejs)
	return append(dels, rejs...), nil
}

// DeadDeliveries counts the dead deliveries not replayed, of every
// integration: the dead-letter depth that /metrics reports. It reads each
// listed entry, so it costs what List costs for all integrations.
func (x *DLQIndex) DeadDeliveries() (int, error) {
	n := 0
	err := x.db.View(func(tx *bolt.Tx) error {
		all := tx.Bucket(bIntegrations)
		if all == nil {
			return nil
		}
		return all.ForEachBucket(func(k []byte) error {
			ib := all.Bucket(k)
			e := ib.Bucket(bEntries)
			return ib.Bucket(bOrder).ForEach(func(_, id []byte) error {
				dl, ok, err := getEntry(e, string(id))
				if err == nil && ok && dl.ReplayedAt.IsZero() && dl.Kind == KindDelivery {
					n++
				}
				return err
			})
		})
	})
	if err != nil {
		return 0, fmt.Errorf("kafka: dlq index: %w", err)
	}
	return n, nil
}

// Get returns one dead letter of the integration that is not replayed,
// else ErrNotFound.
func (x *DLQIndex) Get(integrationID, id string) (DeadLetter, error) {
	dl, ok, err := x.lookup(integrationID, id)
	switch {
	case err != nil:
		return DeadLetter{}, err
	case !ok || !dl.ReplayedAt.IsZero():
		return DeadLetter{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return dl, nil
}

func (x *DLQIndex) lookup(integrationID, id string) (dl DeadLetter, ok bool, err error) {
	err = x.db.View(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bIntegrations).Bucket([]byte(integrationID))
		if ib == nil {
			return nil
		}
		dl, ok, err = getEntry(ib.Bucket(bEntries), id)
		return err
	})
	if err != nil {
		return DeadLetter{}, false, fmt.Errorf("kafka: dlq index: %w", err)
	}
	return dl, ok, nil
}

// Forget drops every dead letter of an integration (deleted: its dead
// letters can no longer be listed or replayed; its records stay on the
// topic).
func (x *DLQIndex) Forget(integrationID string) error {
	err := x.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bIntegrations).DeleteBucket([]byte(integrationID))
		if errors.Is(err, bolt.ErrBucketNotFound) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("kafka: dlq index: %w", err)
	}
	return nil
}

// purge forgets dead deliveries replayed longer than Retention ago.
func (x *DLQIndex) purge() error {
	before := x.opts.Now().Add(-x.opts.Retention)
	return x.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bIntegrations).ForEachBucket(func(name []byte) error {
			ib := tx.Bucket(bIntegrations).Bucket(name)
			e := ib.Bucket(bEntries)
			if e == nil {
				return nil
			}
			var old []DeadLetter
			if err := e.ForEach(func(k, v []byte) error {
				var dl DeadLetter
				if err := json.Unmarshal(v, &dl); err == nil && !dl.ReplayedAt.IsZero() && dl.ReplayedAt.Before(before) {
					old = append(old, dl)
				}
				return nil
			}); err != nil {
				return err
			}
			for _, dl := range old {
				if err := deleteEntry(ib, dl); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// ReplayResult says what Replay did.
type ReplayResult struct {
	// Replayed counts the dead deliveries produced again and the rejects
	// evaluated again.
	Replayed int
	// Decisions are the rejects' new decisions (deliver, skip, or reject
	// again), once their records are acknowledged.
	Decisions []delivery.Decision
}

// Replay re-drives dead letters of the integration bound as b: ids nil
// means every one that is listed. It first catches up with dlq-events
// (Sync), so that every dead letter produced before it is known.
//
//   - A dead delivery is produced again to delivery-{id} as a
//     DeliveryRecord with attempts 0, the same item ID, and its event: the
//     deliverer rebuilds the request with the integration's revision
//     current then (a corrected key applies), and a vendor that dedups by
//     the request's identity sees the same one.
//   - A reject is evaluated again for this integration alone with b (as
//     the processor would, Evaluate): its requests go to delivery-{id},
//     or it is a reject on dlq-events again (the same ID, rejectID: listed
//     again), or a skip.
//
// Once the records are acknowledged, the dead deliveries are marked
// replayed (no longer listed; listed again if they die again) and the
// rejects dropped; Replay then waits (a few seconds at most) for the index
// to read the rejects it produced, so that a reject answered again is
// listed when it returns. A named dead delivery that is not one of the
// integration's, and a named reject that is not listed (one already
// replayed is no longer), is a *NotFoundError naming every such ID
// (ErrNotFound) and nothing is replayed; a dead delivery already
// replayed, a dead letter that could not be read and one whose event was
// not kept (too large) are passed over, as the embedded service does.
func (x *DLQIndex) Replay(ctx context.Context, b delivery.Binding, ids []string, now time.Time) (ReplayResult, error) {
	var res ReplayResult
	if b.Integration == nil || b.Name == "" {
		return res, errors.New("kafka: dlq replay: no binding")
	}
	x.replayMu.Lock()
	defer x.replayMu.Unlock()
	if err := x.Sync(ctx); err != nil {
		return res, err
	}
	id := b.Name
	var deads, rejects []DeadLetter
	if ids == nil {
		all, err := x.List(id)
		if err != nil {
			return res, err
		}
		for _, dl := range all {
			if dl.Kind == KindDelivery {
				deads = append(deads, dl)
			} else {
				rejects = append(rejects, dl)
			}
		}
	}
	var missing []string
	for _, name := range slices.Compact(slices.Sorted(slices.Values(ids))) {
		dl, ok, err := x.lookup(id, name)
		switch {
		case err != nil:
			return res, err
		case !ok:
			missing = append(missing, name)
		case strings.HasPrefix(name, RejectIDPrefix):
			rejects = append(rejects, dl)
		default:
			deads = append(deads, dl)
		}
	}
	if len(missing) > 0 {
		return res, &NotFoundError{IDs: missing}
	}
	var out []*kgo.Record
	var marks, fed []DeadLetter
	for _, dl := range deads {
		if !dl.ReplayedAt.IsZero() || dl.Unreadable != "" || !isObject(dl.OriginalEvent) {
			continue
		}
		v, err := json.Marshal(DeliveryRecord{ID: dl.ID, IntegrationID: id, Blueprint: b.Ref, Variant: b.Integration.Variant(), Request: dl.Request,
			MessageID: b.Integration.Redact(dl.MessageID), Event: dl.OriginalEvent, CreatedAt: now})
		if err != nil {
			return res, fmt.Errorf("kafka: dlq replay: %w", err)
		}
		out = append(out, &kgo.Record{Topic: DeliveryTopic(id), Key: dl.Key, Value: v})
		marks = append(marks, dl)
	}
	for i, dl := range rejects {
		if dl.Unreadable != "" || !isObject(dl.OriginalEvent) {
			continue // not an event that can be evaluated again
		}
		d, rs, err := Evaluate(b, dl.Key, dl.OriginalEvent, now.Add(time.Duration(i)))
		if err != nil {
			return res, err
		}
		out = append(out, rs...)
		res.Decisions = append(res.Decisions, d)
		fed = append(fed, dl)
	}
	if len(out) == 0 {
		return res, nil
	}
	if x.opts.ConfigOffset != nil {
		if at := x.opts.ConfigOffset(); at > 0 {
			h := kgo.RecordHeader{Key: ConfigHeader, Value: strconv.AppendInt(nil, at, 10)}
			for _, r := range out {
				if r.Topic != DLQEvents {
					r.Headers = append(r.Headers, h)
				}
			}
		}
	}
	// Produced first, then marked: records that cannot be produced leave
	// the dead letters listed (produced twice at worst: the same item IDs).
	results := x.cl.ProduceSync(ctx, out...)
	if err := results.FirstErr(); err != nil {
		res.Decisions = nil
		return res, fmt.Errorf("%w: the replay's records were not acknowledged (the dead letters stay listed; replaying them again sends the same item IDs): %v", ErrUnavailable, err)
	}
	replayedAt := x.opts.Now().UTC()
	err := x.db.Update(func(tx *bolt.Tx) error {
		ib := tx.Bucket(bIntegrations).Bucket([]byte(id))
		if ib == nil {
			return nil // forgotten meanwhile (the integration deleted)
		}
		e := ib.Bucket(bEntries)
		for _, dl := range marks {
			cur, ok, err := getEntry(e, dl.ID)
			if err != nil {
				return err
			}
			if !ok || cur.Seq != dl.Seq {
				continue // it died again meanwhile: listed again
			}
			cur.ReplayedAt = replayedAt
			if err := putEntry(e, cur); err != nil {
				return err
			}
		}
		for _, dl := range fed {
			// A reject answered again has the same ID (the same event):
			// if the index has read it already, it stays listed.
			if cur, ok, err := getEntry(e, dl.ID); err != nil {
				return err
			} else if ok && cur.Seq == dl.Seq {
				if err := deleteEntry(ib, dl); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("kafka: dlq replay: produced, but not recorded in the index (the dead letters stay listed): %w", err)
	}
	res.Replayed = len(marks) + len(fed)
	// The rejects answered again, listed before the answer.
	want := map[int32]int64{}
	for _, r := range results {
		if r.Record.Topic == DLQEvents {
			want[r.Record.Partition] = max(want[r.Record.Partition], r.Record.Offset+1)
		}
	}
	if len(want) > 0 {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := x.waitFor(wctx, want); err != nil {
			x.opts.Logger.Warn("dlq replay: the rejects it produced are not indexed yet", "integration", id, "error", err.Error())
		}
	}
	return res, nil
}

func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// messageID is the event's message id, read as send.Items reads it.
// rejectID is the ID of a reject: rej_ and a digest of the integration
// and the event as the record holds it, so that a reject produced again
// (a processor restarted before its commit evaluates the same records
// again) is the same dead letter, as a dead delivery is by its item ID,
// and every process that reads the topic names it alike. A record without
// its event is named by where it is (rej_{partition}_{offset}).
func rejectID(integrationID string, event json.RawMessage, r *kgo.Record) string {
	if len(event) == 0 || string(event) == "null" {
		return fmt.Sprintf("%s%d_%d", RejectIDPrefix, r.Partition, r.Offset)
	}
	h := sha256.New()
	h.Write([]byte(integrationID))
	h.Write([]byte{0})
	h.Write(event)
	return RejectIDPrefix + hex.EncodeToString(h.Sum(nil)[:12])
}

func messageID(event []byte) string {
	m := gjson.GetBytes(event, "message_id")
	if !m.Exists() || m.String() == "" {
		m = gjson.GetBytes(event, "messageId")
	}
	return m.String()
}
