package send

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// Policy is the retry schedule of an integration.
type Policy struct {
	// MaxAttempts is the most attempts per item, the first included.
	MaxAttempts int
	// Base, Factor and Cap shape the backoff: before attempt n+1 an item
	// waits min(Cap, Base*Factor^(n-1)), shortened by a random 0 to 20 %
	// (jitter, so that items failed together do not retry together), or
	// the vendor's Retry-After when that is longer.
	Base   time.Duration
	Factor float64
	Cap    time.Duration
	// MaxAge is the retry window: no attempt is scheduled later than
	// MaxAge after the item was created (a longer wait is shortened to
	// end there), and an item failing after it is a dead letter.
	MaxAge time.Duration
	// RetryAfterCap bounds the Retry-After honoured.
	RetryAfterCap time.Duration
}

// DefaultPolicy keeps the platform's promise: up to 5 delivery attempts
// with exponential backoff over 24 hours, then the dead-letter queue.
// Waits of 18 min, 72 min, 4.8 h and 19.2 h (each up to 20 % shorter, the
// last one ending within the 24 h window) put the attempts at about 0,
// 18 min, 1.5 h, 6.3 h and 20.5 to 24 h: a vendor outage of up to about
// 20 hours loses nothing.
var DefaultPolicy = Policy{MaxAttempts: 5, Base: 18 * time.Minute, Factor: 4, Cap: 20 * time.Hour, MaxAge: 24 * time.Hour, RetryAfterCap: 6 * time.Hour}

// jitter is the most a backoff wait is shortened by, at random.
const jitter = 0.2

func (p Policy) withDefaults() Policy {
	d := DefaultPolicy
	if p.MaxAttempts > 0 {
		d.MaxAttempts = p.MaxAttempts
	}
	if p.Base > 0 {
		d.Base = p.Base
	}
	if p.Factor >= 1 {
		d.Factor = p.Factor
	}
	if p.Cap > 0 {
		d.Cap = p.Cap
	}
	if p.MaxAge > 0 {
		d.MaxAge = p.MaxAge
	}
	if p.RetryAfterCap > 0 {
		d.RetryAfterCap = p.RetryAfterCap
	}
	if d.Cap < d.Base {
		d.Cap = d.Base
	}
	return d
}

// Delay is the wait before the attempt after attempt n (1-based), for a
// uniform random u in [0, 1): the bound min(Cap, Base*Factor^(n-1)),
// shortened by u times 20 %.
func (p Policy) Delay(n int, u float64) time.Duration {
	bound := float64(p.Base) * math.Pow(p.Factor, float64(n-1))
	if bound > float64(p.Cap) || math.IsInf(bound, 0) {
		bound = float64(p.Cap)
	}
	return time.Duration((1 - jitter*u) * bound)
}

// Next decides what follows a failed attempt (retry outcome) of a
// request created at created, after attempts attempts, at now: give up
// (its attempts or its retry window are used up), or wait delay before
// the next one. The wait is Delay's, shortened so that the last chance
// lands inside the retry window, unless the vendor asked to wait longer
// (retryAfter, capped by RetryAfterCap). The send.Worker and the Kafka
// deliverer share it, so both keep the same promise.
func (p Policy) Next(attempts int, created, now time.Time, retryAfter time.Duration) (delay time.Duration, giveUp bool) {
	if attempts >= p.MaxAttempts || now.Sub(created) >= p.MaxAge {
		return 0, true
	}
	delay = p.Delay(attempts, rand.Float64())
	if end := created.Add(p.MaxAge).Sub(now); delay > end {
		delay = max(end, 0)
	}
	if ra := min(retryAfter, p.RetryAfterCap); ra > delay {
		delay = ra
	}
	return delay, false
}

// Worker drives the items of an outbox to a final state.
type Worker struct {
	Queue  outbox.Queue
	Sender *Sender
	// Policy is the retry schedule; Policies overrides it per integration
	// name. Zero fields take DefaultPolicy's.
	Policy   Policy
	Policies map[string]Policy
	// Integration returns the integration an item belongs to, bound to the
	// current config (the request is rebuilt from the event at every
	// attempt, so a corrected config applies to items already queued). An
	// item whose integration is unknown is left pending for another run.
	Integration func(item *outbox.Item) (*runtime.Integration, bool)
	// Consent, when set, is asked right before each attempt for fresh
	// consent: known and not granted drops the item (state skipped).
	Consent func(ctx context.Context, item *outbox.Item) (granted, known bool)
	// Concurrency is the most items in flight (default 16).
	Concurrency int
	// Poll is how often due items are looked for (default 100 ms).
	Poll time.Duration
	// Grace is how long in-flight attempts may finish after shutdown
	// (default 10 s).
	Grace  time.Duration
	Logger *slog.Logger
	// Metrics receives each item's final state (Final), with its ID, once
	// it is stored. Attempts (Attempt) are reported by the Sender, through
	// its Options.Metrics: give both the same value to see both.
	Metrics Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Retention, when positive, is how long delivered and skipped items
	// are kept (enqueueing an item again within it is a no-op, after it
	// the item is sent again): Run purges older ones when it starts and
	// every PurgeEvery while it runs. Dead letters are kept until they
	// are replayed or purged by hand. Zero keeps every item, and the
	// outbox grows with every event.
	Retention time.Duration
	// PurgeEvery is how often Run purges when Retention is set (default
	// one hour).
	PurgeEvery time.Duration

	mu      sync.Mutex
	foreign map[string]bool // pending items of other integrations, left alone
	batches *batcher        // items held for a batch, while Run runs
	// flushing: nothing more is fed; batches go out once nothing is due.
	flushing atomic.Bool
}

// Run delivers due items until ctx is done or, when done is set, until
// done reports true: Run asks it whenever no item is due and no attempt is
// in flight, and returns when it says so. Run does not count the outbox's
// pending items: items of other integrations, and retries due later, never
// hold it up. A caller that waits for its own items to be final counts
// their final states through Metrics.Final (the delivery package does, for
// the items it enqueued or replayed), and a caller that wants every
// pending item of its integrations delivered passes nil and cancels ctx.
// After ctx is done Run stops claiming, lets in-flight attempts finish
// within Grace, and leaves everything else in the outbox.
//
// Run fills the Worker's zero fields with their defaults (the caller's
// Policies map is left as it is); do not call it on one Worker from two
// goroutines at once. Items whose integration the Worker does not know
// stay leased to it until Run ends (or ReleaseForeign): give one Queue one
// Worker (its Integration func knowing every integration), or Workers that
// run one after the other.
func (w *Worker) Run(ctx context.Context, done func() bool) error {
	w.defaults()
	// A record the queue cannot read is skipped (Bolt quarantines it),
	// never silently.
	ctx = outbox.OnSkip(ctx, func(s outbox.Skip) {
		w.Logger.Warn("unreadable outbox record skipped", "item", s.ID, "quarantined", s.Quarantined, "error", s.Err.Error())
	})
	// Attempts run under their own context, cancelled only when the grace
	// period after shutdown runs out.
	attemptCtx, cancelAttempts := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelAttempts()
	if w.Retention > 0 {
		stopPurging := w.purgeEvery(ctx)
		defer stopPurging()
	}
	slots := make(chan struct{}, w.Concurrency)
	freed := make(chan struct{}, 1) // a slot came free
	var wg sync.WaitGroup
	var inflight sync.Map
	w.mu.Lock()
	w.batches = &batcher{w: w, ctx: attemptCtx, wg: &wg, freed: freed}
	w.mu.Unlock()
	ticker := time.NewTicker(w.Poll)
	defer ticker.Stop()
	var runErr error
	var seq uint64 // claim order: a batch keeps it
loop:
	for {
		if ctx.Err() != nil {
			break
		}
		free := cap(slots) - len(slots)
		if full, idle := w.batches.full(); full {
			// Enough is held for batches: claim more once one is sent.
			free = 0
			if idle && len(slots) == 0 {
				// Nothing is being sent and nothing more comes: the open
				// batches (many, each short) cannot grow; they go now,
				// not when their waits end.
				w.batches.flushOpen()
			}
		}
		var items []*outbox.Item
		if free > 0 {
			var err error
			items, err = w.Queue.Claim(ctx, w.Now(), free)
			if err != nil && ctx.Err() == nil {
				runErr = err
				break
			}
		}
		for _, it := range items {
			seq++
			slots <- struct{}{}
			wg.Add(1)
			inflight.Store(it.ID, true)
			go func(it *outbox.Item, seq uint64) {
				defer func() {
					<-slots
					inflight.Delete(it.ID)
					select {
					case freed <- struct{}{}:
					default:
					}
					wg.Done()
				}()
				w.process(attemptCtx, it, seq)
			}(it, seq)
		}
		if len(items) == 0 && len(slots) == 0 && w.flushing.Load() {
			// Every due item was claimed and handed over.
			w.batches.flushOpen()
		}
		if len(items) == 0 && done != nil && len(slots) == 0 && done() {
			break loop
		}
		switch {
		case free == 0 || len(items) == free && len(slots) == cap(slots):
			// Busy: claim again as soon as a slot comes free.
			select {
			case <-ctx.Done():
			case <-freed:
			}
		case len(items) < free:
			// Nothing more is due: look again after the poll interval, or
			// when an attempt ends (it may have scheduled a quick retry).
			select {
			case <-ctx.Done():
			case <-ticker.C:
			case <-freed:
			}
		}
	}
	// Shutdown: batches held are sent now, and in-flight attempts may
	// finish within the grace period.
	w.batches.flushAll()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(w.Grace):
		cancelAttempts()
		<-finished
	}
	var ids []string
	inflight.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	w.mu.Lock()
	for id := range w.foreign {
		ids = append(ids, id) // leased while we ran, given back now
	}
	w.foreign = nil
	w.mu.Unlock()
	if len(ids) > 0 {
		_ = w.Queue.Release(context.WithoutCancel(ctx), ids...)
	}
	return runErr
}

// purgeEvery purges final items older than Retention now and every
// PurgeEvery, until ctx is done or stop is called; stop waits for a purge
// under way. A failed purge is logged and tried again next time: delivery
// goes on.
func (w *Worker) purgeEvery(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	purge := func() {
		n, err := w.Queue.Purge(ctx, w.Now().Add(-w.Retention))
		switch {
		case err != nil && ctx.Err() == nil:
			w.Logger.Warn("purge of old outbox items failed", "error", err, "purged", n)
		case n > 0:
			w.Logger.Info("purged old outbox items", "purged", n, "retention", w.Retention)
		}
	}
	purge()
	go func() {
		defer close(done)
		t := time.NewTicker(w.PurgeEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				purge()
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (w *Worker) defaults() {
	w.Policy = w.Policy.withDefaults()
	ps := make(map[string]Policy, len(w.Policies)) // the caller's map is left as it is
	for k, p := range w.Policies {
		ps[k] = p.withDefaults()
	}
	w.Policies = ps
	if w.Concurrency <= 0 {
		w.Concurrency = 16
	}
	if w.Poll <= 0 {
		w.Poll = 100 * time.Millisecond
	}
	if w.Grace <= 0 {
		w.Grace = 10 * time.Second
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if w.Metrics == nil {
		w.Metrics = nopMetrics{}
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.PurgeEvery <= 0 {
		w.PurgeEvery = time.Hour
	}
}

// FlushBatches tells the worker that nothing more is fed (a finite input
// was read to its end, or the service is draining): from now on, a batch
// is sent as soon as no other item is due, without waiting for it to fill
// or for its wait to end.
func (w *Worker) FlushBatches() {
	w.flushing.Store(true)
	w.mu.Lock()
	b := w.batches
	w.mu.Unlock()
	if b != nil {
		b.flushOpen()
	}
}

// ReleaseForeign gives back the items of integrations the Worker did not
// know, which it holds while Run goes on, so that they are claimed again:
// call it once its Integration func knows an integration it did not (a
// service enabling one, say).
func (w *Worker) ReleaseForeign(ctx context.Context) error {
	w.mu.Lock()
	ids := make([]string, 0, len(w.foreign))
	for id := range w.foreign {
		ids = append(ids, id)
	}
	w.foreign = nil
	w.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	return w.Queue.Release(ctx, ids...)
}

// process makes one attempt for an item and stores the outcome.
func (w *Worker) process(ctx context.Context, it *outbox.Item, seq uint64) {
	in, ok := w.Integration(it)
	if !ok {
		// Not ours to send: its lease is kept while this Run goes on (so
		// that it is not claimed again and again, ahead of our own items)
		// and released when Run ends, for whoever sends it.
		w.mu.Lock()
		if w.foreign == nil {
			w.foreign = map[string]bool{}
		}
		w.foreign[it.ID] = true
		w.mu.Unlock()
		return
	}
	log := w.Logger.With("integration", it.Integration, "item", it.ID, "message_id", LogText(it.MessageID), "vendor_event", LogText(it.VendorEvent))
	now := w.Now()
	res := in.Evaluate(it.Event)
	if res.Outcome != runtime.Deliver || it.Request >= len(res.Requests) {
		state, msg := outbox.Dead, fmt.Sprintf("no longer deliverable: %s %s: %s", res.Outcome, res.Reason, res.Message)
		if res.Reason == runtime.ReasonConsentDenied {
			state = outbox.Skipped
		}
		w.finish(ctx, log, it, now, state, 0, msg)
		return
	}
	if w.Consent != nil {
		if granted, known := w.Consent(ctx, it); known && !granted {
			w.finish(ctx, log, it, now, outbox.Skipped, 0, "consent withdrawn before delivery")
			return
		}
	}
	req := res.Requests[it.Request]
	if p, ok := in.Batch(req); ok && w.batches != nil {
		// Held, still leased, until its batch is sent (batch.go).
		w.batches.add(in, p, heldItem{it, req, log, seq})
		return
	}
	a := w.Sender.do(ctx, in, it.Integration, it.ID, it.MessageID, req)
	if a.Err != nil && a.Status == 0 && a.Outcome == runtime.Retry && ctx.Err() != nil {
		// Shut down before an answer: not an attempt; the item stays
		// pending for the next run.
		_ = w.Queue.Release(context.WithoutCancel(ctx), it.ID)
		return
	}
	w.settle(ctx, log, it, a)
}

// settle stores the outcome of an attempt of it: delivered, a dead
// letter, or pending again with its next attempt scheduled.
func (w *Worker) settle(ctx context.Context, log *slog.Logger, it *outbox.Item, a Attempt) {
	it.Attempts++
	now := w.Now()
	attrs := []any{"attempt", it.Attempts, "status", a.Status, "latency_ms", a.Latency.Milliseconds(), "outcome", string(a.Outcome)}
	switch {
	case a.Delivered():
		log.Info("delivered", attrs...)
		w.finish(ctx, log, it, now, outbox.Delivered, a.Status, a.Message)
	case a.Outcome == runtime.Failed:
		log.Warn("failed permanently", append(attrs, "error", a.Message)...)
		w.finish(ctx, log, it, now, outbox.Dead, a.Status, a.Message)
	default:
		policy := w.Policy
		if p, ok := w.Policies[it.Integration]; ok {
			policy = p
		}
		delay, giveUp := policy.Next(it.Attempts, it.CreatedAt, now, a.RetryAfter)
		if giveUp {
			msg := fmt.Sprintf("gave up after %d attempts: %s", it.Attempts, a.Message)
			log.Warn("dead letter", append(attrs, "error", a.Message)...)
			w.finish(ctx, log, it, now, outbox.Dead, a.Status, msg)
			return
		}
		log.Info("retrying", append(attrs, "error", a.Message, "retry_in_ms", delay.Milliseconds())...)
		it.State = outbox.Pending
		it.NextAt = now.Add(delay)
		it.UpdatedAt = now
		it.LastStatus = a.Status
		it.LastError = a.Message
		if err := w.Queue.Update(context.WithoutCancel(ctx), it); err != nil {
			log.Error("outbox update failed", "error", err.Error())
		}
	}
}

func (w *Worker) finish(ctx context.Context, log *slog.Logger, it *outbox.Item, now time.Time, state outbox.State, status int, msg string) {
	it.State = state
	it.UpdatedAt = now
	it.LastStatus = status
	if state == outbox.Delivered {
		it.LastError = ""
	} else {
		it.LastError = msg
	}
	if err := w.Queue.Update(context.WithoutCancel(ctx), it); err != nil {
		log.Error("outbox update failed", "error", err.Error())
		return
	}
	if state == outbox.Skipped {
		// The platform's promise: a consent drop is logged (at warn, the
		// CLI's default level, so that it is seen).
		log.Warn("dropped", "reason", msg)
	}
	w.Metrics.Final(FinalInfo{Item: it.ID, Integration: it.Integration, State: state, Attempts: it.Attempts,
		Status: it.LastStatus, Message: it.LastError, MessageID: it.MessageID, VendorEvent: it.VendorEvent, At: now})
}

// WithDefaults is the policy with its zero fields filled from
// DefaultPolicy, as a Worker uses it: for deliverers that drive retries
// themselves (the Kafka deliverer keeps the same schedule).
func (p Policy) WithDefaults() Policy { return p.withDefaults() }

// maxLogText bounds event text in a log line, in bytes.
const maxLogText = 200

// LogText is event text (a message ID, a vendor event) as a log line
// shows it: cut to 200 bytes, "..." marking the cut. An event's messageId
// may be as long as the event (a megabyte), and every attempt logs it.
func LogText(s string) string {
	if len(s) <= maxLogText {
		return s
	}
	n := maxLogText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
