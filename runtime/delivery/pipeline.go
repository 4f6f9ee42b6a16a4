package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// DefaultMaxPending is Options.MaxPending's default: seconds of work at
// loopback speed, a few MB of outbox.
const DefaultMaxPending = 10_000

// ErrClosed is returned by Feed and Replay once the pipeline is draining
// or closed (a Feed waiting for room when Close is called too), and by
// Start when it was started before.
var ErrClosed = errors.New("delivery: pipeline closed")

var errNotStarted = errors.New("delivery: the pipeline is not started")

// ErrRejects wraps the error of Options.Rejects: the rejected event was
// counted and logged, but the sink did not take it.
var ErrRejects = errors.New("rejects")

// Binding is one integration the pipeline delivers to.
type Binding struct {
	// Name names the integration in the outbox: its items carry it, and
	// the worker finds an item's integration by it. Keep it stable across
	// runs and config changes (the CLI uses KEY@VERSION/VARIANT; a service
	// its integration ID), or items queued before are left pending.
	Name string
	// Ref is the blueprint the integration was compiled from (a catalog
	// ref or a file), recorded in its items for inspection.
	Ref string
	// Sources, when set, narrows the events the integration receives to
	// those fed from these sources (FeedFrom); nil receives every event.
	Sources []string
	// Integration is the blueprint bound to a variant and a checked config.
	// Items are rebuilt from their events with it at every attempt, so a
	// corrected config applies to items already queued.
	Integration *runtime.Integration
}

// Options configure a Pipeline. Zero values take the defaults.
type Options struct {
	// Sender configures the HTTP sender; its Metrics is replaced by
	// Metrics, a zero Concurrency takes Concurrency and a nil Logger
	// takes Logger.
	Sender send.Options
	// Policy is the retry schedule (zero fields: send.DefaultPolicy's).
	Policy send.Policy
	// Concurrency is the most requests in flight (default 16).
	Concurrency int
	// MaxPending is the most requests fed and not yet final: Feed waits
	// beyond it (default DefaultMaxPending).
	MaxPending int
	// MaxEventSize is the largest event Run reads (default
	// runtime.DefaultMaxEventSize); give the integrations the same limit.
	MaxEventSize int
	// Retention, when positive, is how long delivered and skipped requests
	// are kept (the same event fed again within it is not sent again):
	// Start purges older ones before anything is fed, and the worker every
	// hour while it runs. A failed purge is logged and never stops
	// delivery. Zero keeps everything: the outbox grows with every event.
	Retention time.Duration
	// Consent, when set, is asked right before each attempt for fresh
	// consent: known and not granted drops the request (state skipped).
	Consent func(ctx context.Context, item *outbox.Item) (granted, known bool)
	// Poll is how often due requests are looked for (default 100 ms);
	// Grace how long attempts in flight may finish after Close or an
	// interrupt (default 10 s).
	Poll, Grace time.Duration
	// Logger receives skips (info), consent drops and rejects (warn),
	// every attempt (info) and purges.
	Logger *slog.Logger
	// Metrics receives every attempt and every final state the pipeline's
	// worker stores, with the item's ID: a service exports it and shows it
	// live. It must be fast and safe for concurrent use.
	Metrics send.Metrics
	// OnDecision, when set, is called for each event and integration once
	// its requests are durable (deliver) or its fate decided (skip,
	// reject), in the order of the events, from the goroutine that feeds
	// (not for deliverable events whose enqueue failed: Feed's error).
	OnDecision func(Decision)
	// Rejects, when set, receives every rejected event, in the shape of
	// the platform's dlq-events, secrets redacted.
	Rejects RejectSink
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Decision is what one event became for one integration when it was fed.
type Decision struct {
	// Integration is the binding's Name; In its bound integration (to
	// show a request redacted: In.Redacted).
	Integration string
	In          *runtime.Integration
	// Event is the event as fed (nil when it was too large to keep); valid
	// during the call only. It may hold personal data: In.RedactJSON
	// scrubs the integration's secrets from it.
	Event []byte
	// Result is the evaluation. Its Requests hold secrets: show them only
	// through In.Redacted or Result's own String, AppendJSON or LogValue.
	Result runtime.Result
	// Items are the outbox items of a delivered event, as stored: an item
	// in a final state was known from before (the same event fed again).
	// Do not modify them.
	Items []*outbox.Item
}

// Summary counts what a pipeline's events became. Delivered and Dead count
// requests (an event with two requests counts twice; an event for two
// integrations is counted for each), Skipped and Rejected events per
// integration (plus requests whose consent was withdrawn before delivery,
// in Skipped). An event fed twice is counted twice, though sent once.
type Summary struct {
	// Events is how many events were fed (read, for Run).
	Events int64
	// What this pipeline did.
	Delivered, Skipped, Rejected, Dead int64
	// Requests that were already final when they were fed, from before the
	// pipeline started (the same event sent by an earlier run): not sent
	// again, and not counted above.
	AlreadyDelivered, AlreadySkipped, AlreadyDead int64
	// Pending is how many requests fed or replayed are not final yet,
	// among them any whose record the outbox could not read back (moved
	// to Bolt's quarantine, and no longer waited for: the same event fed
	// again is enqueued anew).
	Pending int64
	// Interrupted is set by Run when its ctx was done before the input
	// was read to its end, or its requests delivered.
	Interrupted bool
}

// String is the summary line of 'blueprint send', exactly
// "N delivered, N skipped, N rejected, N dead-lettered".
func (s Summary) String() string {
	return fmt.Sprintf("%d delivered, %d skipped, %d rejected, %d dead-lettered", s.Delivered, s.Skipped, s.Rejected, s.Dead)
}

// Already is how many requests fed were final from before.
func (s Summary) Already() int64 { return s.AlreadyDelivered + s.AlreadySkipped + s.AlreadyDead }

// Pipeline evaluates events for its integrations, enqueues their requests
// into an outbox and delivers them. Its methods are safe for concurrent
// use. See the package documentation.
type Pipeline struct {
	q        outbox.Queue
	opts     Options
	log      *slog.Logger
	bindings atomic.Pointer[bindingSet]
	worker   *send.Worker
	tr       *tracker

	mu       sync.RWMutex // Feed and Replay hold it to read; state changes to write
	state    pipelineState
	draining atomic.Bool
	stop     context.CancelFunc
	stopped  chan struct{} // closed when the worker has returned
	runErr   error         // the worker's, once stopped is closed
	closing  chan struct{} // closed when Close is called: Feed waits no more
	closeOne sync.Once
}

// bindingSet is the pipeline's integrations, in a list sorted by name
// (the order Feed evaluates them in) and in a map by name (the worker's
// look-up).
type bindingSet struct {
	sorted []*Binding
	byName map[string]*Binding
}

type pipelineState int

const (
	created pipelineState = iota
	started
	draining
	closed
)

// New returns a pipeline over q for the integrations given; it delivers
// once started. q is the caller's to close, after Close.
func New(q outbox.Queue, opts Options, bindings ...Binding) (*Pipeline, error) {
	if q == nil {
		return nil, errors.New("delivery: no queue")
	}
	switch {
	case opts.MaxPending < 0, opts.Concurrency < 0, opts.MaxEventSize < 0, opts.Retention < 0, opts.Poll < 0, opts.Grace < 0:
		return nil, errors.New("delivery: negative option")
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 16
	}
	if opts.MaxEventSize == 0 {
		opts.MaxEventSize = runtime.DefaultMaxEventSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Pipeline{q: q, opts: opts, log: opts.Logger, tr: newTracker(opts.Now()), stopped: make(chan struct{}), closing: make(chan struct{})}
	if err := p.SetBindings(bindings...); err != nil {
		return nil, err
	}
	so := opts.Sender
	if so.Concurrency == 0 {
		so.Concurrency = opts.Concurrency
	}
	if so.Logger == nil {
		so.Logger = opts.Logger
	}
	so.Metrics = opts.Metrics
	p.worker = &send.Worker{
		Queue:       q,
		Sender:      send.New(so),
		Policy:      opts.Policy,
		Integration: p.integration,
		Consent:     opts.Consent,
		Concurrency: opts.Concurrency,
		Poll:        opts.Poll,
		Grace:       opts.Grace,
		Logger:      opts.Logger,
		Metrics:     send.Tee(p.tr, opts.Metrics),
		Now:         opts.Now,
		Retention:   opts.Retention,
	}
	return p, nil
}

// SetBindings replaces the pipeline's integrations: events fed from now on
// are evaluated for these, and queued requests of an integration no longer
// bound stay pending, untouched, until one binds it again (a service
// disabling an integration, then enabling it, or changing its config under
// the same Name).
func (p *Pipeline) SetBindings(bindings ...Binding) error {
	set := &bindingSet{byName: map[string]*Binding{}}
	for _, b := range bindings {
		switch {
		case b.Name == "" || b.Integration == nil:
			return errors.New("delivery: a binding needs a Name and an Integration")
		case set.byName[b.Name] != nil:
			return fmt.Errorf("delivery: two bindings named %q", b.Name)
		}
		set.byName[b.Name] = &b
		set.sorted = append(set.sorted, &b)
	}
	slices.SortFunc(set.sorted, func(a, b *Binding) int { return strings.Compare(a.Name, b.Name) })
	old := p.bindings.Swap(set)
	if old != nil && p.worker != nil {
		// Requests of an integration the worker did not know may be known
		// now: let them be claimed again.
		if err := p.worker.ReleaseForeign(context.Background()); err != nil {
			p.log.Warn("releasing the requests of unbound integrations failed", "error", err)
		}
	}
	return nil
}

// integration is the worker's Integration func.
func (p *Pipeline) integration(it *outbox.Item) (*runtime.Integration, bool) {
	if b := p.bindings.Load().byName[it.Integration]; b != nil {
		return b.Integration, true
	}
	return nil, false
}

// Start purges the outbox by Retention, then delivers in the background
// until Drain finishes or Close (or ctx is done: like Close).
func (p *Pipeline) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != created {
		return ErrClosed
	}
	p.state = started
	if r := p.opts.Retention; r > 0 {
		// Before anything is fed, so that whether an old event is sent
		// again does not depend on timing. The worker then purges hourly
		// what ages past Retention (the tracker counts requests as they
		// end, so a purge loses no count).
		n, err := p.q.Purge(ctx, p.opts.Now().Add(-r))
		switch {
		case err != nil:
			p.log.Warn("purge of old outbox items failed; delivering anyway", "error", err)
		case n > 0:
			p.log.Info("purged old outbox items", "purged", n, "retain", r)
		}
	}
	// A request the outbox can no longer read is skipped by the worker:
	// the tracker stops waiting for it.
	runCtx, cancel := context.WithCancel(outbox.OnSkip(ctx, p.tr.skipped))
	p.stop = cancel
	go func() {
		p.runErr = p.worker.Run(runCtx, p.idle)
		close(p.stopped)
	}()
	return nil
}

// idle is the worker's done func: the pipeline drains and every request
// it fed or replayed is final.
func (p *Pipeline) idle() bool { return p.draining.Load() && p.tr.openCount() == 0 }

// Feed evaluates events (raw JSON, one each) for every integration of a
// started pipeline, counts and reports skips and rejects, and enqueues the
// requests of the others. It returns once they are durable, after waiting
// while MaxPending requests fed are not final; when ctx is done or Close
// is called while it waits, nothing of these events is kept or counted,
// and Feed returns ctx's error or ErrClosed. Feed keeps no reference to
// events. An error of the outbox means the deliverable events were not
// accepted; an error wrapping ErrRejects that the Rejects sink failed (the
// events were otherwise handled).
func (p *Pipeline) Feed(ctx context.Context, events ...[]byte) error {
	return p.FeedFrom(ctx, "", events...)
}

// FeedFrom is Feed for events of one source: an integration whose
// Binding.Sources is set receives them only when it lists source.
func (p *Pipeline) FeedFrom(ctx context.Context, source string, events ...[]byte) error {
	in := make([]fed, len(events))
	for i, ev := range events {
		in[i] = fed{data: ev, size: len(ev), source: source}
	}
	return p.feed(ctx, in, false)
}

// FeedTo is Feed for one integration only (the binding named
// integration): a rejected event evaluated again after its config was
// corrected, without sending it to the others a second time.
func (p *Pipeline) FeedTo(ctx context.Context, integration string, events ...[]byte) error {
	in := make([]fed, len(events))
	for i, ev := range events {
		in[i] = fed{data: ev, size: len(ev), only: integration}
	}
	return p.feed(ctx, in, false)
}

// fed is an event to feed: data nil when it was too large to keep.
type fed struct {
	data   []byte
	size   int
	source string // FeedFrom's source
	only   string // FeedTo's integration
}

// feed is Feed; always enqueues even when ctx is done while waiting (what
// Run has read is enqueued).
func (p *Pipeline) feed(ctx context.Context, events []fed, always bool) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case p.state == created:
		return errNotStarted
	case p.state >= draining:
		return ErrClosed
	}
	now := p.opts.Now()
	bs := p.bindings.Load().sorted
	decisions := make([]Decision, 0, len(events)*len(bs))
	var items []*outbox.Item
	// The integrations an event goes to, and their results: the event is
	// checked once and scanned once per blueprint variant they share
	// (EvaluateEach), not once per integration.
	var to []*Binding
	var ins []*runtime.Integration
	var results []runtime.Result
	for ei, ev := range events {
		// Each event one nanosecond after the one before: the queue
		// claims in input order (and a batch keeps it).
		evNow := now.Add(time.Duration(ei))
		to, ins = to[:0], ins[:0]
		for _, b := range bs {
			if len(b.Sources) > 0 && !slices.Contains(b.Sources, ev.source) || ev.only != "" && ev.only != b.Name {
				continue // not one of this integration's sources, or fed to another
			}
			to, ins = append(to, b), append(ins, b.Integration)
		}
		if ev.data != nil && len(ins) > 0 {
			results = EvaluateEach(results[:0], ev.data, ins)
		}
		for i, b := range to {
			d := Decision{Integration: b.Name, In: b.Integration, Event: ev.data}
			if ev.data == nil {
				d.Result = TooLarge(ev.size, p.opts.MaxEventSize)
			} else {
				d.Result = results[i]
			}
			if d.Result.Outcome == runtime.Deliver {
				its, err := send.Items(b.Integration, b.Name, b.Ref, ev.data, d.Result, evNow)
				if err != nil {
					// The outbox keeps events as they are: one holding the
					// integration's own secret is not stored.
					d.Result = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent, Event: d.Result.Event, Message: err.Error()}
				}
				d.Items = its
				items = append(items, its...)
			}
			decisions = append(decisions, d)
		}
	}
	if !p.tr.wait(ctx, len(items), p.opts.MaxPending, p.stopped, p.closing) && !always {
		// Given up: nothing of these events is kept or counted.
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-p.closing:
			return ErrClosed
		default: // the worker stopped: enqueued, for a later pipeline
		}
	}
	var skipped, rejected int64
	var rejectErr error
	for _, d := range decisions {
		res := d.Result
		switch res.Outcome {
		case runtime.Skip:
			skipped++
			if res.Reason == runtime.ReasonConsentDenied {
				// A consent drop is logged where it is seen (the platform's
				// promise); events the blueprint does not map are the common
				// case, at info.
				p.log.Warn("dropped", "integration", d.Integration, "reason", res.Reason, "event", res.Event, "message", res.Message)
			} else {
				p.log.Info("skipped", "integration", d.Integration, "reason", res.Reason, "event", res.Event, "message", res.Message)
			}
		case runtime.Reject:
			rejected++
			p.log.Warn("rejected", "integration", d.Integration, "reason", res.Reason, "fields", res.Fields, "event", res.Event, "message", res.Message)
			if p.opts.Rejects != nil {
				if err := p.opts.Rejects.Reject(NewRejectRecord(d.Integration, d.In, d.Event, res)); err != nil && rejectErr == nil {
					rejectErr = fmt.Errorf("%w: %w", ErrRejects, err)
				}
			}
		}
	}
	p.tr.decided(int64(len(events)), skipped, rejected)
	var enqueueErr error
	if len(items) > 0 {
		p.tr.add(items)
		// Not cancelled: once decided, a batch is enqueued whole.
		stored, err := p.q.Enqueue(context.WithoutCancel(ctx), items)
		if err != nil {
			p.tr.unadd(items)
			enqueueErr = fmt.Errorf("outbox: %w", err)
		} else {
			p.tr.stored(stored)
			for i := range decisions {
				if n := len(decisions[i].Items); n > 0 {
					decisions[i].Items, stored = stored[:n:n], stored[n:]
				}
			}
		}
	}
	if p.opts.OnDecision != nil {
		for _, d := range decisions {
			if enqueueErr != nil && d.Result.Outcome == runtime.Deliver {
				continue // not accepted: Feed's error says so
			}
			p.opts.OnDecision(d)
		}
	}
	if enqueueErr != nil {
		return enqueueErr
	}
	return rejectErr
}

// ReplayReport says what Replay did.
type ReplayReport struct {
	// Replayed is how many dead letters became pending again; the pipeline
	// delivers them, counts them, and Drain waits for them.
	Replayed int
	// Others counts, when every dead letter was asked for, those of other
	// integrations, left alone, by integration name.
	Others map[string]int
}

// ForeignError refuses to replay an item of another integration: a
// pipeline delivers only its own (the worker would leave another's
// pending, out of the dead letters).
type ForeignError struct {
	ID                              string
	Integration, Blueprint, Variant string // the item's
	Want                            string // the integration asked for
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("%s is a dead letter of %s (blueprint %s, variant %s), not of %s", e.ID, e.Integration, e.Blueprint, e.Variant, e.Want)
}

// Replay turns dead letters of the bound integration named back into
// pending requests (attempts reset), rebuilt from their events with the
// integration's current config at every attempt, and follows them like
// requests fed: counted in the Summary, waited for by Drain. ids nil means
// every dead letter of that integration (those of others are left alone
// and counted in the report); an ID given must be one of its items (else
// an error matching outbox.ErrNotFound, or a *ForeignError, and nothing is
// replayed). A given item that is not a dead letter is not replayed: it is
// counted as already final (Summary.AlreadyDelivered and the like), or
// waited for when pending. It needs the pipeline's queue to be an
// outbox.Store (dead letters are listed and looked up; Bolt and Memory
// are).
func (p *Pipeline) Replay(ctx context.Context, integration string, ids []string) (ReplayReport, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	rep := ReplayReport{Others: map[string]int{}}
	switch {
	case p.state == created:
		return rep, errNotStarted
	case p.state >= draining:
		return rep, ErrClosed
	}
	st, ok := p.q.(outbox.Store)
	if !ok {
		return rep, fmt.Errorf("delivery: replay: the queue (%T) is not an outbox.Store: its dead letters cannot be listed", p.q)
	}
	if _, ok := p.integration(&outbox.Item{Integration: integration}); !ok {
		return rep, fmt.Errorf("delivery: replay: %q is not bound", integration)
	}
	var dead, other []*outbox.Item
	if ids == nil {
		// Every dead letter: the listing holds the items themselves, each
		// counted once (one that died again while it was listed is listed
		// twice).
		var listed []*outbox.Item
		for cursor := ""; ; {
			page, next, err := st.List(ctx, outbox.Dead, cursor, 1000)
			if err != nil {
				return rep, err
			}
			listed = append(listed, page...)
			if next == "" {
				break
			}
			cursor = next
		}
		slices.SortStableFunc(listed, func(a, b *outbox.Item) int { return strings.Compare(a.ID, b.ID) })
		for _, it := range slices.CompactFunc(listed, func(a, b *outbox.Item) bool { return a.ID == b.ID }) {
			if it.Integration != integration {
				rep.Others[it.Integration]++
			} else {
				dead = append(dead, it)
			}
		}
	}
	for _, id := range slices.Compact(slices.Sorted(slices.Values(ids))) { // each counted once
		it, err := st.Get(ctx, id)
		switch {
		case err != nil:
			return rep, err
		case it.Integration != integration:
			return rep, &ForeignError{ID: id, Integration: it.Integration, Blueprint: it.Blueprint, Variant: it.Variant, Want: integration}
		case it.State == outbox.Dead:
			dead = append(dead, it)
		default:
			other = append(other, it)
		}
	}
	p.tr.add(other)
	p.tr.stored(other)
	if len(dead) == 0 {
		return rep, nil
	}
	p.tr.add(dead)
	n, err := st.Replay(ctx, itemIDs(dead), p.opts.Now())
	if err != nil {
		p.tr.unadd(dead)
		return rep, err
	}
	rep.Replayed = n
	// An item that was no longer dead (replayed or purged by someone else
	// meanwhile) is counted as it is now, not waited for.
	for _, it := range dead {
		now, err := st.Get(context.WithoutCancel(ctx), it.ID)
		if err != nil {
			p.tr.unadd([]*outbox.Item{it})
			continue
		}
		p.tr.stored([]*outbox.Item{now})
	}
	return rep, nil
}

func itemIDs(items []*outbox.Item) []string {
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return ids
}

// Drain tells the pipeline that nothing more will be fed, and waits until
// every request it fed or replayed is final, or unreadable (see the
// package doc; then delivery stops), or ctx is done (delivery goes on
// until Close). It returns the worker's error,
// if it failed, or ctx's.
func (p *Pipeline) Drain(ctx context.Context) error {
	p.mu.Lock()
	if p.state == created {
		p.mu.Unlock()
		return errNotStarted
	}
	if p.state == started {
		p.state = draining
	}
	p.draining.Store(true)
	p.mu.Unlock()
	// Nothing more is fed: a batch held for more events is sent now
	// rather than after its wait.
	p.worker.FlushBatches()
	select {
	case <-p.stopped:
		return p.runErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops delivery: attempts in flight finish within Options.Grace,
// and every other request stays in the outbox, pending, for a later
// pipeline. It returns the worker's error, if it failed. The queue is not
// closed.
func (p *Pipeline) Close() error {
	p.closeOne.Do(func() { close(p.closing) }) // a Feed waiting for room gives up
	p.mu.Lock()
	p.state = closed
	stop := p.stop
	p.mu.Unlock()
	if stop == nil {
		return nil // never started
	}
	stop()
	<-p.stopped
	return p.runErr
}

// Err returns the worker's error once it has stopped on one (a queue that
// fails), nil otherwise: a service reports it as not ready.
func (p *Pipeline) Err() error {
	select {
	case <-p.stopped:
		return p.runErr
	default:
		return nil
	}
}

// Summary returns the counts so far; Pending is the requests fed or
// replayed and not final yet.
func (p *Pipeline) Summary() Summary { return p.tr.summary() }

// Bindings returns the names of the pipeline's integrations, sorted.
func (p *Pipeline) Bindings() []string {
	var names []string
	for _, b := range p.bindings.Load().sorted {
		names = append(names, b.Name)
	}
	return names
}
