package delivery

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"
)

// Batches of Run: events are fed batchEvents at a time, or after
// batchWait when fewer come (a live stream is not held up).
const (
	batchEvents = 256
	batchWait   = 20 * time.Millisecond
	readAhead   = 8 // events read and not yet batched
)

// Run delivers the events of r (NDJSON or one JSON value: see Reader): it
// starts the pipeline, feeds every event read, in batches, waits until
// every request fed is final, closes the pipeline and returns its Summary.
//
// When ctx is done first, Run stops reading, still feeds every event it
// has read (past MaxPending if need be), lets the attempts in flight finish
// within Options.Grace and returns with Summary.Interrupted set and the
// requests left pending in the outbox counted in Summary.Pending. Reading
// is not waited for: a Read blocked on an idle pipe is abandoned (its
// goroutine ends when the Read returns).
//
// The error is the first of: the outbox failing to enqueue (Run goes on
// reading; the events of that batch are not delivered), reading r (what was
// read before is delivered), the worker failing, the Rejects sink failing
// (wrapping ErrRejects). Being interrupted is not an error.
func (p *Pipeline) Run(ctx context.Context, r io.Reader) (Summary, error) {
	if err := p.Start(ctx); err != nil {
		return p.Summary(), err
	}
	enqueueErr, readErr, rejectErr, interrupted := p.feedFrom(ctx, r)
	var runErr error
	if !interrupted {
		if err := p.Drain(ctx); err != nil {
			if ctx.Err() != nil {
				interrupted = true
			} else {
				runErr = err
			}
		}
	}
	if err := p.Close(); err != nil && runErr == nil {
		runErr = err
	}
	s := p.Summary()
	s.Interrupted = interrupted
	for _, err := range []error{enqueueErr, readErr, runErr, rejectErr} {
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// feedFrom feeds the events of r until its end, a read error, or ctx done
// (interrupted). It returns the first error of each kind.
func (p *Pipeline) feedFrom(ctx context.Context, r io.Reader) (enqueueErr, readErr, rejectErr error, interrupted bool) {
	type read struct {
		ev   fed
		err  error
		last bool
	}
	rd := NewReader(r, p.opts.MaxEventSize)
	ch := make(chan read, readAhead)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for {
			ev, size, err := rd.Next()
			var msg read
			switch {
			case err == io.EOF:
				msg.last = true
			case err != nil:
				msg.err, msg.last = err, true
			default:
				msg.ev = fed{data: bytes.Clone(ev), size: size}
			}
			select {
			case ch <- msg:
			case <-quit:
				return
			}
			if msg.last {
				return
			}
		}
	}()

	var batch []fed
	var timer *time.Timer
	flush := func() {
		if timer != nil {
			timer.Stop()
			timer = nil
		}
		if len(batch) == 0 {
			return
		}
		err := p.feed(ctx, batch, true)
		batch = batch[:0]
		switch {
		case err == nil:
		case errors.Is(err, ErrRejects):
			if rejectErr == nil {
				rejectErr = err
			}
		case enqueueErr == nil:
			enqueueErr = err
		}
	}
	size := min(batchEvents, p.opts.MaxPending)
	for {
		var tick <-chan time.Time
		if timer != nil {
			tick = timer.C
		}
		select {
		case msg := <-ch:
			if msg.last {
				flush()
				return enqueueErr, msg.err, rejectErr, false
			}
			if batch = append(batch, msg.ev); len(batch) == 1 {
				timer = time.NewTimer(batchWait)
			}
			if len(batch) >= size {
				flush()
			}
		case <-tick:
			timer = nil
			flush()
		case <-ctx.Done():
			// Interrupted: what was read is fed, the events read ahead too.
			for more := true; more; {
				select {
				case msg := <-ch:
					if msg.last {
						more = false
						break
					}
					batch = append(batch, msg.ev)
				default:
					more = false
				}
			}
			flush()
			return enqueueErr, nil, rejectErr, true
		}
	}
}
