package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// tracker follows the requests a pipeline fed or replayed to their final
// states, as they happen, and counts them. A request already final when it
// is enqueued counts at once: as this pipeline's when it became final after
// the pipeline started (the same event earlier in the input), as "already"
// when before. The others count when the worker stores their final state
// (it tells Final). Only unfinished requests are held, by ID, with the
// number of events waiting on each (an event twice in the input is one
// request, counted twice): the set is what MaxPending bounds, so memory
// never grows with the input, and purging the outbox cannot lose a count.
type tracker struct {
	start time.Time

	mu   sync.Mutex
	open map[string]int
	sum  Summary
	// lost counts the requests the outbox could not read back (see lost):
	// not final, and no longer waited for.
	lost    int64
	changed chan struct{} // a request ended
}

func newTracker(start time.Time) *tracker {
	return &tracker{start: start, open: map[string]int{}, changed: make(chan struct{}, 1)}
}

// add records requests before they are enqueued (or replayed), so that
// one the worker ends at once is never left open.
func (t *tracker) add(items []*outbox.Item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range items {
		t.open[it.ID]++
	}
}

// unadd takes requests back out: their enqueue failed.
func (t *tracker) unadd(items []*outbox.Item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range items {
		if t.open[it.ID]--; t.open[it.ID] <= 0 {
			delete(t.open, it.ID)
		}
	}
	t.signal()
}

// stored counts the requests that were final when enqueued (as stored).
func (t *tracker) stored(stored []*outbox.Item) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range stored {
		if it.State != outbox.Pending {
			t.end(it.ID, it.State, it.UpdatedAt.Before(t.start))
		}
	}
	t.signal()
}

// Attempt implements send.Metrics.
func (t *tracker) Attempt(send.AttemptInfo) {}

// Final implements send.Metrics: the worker stored a final state.
func (t *tracker) Final(f send.FinalInfo) {
	t.mu.Lock()
	t.end(f.Item, f.State, false)
	t.mu.Unlock()
	t.signal()
}

// skipped is the worker's outbox.OnSkip function: a request whose record
// the outbox could not read (moved to Bolt's quarantine) will not reach a
// final state in this pipeline, so it is no longer waited for. It counts
// as pending: it is not final, and the same event fed again is enqueued
// anew.
func (t *tracker) skipped(s outbox.Skip) {
	t.mu.Lock()
	if n, ok := t.open[s.ID]; ok {
		delete(t.open, s.ID)
		t.lost += int64(n)
	}
	t.mu.Unlock()
	t.signal()
}

func (t *tracker) signal() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *tracker) end(id string, state outbox.State, already bool) {
	n, ok := t.open[id]
	if !ok {
		return // not this pipeline's, or counted already
	}
	delete(t.open, id)
	k := int64(n)
	switch {
	case state == outbox.Delivered && already:
		t.sum.AlreadyDelivered += k
	case state == outbox.Skipped && already:
		t.sum.AlreadySkipped += k
	case state == outbox.Dead && already:
		t.sum.AlreadyDead += k
	case state == outbox.Delivered:
		t.sum.Delivered += k
	case state == outbox.Skipped:
		t.sum.Skipped += k
	case state == outbox.Dead:
		t.sum.Dead += k
	}
}

// decided counts an event's evaluation that made no request: a skip or a
// reject.
func (t *tracker) decided(events int64, skipped, rejected int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sum.Events += events
	t.sum.Skipped += skipped
	t.sum.Rejected += rejected
}

// summary returns the counts, and the requests still open.
func (t *tracker) summary() Summary {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sum
	s.Pending = t.lost
	for _, n := range t.open {
		s.Pending += int64(n)
	}
	return s
}

// openCount is how many distinct requests are not final.
func (t *tracker) openCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.open)
}

// wait blocks while n more requests would make more than max unfinished
// (unless none is: a batch larger than max still goes, alone). It returns
// true when there is room, false when ctx is done, or stopped (nobody is
// delivering: no room will come) or closing is closed first.
func (t *tracker) wait(ctx context.Context, n, max int, stopped, closing <-chan struct{}) bool {
	for {
		k := t.openCount()
		if k == 0 || k+n <= max {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-stopped:
			return false
		case <-closing:
			return false
		case <-t.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
