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
// pages for new writes but never shrinks its file).
//
// Queue is the interface the sender uses; Bolt is the embedded
// implementation (a single file, no server). A distributed log can replace
// it without changing the sender.
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

// Queue is a durable outbox.
type Queue interface {
	// Enqueue stores new items durably (fsync'd) before it returns, in one
	// batch. An item whose ID is already stored, in any state, is left as
	// it is. It returns the stored copy of each item, in order, so the
	// caller sees the state of items known from an earlier run.
	Enqueue(ctx context.Context, items []*Item) ([]*Item, error)
	// Claim returns up to max pending items due at or before now, oldest
	// NextAt first, and leases them to the caller: they are not returned
	// by Claim again until Update stores their outcome. Leases live in
	// memory: a process that restarts (or another process opening the
	// outbox after it) sees every pending item as claimable.
	Claim(ctx context.Context, now time.Time, max int) ([]*Item, error)
	// Update stores the outcome of an attempt (State, Attempts, NextAt,
	// UpdatedAt, LastStatus, LastError) durably and releases the lease.
	// Concurrent Updates are batched into few writes.
	Update(ctx context.Context, item *Item) error
	// Release gives a claimed item back without an attempt (shutdown).
	Release(ctx context.Context, ids ...string) error
	// Get returns one item.
	Get(ctx context.Context, id string) (*Item, error)
	// List returns items in a state, oldest UpdatedAt first, starting after
	// cursor ("" for the start), at most limit; next is the cursor of the
	// following page, "" at the end.
	List(ctx context.Context, state State, cursor string, limit int) (items []*Item, next string, err error)
	// Counts returns how many items are in each state.
	Counts(ctx context.Context) (map[State]int, error)
	// Replay turns dead items back into pending items due now, with
	// Attempts, LastStatus and LastError reset; ids nil means every dead
	// item. It returns how many were replayed; IDs that are not dead are
	// ignored.
	Replay(ctx context.Context, ids []string, now time.Time) (int, error)
	// Purge deletes the items in the given final states (Delivered,
	// Skipped, Dead; none given means Delivered and Skipped) last updated
	// before the given time, and returns how many it deleted. A purged ID
	// is forgotten: enqueueing it again makes a new item, so the time
	// should lie further back than any input may be re-run. Pending items
	// are never purged.
	Purge(ctx context.Context, before time.Time, states ...State) (int, error)
	// Close flushes and closes the outbox.
	Close() error
}
