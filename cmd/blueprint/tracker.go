package main

import (
	"context"
	"sync"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// readerGrace is how long send waits, once delivery is over, for its
// reader to enqueue what it has read.
const readerGrace = 5 * time.Second

// runTracker follows the requests of a send run to their final states, as
// they happen: a request already final when it is enqueued (known from an
// earlier run) counts at once; the others count when the worker stores
// their final state (it tells final, through finalWatch). Only unfinished
// requests are held, by ID, with the number of input lines waiting on each
// (an event twice in the input is one request, counted twice): the set is
// what --max-pending bounds, so memory never grows with the input, and
// purging the outbox during the run cannot lose a count.
type runTracker struct {
	mu                       sync.Mutex
	open                     map[string]int
	delivered, skipped, dead int
	changed                  chan struct{} // a request ended
}

func newRunTracker() *runTracker {
	return &runTracker{open: map[string]int{}, changed: make(chan struct{}, 1)}
}

// add records a batch's lines before it is enqueued, so that a request the
// worker ends at once is never left open.
func (r *runTracker) add(batch []*outbox.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range batch {
		r.open[it.ID]++
	}
}

// unadd takes a batch's lines back out: its enqueue failed.
func (r *runTracker) unadd(batch []*outbox.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range batch {
		if r.open[it.ID]--; r.open[it.ID] <= 0 {
			delete(r.open, it.ID)
		}
	}
}

// stored counts the requests that were final when enqueued, with every
// line waiting on them.
func (r *runTracker) stored(stored []*outbox.Item) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, it := range stored {
		if it.State != outbox.Pending {
			r.end(it.ID, it.State)
		}
	}
}

// final is called when the worker stores a request's final state.
func (r *runTracker) final(id string, state outbox.State) {
	r.mu.Lock()
	r.end(id, state)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *runTracker) end(id string, state outbox.State) {
	n, ok := r.open[id]
	if !ok {
		return // not this run's, or counted already
	}
	delete(r.open, id)
	switch state {
	case outbox.Delivered:
		r.delivered += n
	case outbox.Skipped:
		r.skipped += n
	case outbox.Dead:
		r.dead += n
	}
}

// counts returns the lines counted per final state, and those still
// pending.
func (r *runTracker) counts() (delivered, skipped, dead, pending int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.open {
		pending += n
	}
	return r.delivered, r.skipped, r.dead, pending
}

// wait blocks while n more requests would make more than max unfinished
// (unless none is: a batch larger than max still goes, alone), until ctx
// is done.
func (r *runTracker) wait(ctx context.Context, n, max int) {
	for ctx.Err() == nil {
		r.mu.Lock()
		k := len(r.open)
		r.mu.Unlock()
		if k == 0 || k+n <= max {
			return
		}
		select {
		case <-ctx.Done():
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// finalWatch is the worker's view of the outbox: it tells final when an
// Update stores a final state.
type finalWatch struct {
	outbox.Queue
	final func(id string, state outbox.State)
}

func (w finalWatch) Update(ctx context.Context, it *outbox.Item) error {
	err := w.Queue.Update(ctx, it)
	if err == nil && it.State != outbox.Pending {
		w.final(it.ID, it.State)
	}
	return err
}
