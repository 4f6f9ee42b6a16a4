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

// inflight is the set of a send run's requests that are in the outbox and
// not final yet. Its size bounds how far reading runs ahead of delivery
// (--max-pending); a set, so that an event repeated in the input is one
// request, as in the outbox.
type inflight struct {
	mu      sync.Mutex
	ids     map[string]struct{}
	changed chan struct{} // a request ended
}

func newInflight() *inflight {
	return &inflight{ids: map[string]struct{}{}, changed: make(chan struct{}, 1)}
}

// add records a batch before it is enqueued (so that a request the worker
// ends at once is never left in the set).
func (f *inflight) add(batch []*outbox.Item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range batch {
		f.ids[it.ID] = struct{}{}
	}
}

// remove takes a batch out (its enqueue failed).
func (f *inflight) remove(batch []*outbox.Item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range batch {
		delete(f.ids, it.ID)
	}
}

// removeFinal takes out the stored requests that were already final when
// enqueued (known from an earlier run, or ended meanwhile).
func (f *inflight) removeFinal(stored []*outbox.Item) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range stored {
		if it.State != outbox.Pending {
			delete(f.ids, it.ID)
		}
	}
}

// done is called when the worker stores a request's final state.
func (f *inflight) done(id string) {
	f.mu.Lock()
	delete(f.ids, id)
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *inflight) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

// wait blocks while n more requests would make more than max in flight
// (unless none is: a batch larger than max still goes, alone), until ctx
// is done.
func (f *inflight) wait(ctx context.Context, n, max int) {
	for ctx.Err() == nil {
		if k := f.len(); k == 0 || k+n <= max {
			return
		}
		select {
		case <-ctx.Done():
		case <-f.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// finalWatch is the worker's view of the outbox: it tells final when an
// Update stores a final state.
type finalWatch struct {
	outbox.Queue
	final func(id string)
}

func (w finalWatch) Update(ctx context.Context, it *outbox.Item) error {
	err := w.Queue.Update(ctx, it)
	if err == nil && it.State != outbox.Pending {
		w.final(it.ID)
	}
	return err
}
