package main

import (
	"fmt"
	"io"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// Batches of the stream: a batch is sent to a worker when it holds
// batchEvents events or batchBytes bytes of them.
const (
	batchEvents = 256
	batchBytes  = 256 << 10
)

// evalBatch is a run of consecutive events and, once evaluated, their
// results as output text.
type evalBatch struct {
	seq    int
	events []byte // the events, one after the other
	ends   []int  // where each event ends in events
	sizes  []int  // each event's size; -size for an event over the limit (not kept)
	out    []byte // the results
}

// maxEvalWorkers caps the workers of evalStream: past it the reader and
// the writer are the bottleneck, and each worker adds batches in flight.
const maxEvalWorkers = 8

// evalStream evaluates the events of r (NDJSON, or one pretty-printed
// event) on every core (at most maxEvalWorkers) and writes one result per
// event to w, in input order: a line of JSON each when asJSON, else the
// text form with a blank line between results. Memory is bounded by the
// batches in flight (two per worker plus two, each of at most batchEvents
// events or batchBytes bytes plus one event, and their results), whatever
// the input's length.
func evalStream(in *runtime.Integration, r io.Reader, w io.Writer, limit int, asJSON bool) error {
	workers := min(goruntime.GOMAXPROCS(0), maxEvalWorkers)
	free := make(chan *evalBatch, 2*workers+2)
	for range cap(free) {
		free <- &evalBatch{}
	}
	work := make(chan *evalBatch, cap(free))
	done := make(chan *evalBatch, cap(free))
	var stop atomic.Bool // the writer failed: read no further

	var readErr error
	go func() {
		defer close(work)
		seq := 0
		cur := <-free
		reset := func(b *evalBatch) {
			b.seq, seq = seq, seq+1
			b.events, b.ends, b.sizes = b.events[:0], b.ends[:0], b.sizes[:0]
		}
		reset(cur)
		rd := delivery.NewReader(r, limit)
		for !stop.Load() {
			ev, size, err := rd.Next()
			if err != nil {
				if err != io.EOF {
					readErr = err
				}
				break
			}
			if ev == nil {
				size = -size
			}
			cur.events = append(cur.events, ev...)
			cur.ends = append(cur.ends, len(cur.events))
			cur.sizes = append(cur.sizes, size)
			if len(cur.ends) == batchEvents || len(cur.events) >= batchBytes {
				work <- cur
				cur = <-free
				reset(cur)
			}
		}
		if len(cur.ends) > 0 {
			work <- cur
		}
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				b.evaluate(in, limit, asJSON)
				done <- b
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	// The writer: batches come back in any order and leave in input order.
	var writeErr error
	pending := map[int]*evalBatch{}
	next := 0
	for b := range done {
		pending[b.seq] = b
		for {
			b, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if writeErr == nil {
				if _, err := w.Write(b.out); err != nil {
					writeErr = fmt.Errorf("writing results: %w", err)
					stop.Store(true)
				}
			}
			if cap(b.events) > 4*batchBytes || cap(b.out) > 4*batchBytes {
				*b = evalBatch{} // a huge event's buffers are not kept
			}
			free <- b
		}
	}
	if writeErr != nil {
		return writeErr
	}
	return readErr // read by the reader before it closed work
}

// evaluate evaluates the batch's events into b.out.
func (b *evalBatch) evaluate(in *runtime.Integration, limit int, asJSON bool) {
	b.out = b.out[:0]
	start := 0
	for i, end := range b.ends {
		var res runtime.Result
		if size := b.sizes[i]; size < 0 {
			res = delivery.TooLarge(-size, limit)
		} else {
			res = in.Evaluate(b.events[start:end])
		}
		start = end
		if !asJSON && (b.seq > 0 || i > 0) {
			b.out = append(b.out, '\n') // a blank line between text results
		}
		b.out = appendResult(b.out, res, asJSON)
	}
}
