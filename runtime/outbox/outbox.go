// Package outbox is the durable queue between evaluation and delivery.
//
// Accepted work is written to the outbox before the first delivery attempt,
// so that a crash (even kill -9) loses nothing: on restart, pending items
// are claimed and sent again. An item never holds a secret: it keeps the
// raw event (send.Items refuses an event that carries a secret config
// value) and the names of the integration, blueprint and variant, and the
// request is rebuilt from the event and the current config at each
// attempt. Dead letters (items whose attempts ran out, or that failed
// permanently) stay in the outbox until they are replayed or purged.
//
// Final items are kept so that enqueueing the same item again is a no-op;
// Purge deletes those older than a retention window, and Compact gives the
// freed space of a Bolt file back to the file system (bbolt reuses freed
// pages but never shrinks its file).
//
// # Two interfaces
//
// Queue is the delivery contract: what a worker (send.Worker) and a
// pipeline (runtime/delivery) need to drive items to a final state, and
// nothing more: Enqueue (idempotent by ID), Claim (with in-memory leases),
// Update, Release, Purge (retention) and Close.
// None of them looks an item up by ID or lists items by state, so a
// queue built on a log (a Kafka topic per integration, a retry topic, a
// dead-letter topic, and a compacted topic or a key-value store for the
// IDs it has seen) can implement Queue without pretending to be a
// database; such a queue may return 0 from Purge when the log's own
// retention does the work.
//
// Store is a Queue that also keeps its items where an operator can reach
// them: Get, List by state, Counts, Replay of dead letters and Remove (an
// erasure request). The dead-letter commands and API need a Store; the
// worker never does. Bolt and Memory are Stores. A log-based deployment
// keeps a Store for its dead letters beside its Queue.
//
// Bolt also has file tools no interface promises: Compact, Check and
// Salvage (a damaged file), and a quarantine for records that cannot be
// read (see Bolt).
//
// The package queuetest holds the contract tests every Queue and Store
// must pass; Bolt and Memory run them.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// State is where an item is in its life.
type State string

// States. Pending is the only one that is not final.
const (
	Pending   State = "pending"   // waiting for its next attempt
	Delivered State = "delivered" // the vendor accepted it (or already had it)
	Dead      State = "dead"      // a dead letter: attempts ran out, or a permanent failure
	Skipped   State = "skipped"   // dropped on purpose before sending (consent withdrawn)
)

// purgeStates checks the states given to Purge and applies its default.
func purgeStates(states []State) ([]State, error) {
	if len(states) == 0 {
		return []State{Delivered, Skipped}, nil
	}
	out := make([]State, 0, len(states))
	for _, s := range states {
		switch s {
		case Delivered, Skipped, Dead:
		case Pending:
			return nil, errors.New("outbox: purge: pending items are never purged (only delivered, skipped or dead ones)")
		default:
			return nil, fmt.Errorf("outbox: purge: unknown state %q", s)
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// ErrNotFound is returned for an unknown item ID.
var ErrNotFound = errors.New("outbox: no such item")

// Item is one request of one event, on its way to the vendor.
type Item struct {
	// ID is stable: the same request of the same event always has the same
	// ID, so enqueueing it again (a re-run over the same input) is a no-op.
	ID string `json:"id"`
	// Integration names the integration the item belongs to (for the CLI:
	// KEY@VERSION/VARIANT); Blueprint is the catalog ref or file path;
	// Variant is the variant key.
	Integration string `json:"integration"`
	Blueprint   string `json:"blueprint"`
	Variant     string `json:"variant"`
	// Event is the raw event JSON the request is rebuilt from.
	Event []byte `json:"event"`
	// Request is the index of this request among the event's requests.
	Request     int    `json:"request"`
	MessageID   string `json:"message_id,omitempty"`
	VendorEvent string `json:"vendor_event,omitempty"`
	// Method and URL of the request, for inspection (the URL as the
	// blueprint built it, redacted).
	Method string `json:"method,omitempty"`
	URL    string `json:"url,omitempty"`

	State     State     `json:"state"`
	Attempts  int       `json:"attempts"`
	CreatedAt time.Time `json:"created_at"`
	// NextAt is when the next attempt is due (pending items).
	NextAt    time.Time `json:"next_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LastStatus is the HTTP status of the last attempt (0: none, or a
	// network error); LastError says what went wrong, redacted.
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
}

// Queue is the delivery contract of an outbox: what a worker needs to
// drive items to a final state (see the package doc for why it holds no
// look-up or listing). Implementations are safe for concurrent use.
//
// Every method returns ErrClosed after Close, and ctx's error, without
// doing anything, when ctx is already done.
type Queue interface {
	// Enqueue stores new items durably before it returns, in one batch:
	// all of them or none. An item whose ID is already stored, in any
	// state, is left as it is (until Purge forgets it). It returns the
	// stored copy of each item, in order, so the caller sees the state of
	// items known from an earlier run. Missing CreatedAt, NextAt and
	// UpdatedAt default to now and a missing State to Pending; a Delivered
	// item is stored without its Event. The items passed in are not
	// modified.
	Enqueue(ctx context.Context, items []*Item) ([]*Item, error)
	// Claim returns up to max pending items due at or before now (a zero
	// now means the current time), oldest NextAt first, and leases them
	// to the caller: they are not returned by Claim again until Update
	// stores their outcome or Release gives them back. Leases live in
	// memory: a process that restarts (or another process opening the
	// outbox after it) sees every pending item as claimable.
	Claim(ctx context.Context, now time.Time, max int) ([]*Item, error)
	// Update stores the outcome of an attempt (State, Attempts, NextAt,
	// UpdatedAt, LastStatus, LastError) durably over the stored item, and
	// releases the lease; the other fields are kept as stored. A zero
	// UpdatedAt means now, and so does a zero NextAt for a pending item.
	// A Delivered item loses its Event and cannot go back to another
	// state. An unknown ID gives an error matching ErrNotFound.
	Update(ctx context.Context, item *Item) error
	// Release gives claimed items back without an attempt (shutdown).
	// Unknown or unleased IDs are ignored.
	Release(ctx context.Context, ids ...string) error
	// Purge deletes the items in the given final states (Delivered,
	// Skipped, Dead; none given means Delivered and Skipped) last updated
	// before the given time, and returns how many it deleted. A purged ID
	// is forgotten: enqueueing it again makes a new item, so the time
	// should lie further back than any input may be re-run. Pending items
	// are never purged; naming Pending, or an unknown state, is an error.
	Purge(ctx context.Context, before time.Time, states ...State) (int, error)
	// Close flushes and closes the outbox.
	Close() error
}

// Store is a Queue whose items can be looked up, listed, counted,
// replayed and removed: the operator's side of an outbox (the dead-letter
// commands, stats, erasure requests).
type Store interface {
	Queue
	// Get returns one item; an unknown ID gives an error matching
	// ErrNotFound.
	Get(ctx context.Context, id string) (*Item, error)
	// List returns items in a state, oldest UpdatedAt first, starting
	// after cursor ("" for the start), at most limit (DefaultListLimit if
	// limit is not positive); next is the cursor of the following page,
	// "" at the end. A cursor stays valid when the item it ends on changes
	// state or is purged.
	List(ctx context.Context, state State, cursor string, limit int) (items []*Item, next string, err error)
	// Counts returns how many items are in each state; every State is in
	// the map.
	Counts(ctx context.Context) (map[State]int, error)
	// Replay turns dead items back into pending items due at now (a zero
	// now means the current time), with Attempts, LastStatus and
	// LastError reset; ids nil means every dead item, an empty non-nil
	// slice none. It returns how many were replayed; IDs that are not dead
	// are ignored.
	Replay(ctx context.Context, ids []string, now time.Time) (int, error)
	// Remove deletes the items with the given IDs, in any state, leased
	// or not (a later Update of one gives ErrNotFound), and returns how
	// many it deleted; unknown IDs are ignored. A removed ID is forgotten,
	// as a purged one. It is for erasure requests: see the implementation
	// for where the bytes may linger (Bolt: in free pages until Compact).
	Remove(ctx context.Context, ids ...string) (int, error)
}

// Skip tells about a stored record a method passed over because it could
// not be read (see OnSkip).
type Skip struct {
	// ID is the item's ID (the key it is stored under).
	ID string
	// Err says what is wrong with it; it matches ErrCorrupt.
	Err error
	// Quarantined is true once the record was moved out of the way, its
	// bytes kept for salvage (Bolt's quarantine).
	Quarantined bool
}

type skipKey struct{}

// OnSkip returns a context that makes the methods of a queue it is given
// to call fn for every unreadable record they skip, so that a caller can
// say how many were skipped (the methods themselves go on: one bad record
// does not fail a listing, a claim, a replay or a purge). A function that
// an enclosing OnSkip set on ctx is called too, first: a worker that logs
// what it skips does not hide it from the caller that runs the worker. fn
// may be called from several goroutines at once when the context is
// shared.
func OnSkip(ctx context.Context, fn func(Skip)) context.Context {
	if outer, ok := ctx.Value(skipKey{}).(func(Skip)); ok && outer != nil {
		inner := fn
		fn = func(s Skip) {
			outer(s)
			inner(s)
		}
	}
	return context.WithValue(ctx, skipKey{}, fn)
}

// reportSkip calls the OnSkip function of ctx, if any.
func reportSkip(ctx context.Context, s Skip) {
	if fn, ok := ctx.Value(skipKey{}).(func(Skip)); ok && fn != nil {
		fn(s)
	}
}
