package send

import (
	"cmp"
	"context"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// batcher holds the items of batching requests (runtime.Integration.Batch)
// until their batch is sent: when it holds the policy's MaxEvents items,
// MaxWait after its first item, before the joined body would pass
// MaxBytes, or when Run shuts down. A batch never mixes integrations,
// requests or URLs. Held items stay leased (claimed) and hold no
// concurrency slot; the batch's one attempt settles every item of it the
// same way, each with its own attempt count and retry schedule (so a
// retried item may join another batch next time).
type batcher struct {
	w     *Worker
	ctx   context.Context // attempts' context
	wg    *sync.WaitGroup // Run's in-flight attempts
	freed chan struct{}   // Run's loop: an attempt ended

	mu     sync.Mutex
	open   map[batchKey]*batch
	closed bool // Run is shutting down: items are sent as they come
	// held and heldBytes count the items added and not settled yet (in
	// open batches, or in batches being sent) and their bodies' bytes;
	// maxEvents and maxBytes are the largest policy limits seen. Run
	// claims no more while full says so: held items hold no concurrency
	// slot, and would otherwise be claimed without bound (the whole
	// outbox, when the vendor is slow or many batches are open).
	held, heldBytes     int
	maxEvents, maxBytes int
	sending             int // batches being sent
}

// full reports whether the items held are as many (or as large) as
// Concurrency+1 full batches: one filling, and one per request in
// flight; idle, whether no batch is being sent meanwhile.
func (b *batcher) full() (full, idle bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.w.Concurrency + 1
	return b.held > 0 && (b.held >= mulSat(n, b.maxEvents) || b.heldBytes >= mulSat(n, b.maxBytes)), b.sending == 0
}

// mulSat is n*m for positive n and m, or the largest int past it.
func mulSat(n, m int) int {
	if m > math.MaxInt/n {
		return math.MaxInt
	}
	return n * m
}

// done counts the items of a batch settled.
func (b *batcher) done(bt *batch) {
	b.mu.Lock()
	b.held -= len(bt.items)
	b.heldBytes -= bt.bytes
	b.sending--
	b.mu.Unlock()
}

type batchKey struct {
	integration, method, url string
	shape                    string // runtime.BatchPolicy.Key
}

type batch struct {
	in    *runtime.Integration
	p     runtime.BatchPolicy
	key   batchKey
	items []heldItem
	bytes int
	timer *time.Timer
}

type heldItem struct {
	it  *outbox.Item
	req *runtime.Request
	log *slog.Logger
	seq uint64 // claim order
}

// add holds an item for its batch. It is called from an attempt's
// goroutine, which Run's wait group counts.
func (b *batcher) add(in *runtime.Integration, p runtime.BatchPolicy, h heldItem) {
	req := h.req
	key := batchKey{h.it.Integration, req.Method, req.URL, p.Key}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open == nil {
		b.open = map[batchKey]*batch{}
	}
	b.held++
	b.heldBytes += len(req.Body)
	b.maxEvents = max(b.maxEvents, p.MaxEvents)
	b.maxBytes = max(b.maxBytes, p.MaxBytes)
	bt := b.open[key]
	if bt != nil && bt.bytes+len(req.Body) > p.MaxBytes {
		b.sendLocked(bt) // this item would make the body too large
		bt = nil
	}
	if bt == nil {
		bt = &batch{in: in, p: p, key: key}
		b.open[key] = bt
		if !b.closed {
			bt.timer = time.AfterFunc(p.MaxWait, func() {
				b.mu.Lock()
				defer b.mu.Unlock()
				if b.open[key] == bt { // not sent yet
					b.sendLocked(bt)
				}
			})
		}
	}
	bt.items = append(bt.items, h)
	bt.bytes += len(req.Body)
	if b.closed || len(bt.items) >= p.MaxEvents || bt.bytes >= p.MaxBytes {
		b.sendLocked(bt)
	}
}

// flushAll sends every batch held, now: Run is shutting down. Items that
// arrive later (from attempts still running) are sent as they come.
func (b *batcher) flushAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, bt := range b.open {
		b.sendLocked(bt)
	}
}

// flushOpen sends every batch held now; later items form new batches.
func (b *batcher) flushOpen() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return // flushAll sent them, and Run may be waiting on wg
	}
	for _, bt := range b.open {
		b.sendLocked(bt)
	}
}

// sendLocked takes bt out of the open batches and sends it in its own
// goroutine. b.mu is held.
func (b *batcher) sendLocked(bt *batch) {
	delete(b.open, bt.key)
	if bt.timer != nil {
		bt.timer.Stop()
	}
	// Counted before Run's wait: either Run is not waiting yet, or the
	// attempt adding the item is itself counted.
	b.wg.Add(1)
	b.sending++
	go func() {
		defer func() {
			select {
			case b.freed <- struct{}{}:
			default:
			}
			b.wg.Done()
		}()
		defer b.done(bt)
		b.send(bt)
	}()
}

// send makes the batch's one attempt and settles each of its items.
func (b *batcher) send(bt *batch) {
	w := b.w
	// Queue order: by when each item was enqueued, then as claimed
	// (attempts running side by side may hand them over in another
	// order, and a retried item's due time has jitter).
	slices.SortFunc(bt.items, func(x, y heldItem) int {
		if c := x.it.CreatedAt.Compare(y.it.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	items := bt.items // bt.items stays whole: done counts them
	if w.Consent != nil {
		// An item may have waited up to the batch's max_wait since its
		// consent was checked: asked again right before the attempt.
		kept := make([]heldItem, 0, len(items))
		for _, h := range items {
			if granted, known := w.Consent(b.ctx, h.it); known && !granted {
				w.finish(b.ctx, h.log, h.it, w.Now(), outbox.Skipped, 0, "consent withdrawn before delivery")
				continue
			}
			kept = append(kept, h)
		}
		if items = kept; len(items) == 0 {
			return
		}
	}
	reqs := make([]*runtime.Request, len(items))
	for i, h := range items {
		reqs[i] = h.req
	}
	first := items[0]
	joined, err := bt.in.JoinBatch(reqs, w.Now())
	if err != nil {
		// Cannot happen for requests the runtime built; never lose them:
		// each is sent on its own.
		for _, h := range items {
			b.settle(h, w.Sender.do(b.ctx, bt.in, h.it.Integration, h.it.ID, h.it.MessageID, h.req))
		}
		return
	}
	first.log.Info("sending batch", "events", len(items), "bytes", len(joined.Body))
	a := w.Sender.do(b.ctx, bt.in, first.it.Integration, first.it.ID, first.it.MessageID, joined)
	for _, h := range items {
		b.settle(h, a)
	}
}

func (b *batcher) settle(h heldItem, a Attempt) {
	if a.Err != nil && a.Status == 0 && a.Outcome == runtime.Retry && b.ctx.Err() != nil {
		// Shut down before an answer: not an attempt.
		_ = b.w.Queue.Release(context.WithoutCancel(b.ctx), h.it.ID)
		return
	}
	b.w.settle(b.ctx, h.log, h.it, a)
}
