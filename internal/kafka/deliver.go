package kafka

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// DeliverGroup is the consumer group of an integration's deliverers.
func DeliverGroup(integrationID string) string { return "blueprint-deliver-" + integrationID }

// DelivererOptions configure a Deliverer.
type DelivererOptions struct {
	Config   Config
	Registry Registry
	// IntegrationID is the integration delivered (one group per
	// integration, on its delivery and retry topics).
	IntegrationID string
	// Sender sends (default send.New with zero options). Share one among
	// deliverers: it holds the connection pools and rate limits.
	Sender *send.Sender
	// Policy is the retry schedule (zero fields: send.DefaultPolicy's,
	// up to 5 attempts over 24 hours).
	Policy send.Policy
	// Concurrency is the most attempts in flight (default 16).
	Concurrency int
	// MaxHeld is the most records of one partition held in memory waiting
	// for their due time or an attempt; beyond it the partition's fetching
	// is paused (default 10,000).
	MaxHeld int
	// UnknownWait is how long a request of an integration the registry
	// does not know (disabled, not yet distributed) waits before it is
	// looked at again, without counting an attempt (default 1 minute).
	UnknownWait time.Duration
	// ReparkAfter is how long a record not yet due is held before it is
	// produced again to the tail of the retry topic and settled, so that
	// its partition's committed offset moves past it (default 10 minutes).
	// A crash then makes the next owner read again at most ReparkAfter's
	// worth of records behind a request that waits for hours.
	ReparkAfter time.Duration
	// Metrics receives each request's final state (Final). Give the
	// Sender's Options.Metrics the same value to see attempts too.
	Metrics send.Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// DeliverStats counts what a Deliverer did.
type DeliverStats struct {
	Attempts, Delivered, Retried, Dead, Skipped atomic.Int64
	// Reparked counts records produced again to the retry topic's tail
	// after waiting ReparkAfter (no attempt made).
	Reparked atomic.Int64
}

// Deliverer is the deliver role for one integration. Run it; Stats counts.
type Deliverer struct {
	opts   DelivererOptions
	policy send.Policy
	Stats  DeliverStats

	mu       sync.Mutex // guards parts, ready, inflight and the entries' state
	parts    map[tp]*partState
	ready    readyHeap // held entries not in flight, earliest due first (stale ones dropped lazily)
	inflight int       // attempts started and not yet settled or dropped

	work    chan *entry  // to the attempt workers
	results chan outcome // from them (capacity Concurrency: never blocks)
	wakeMu  sync.Mutex   // guards poll and woken
	poll    func()       // cancels the poll in progress, nil outside one
	woken   bool         // a result came in outside a poll: do not wait in the next
	repark  time.Time    // the last scan for records to repark
	commit  time.Time    // the last commit (real time)
	revokes map[tp]bool  // partitions being revoked: nothing more is started on them

	// configEnd is the integrations topic's end when a record needs a
	// config offset beyond the end last read (at most one request a
	// second); ok false when not known.
	configEnd func(ctx context.Context, need int64) (end int64, ok bool)

	// afterAttempt, in tests, sees each attempt; true simulates a crash:
	// Run returns errCrashed at once, committing nothing more.
	afterAttempt func(DeliveryRecord, send.Attempt) bool
	crashed      atomic.Bool
}

var errCrashed = errors.New("kafka: deliver: crashed (test)")

type tp struct {
	topic     string
	partition int32
}

// partState is what a deliverer holds of one partition: the records read
// and not settled yet (waiting for their due time, or in flight) by
// offset, their offsets in the order read, and the offset after the last
// one read.
type partState struct {
	pending   map[int64]*entry
	order     []int64 // offsets read, ascending; order[head:] starts at the lowest unsettled one once watermark ran
	head      int
	next      int64
	committed int64
	paused    bool
}

// watermark is the offset to commit: the lowest record not settled, else
// the next to read. Amortised O(1): settled offsets are dropped from the
// front of order as they are passed.
func (ps *partState) watermark() int64 {
	for ps.head < len(ps.order) {
		if _, ok := ps.pending[ps.order[ps.head]]; ok {
			if ps.head > 1024 && ps.head > len(ps.order)/2 {
				ps.order = append(ps.order[:0], ps.order[ps.head:]...)
				ps.head = 0
			}
			return ps.order[ps.head]
		}
		ps.head++
	}
	ps.order, ps.head = ps.order[:0], 0
	return ps.next
}

type entry struct {
	tp       tp
	ps       *partState // the partition state it belongs to (a revoked and reassigned partition has a new one)
	offset   int64
	key      []byte
	rec      DeliveryRecord
	due      time.Time
	read     time.Time // when this deliverer read it (ReparkAfter counts from it)
	inflight bool      // handed to a worker, outcome not settled
	// config is the record's ConfigHeader (0: none): the integrations
	// topic's offset its event was accepted under.
	config int64
}

// live reports whether e is still held: its partition not forgotten since,
// and the record not settled.
func (d *Deliverer) live(e *entry) bool {
	return d.parts[e.tp] == e.ps && e.ps.pending[e.offset] == e
}

// readyHeap orders held entries by due time, then offset.
type readyHeap []*entry

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	if c := h[i].due.Compare(h[j].due); c != 0 {
		return c < 0
	}
	return h[i].offset < h[j].offset
}
func (h readyHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readyHeap) Push(x any)   { *h = append(*h, x.(*entry)) }
func (h *readyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// top is the earliest held entry not in flight (stale ones dropped), or
// nil.
func (d *Deliverer) top() *entry {
	for d.ready.Len() > 0 {
		e := d.ready[0]
		if d.live(e) && !e.inflight {
			return e
		}
		heap.Pop(&d.ready)
	}
	return nil
}

// pruneLocked rebuilds the ready heap when entries no longer held (a
// reparked record not yet due, a forgotten partition's) make up most of
// it.
func (d *Deliverer) pruneLocked() {
	if len(d.ready) < 1024 {
		return
	}
	live := 0
	for _, e := range d.ready {
		if d.live(e) && !e.inflight {
			live++
		}
	}
	if live*2 > len(d.ready) {
		return
	}
	d.ready = slices.DeleteFunc(d.ready, func(e *entry) bool { return !d.live(e) || e.inflight })
	heap.Init(&d.ready)
}

// NewDeliverer returns a Deliverer.
func NewDeliverer(opts DelivererOptions) *Deliverer {
	if opts.Sender == nil {
		opts.Sender = send.New(send.Options{})
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.MaxHeld <= 0 {
		opts.MaxHeld = 10_000
	}
	if opts.UnknownWait <= 0 {
		opts.UnknownWait = time.Minute
	}
	if opts.ReparkAfter <= 0 {
		opts.ReparkAfter = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Every line names the integration, once.
	opts.Logger = opts.Logger.With("integration", opts.IntegrationID)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Deliverer{opts: opts, policy: opts.Policy.WithDefaults(), parts: map[tp]*partState{}, revokes: map[tp]bool{}}
}

// commitEvery is how often a busy deliverer commits its partitions'
// watermarks; an idle one (nothing in flight) commits at once.
const commitEvery = 50 * time.Millisecond

// drainRecheck is how often drain looks again at the attempts in flight
// while it waits for their outcomes.
const drainRecheck = 20 * time.Millisecond

// revokeWait bounds how long a revocation waits for the attempts in
// flight on the partitions taken away.
const revokeWait = 20 * time.Second

// Run consumes the integration's delivery and retry topics in its group
// until ctx is done. Every record read is held until it is settled: sent
// and final (delivered, duplicate, dead-lettered to dlq-events), or handed
// on (produced, acknowledged) to the retry topic with its next due time.
// A partition's committed offset is its lowest record not settled, so a
// crash or a rebalance makes the next owner read again (and send again,
// with the same item ID) only records whose fate was not yet
// acknowledged. A record not due yet never stops the records behind it:
// they are read and sent while it waits (see docs/kafka.md).
//
// Attempts run on Concurrency workers while the loop keeps polling: an
// answer settles its record at once and frees a worker for the next due
// record, whatever the other attempts in flight do; a slow vendor answer
// holds one worker, not the loop. Offsets are committed at most every
// commitEvery while attempts are in flight, at once when none is.
func (d *Deliverer) Run(ctx context.Context) error {
	id := d.opts.IntegrationID
	if d.opts.Registry == nil || id == "" {
		return errors.New("kafka: deliver: a registry and an integration ID are required")
	}
	// A new session: nothing held (a previous Run's client left the
	// group, which forgot its partitions).
	d.mu.Lock()
	d.parts, d.ready, d.inflight, d.revokes = map[tp]*partState{}, nil, 0, map[tp]bool{}
	d.work = make(chan *entry, d.opts.Concurrency)
	d.results = make(chan outcome, d.opts.Concurrency)
	d.mu.Unlock()
	cl, err := d.opts.Config.client(append(d.opts.Config.member(DeliverGroup(id)),
		kgo.ConsumeTopics(DeliveryTopic(id), RetryTopic(id)),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.OnPartitionsRevoked(d.revoked),
		kgo.OnPartitionsLost(d.lost),
	)...)
	if err != nil {
		return fmt.Errorf("kafka: deliver: %w", err)
	}
	defer cl.Close()
	var endMu sync.Mutex
	var end int64
	var known bool
	var endAt time.Time
	d.configEnd = func(ctx context.Context, need int64) (int64, bool) {
		endMu.Lock()
		defer endMu.Unlock()
		if need > end && time.Since(endAt) >= time.Second {
			endAt = time.Now()
			if e, err := integrationsEnd(ctx, cl); err == nil {
				end, known = max(end, e), true
			}
		}
		return end, known
	}
	actx := context.WithoutCancel(ctx) // attempts in flight finish
	fetchLogged := map[string]time.Time{}
	var workers sync.WaitGroup
	for range d.opts.Concurrency {
		workers.Go(func() {
			for e := range d.work {
				d.results <- d.attempt(actx, e)
				d.wake()
			}
		})
	}
	defer func() {
		close(d.work)
		workers.Wait()
	}()
	for {
		pctx, cancel := context.WithTimeout(ctx, d.nextWait())
		d.wakeMu.Lock()
		if d.woken {
			cancel() // a result is waiting: poll only what is buffered
		}
		d.woken, d.poll = false, cancel
		d.wakeMu.Unlock()
		fs := cl.PollFetches(pctx)
		d.wakeMu.Lock()
		d.poll = nil
		d.wakeMu.Unlock()
		cancel()
		if ctx.Err() != nil {
			return d.drain(actx, cl)
		}
		recreated := false
		for _, e := range fs.Errors() {
			if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
				continue
			}
			// A fetch error comes back at every poll while it lasts:
			// logged once per partition and error every 10 s, not
			// thousands of times a second.
			k := fmt.Sprintf("%s/%d/%v", e.Topic, e.Partition, e.Err)
			if now := time.Now(); now.Sub(fetchLogged[k]) >= 10*time.Second {
				if len(fetchLogged) > 1000 {
					clear(fetchLogged)
				}
				fetchLogged[k] = now
				d.opts.Logger.Warn("fetch error", "topic", e.Topic, "partition", e.Partition, "error", e.Err)
			}
			recreated = recreated || errors.Is(e.Err, kerr.UnknownTopicID)
		}
		if recreated {
			// The topic was deleted (and maybe created again, under a new
			// ID the client will not learn): a new client, after the
			// supervisor's pause, reads it afresh. What is held is not
			// committed: read again.
			if err := d.drain(actx, cl); err != nil {
				return err
			}
			return fmt.Errorf("kafka: deliver: the topics of %s were deleted or recreated: restarting with fresh metadata", id)
		}
		if err := d.step(actx, cl, fs); err != nil {
			if errors.Is(err, errCrashed) {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// wake ends the poll in progress (or the next one) early: an attempt has
// an outcome to settle, and a worker is free.
func (d *Deliverer) wake() {
	d.wakeMu.Lock()
	defer d.wakeMu.Unlock()
	if d.poll != nil {
		d.poll()
		return
	}
	d.woken = true
}

// drain, at shutdown, waits for the attempts in flight (their sends use a
// context that is not cancelled) and settles and commits them. A
// revocation running meanwhile may take some of the outcomes (revoked
// reads results too): the count is looked at again every drainRecheck, so
// drain never waits for an outcome that was settled there.
func (d *Deliverer) drain(ctx context.Context, cl *kgo.Client) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.inflight > 0 {
		d.mu.Unlock()
		var outs []outcome
		select {
		case o := <-d.results:
			outs = append(outs, o)
		case <-time.After(drainRecheck):
		}
		d.mu.Lock()
		if err := d.settleLocked(ctx, cl, outs); err != nil {
			if errors.Is(err, errCrashed) {
				return err
			}
			d.opts.Logger.Warn("at shutdown: records left unsettled (read again by the next owner)", "error", err.Error())
		}
	}
	return d.commitLocked(ctx, cl, nil, true)
}

// nextWait is how long a poll may wait for records: until the earliest
// held record is due when a worker is free (at least 1 ms, at most 1 s),
// else until an answer wakes the loop.
func (d *Deliverer) nextWait() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	wait := time.Second
	if e := d.top(); e != nil && d.inflight < d.opts.Concurrency {
		wait = min(wait, e.due.Sub(d.opts.Now()))
	}
	if d.inflight == 0 && d.uncommittedLocked() {
		wait = min(wait, commitEvery)
	}
	return max(wait, time.Millisecond)
}

// uncommittedLocked reports whether a partition's watermark is past its
// committed offset.
func (d *Deliverer) uncommittedLocked() bool {
	for _, ps := range d.parts {
		if ps.watermark() > ps.committed {
			return true
		}
	}
	return false
}

// outcome is what an attempt leads to.
type outcome struct {
	e      *entry
	keep   bool          // not settled: held again (after later, when set)
	later  time.Duration // a wait before it is looked at again (its config not applied yet)
	out    *kgo.Record   // to produce before the record is settled
	final  *send.FinalInfo
	crash  bool
	repark bool // out is the record again, produced to the retry topic's tail
}

// step holds the records fetched, settles the outcomes that came in,
// reparks the records held too long, starts attempts for the due records
// as workers are free, and commits.
func (d *Deliverer) step(ctx context.Context, cl *kgo.Client, fs kgo.Fetches) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.Now()
	fs.EachRecord(func(r *kgo.Record) {
		k := tp{r.Topic, r.Partition}
		ps := d.parts[k]
		if ps == nil {
			ps = &partState{pending: map[int64]*entry{}, next: r.Offset, committed: r.Offset}
			d.parts[k] = ps
		}
		ps.next = r.Offset + 1
		var rec DeliveryRecord
		err := errRecordTooLarge(r)
		if err == nil {
			err = json.Unmarshal(r.Value, &rec)
		}
		if err == nil {
			err = rec.check(d.opts.IntegrationID)
		}
		if err != nil {
			// Not one a processor or a replay makes (nothing to rebuild a
			// request from, an index out of range, another integration's,
			// too large to produce again as a retry or a dead letter):
			// logged with its position and passed over, never silently,
			// and never acted on.
			d.opts.Logger.Error("unreadable delivery record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", err.Error())
			return
		}
		due := rec.DueAt
		if due.IsZero() {
			due = now
		}
		// No retry waits longer than the policy's window: a due time past
		// it (a hostile or corrupt record) would be re-parked for ever,
		// never attempted nor dead-lettered. Clamped, it is attempted and
		// the policy ends it (MaxAttempts bounds the hops).
		if limit := now.Add(d.policy.MaxAge); due.After(limit) {
			due = limit
		}
		e := &entry{tp: k, ps: ps, offset: r.Offset, key: r.Key, rec: rec, due: due, read: now, config: configOffset(r)}
		ps.pending[r.Offset] = e
		ps.order = append(ps.order, r.Offset)
		heap.Push(&d.ready, e)
	})
	var outs []outcome
	for len(d.results) > 0 {
		outs = append(outs, <-d.results)
	}
	// The records held ReparkAfter and not due go to the retry topic's
	// tail as they are (looked for once a second).
	if now.Sub(d.repark) >= time.Second || now.Before(d.repark) {
		d.repark = now
		d.pruneLocked()
		for _, ps := range d.parts {
			for _, e := range ps.pending {
				if !e.inflight && e.due.After(now) && now.Sub(e.read) >= d.opts.ReparkAfter {
					e.inflight = true // not started again while it is produced
					d.inflight++
					outs = append(outs, outcome{e: e, out: d.retryRecord(e, e.rec), repark: true})
				}
			}
		}
	}
	if err := d.settleLocked(ctx, cl, outs); err != nil {
		return err
	}
	// Start the due records, earliest first, on the free workers.
	for d.inflight < d.opts.Concurrency {
		e := d.top()
		if e == nil || e.due.After(now) {
			break
		}
		heap.Pop(&d.ready)
		if d.revokes[e.tp] {
			continue // its partition is going: the next owner sends it
		}
		e.inflight = true
		d.inflight++
		d.work <- e
	}
	return d.commitLocked(ctx, cl, nil, d.inflight == 0 || time.Since(d.commit) >= commitEvery)
}

// settleLocked produces the outcomes' records (retries, dead letters,
// reparks) and, once acknowledged, settles their entries. Outcomes of
// partitions forgotten since (revoked, lost) are dropped: the next owner
// reads those records again.
func (d *Deliverer) settleLocked(ctx context.Context, cl *kgo.Client, outs []outcome) error {
	var produce []*kgo.Record
	for i := 0; i < len(outs); i++ {
		o := outs[i]
		if o.crash {
			d.crashed.Store(true)
			return errCrashed
		}
		if !d.live(o.e) {
			d.inflight--
			outs = slices.Delete(outs, i, i+1)
			i--
			continue
		}
		if o.out != nil {
			produce = append(produce, o.out)
		}
	}
	if len(produce) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := cl.ProduceSync(pctx, produce...).FirstErr()
		cancel()
		if err != nil {
			// Nothing settled: the records are read again by whoever owns
			// their partitions next (Run stops; leaving the group commits
			// below them).
			for _, o := range outs {
				d.inflight--
				o.e.inflight = false
			}
			return fmt.Errorf("kafka: deliver: produce: %w", err)
		}
	}
	for _, o := range outs {
		d.inflight--
		o.e.inflight = false
		if o.keep {
			if o.later > 0 {
				o.e.due = d.opts.Now().Add(o.later)
			}
			heap.Push(&d.ready, o.e)
			continue
		}
		delete(o.e.ps.pending, o.e.offset)
		if o.repark {
			d.Stats.Reparked.Add(1)
		}
		if o.final != nil {
			d.opts.metrics().Final(*o.final)
		}
	}
	return nil
}

// commitLocked commits, when commit says so, the watermark of every
// partition (only, when not nil) that moved, and pauses or resumes
// fetching by how much is held.
func (d *Deliverer) commitLocked(ctx context.Context, cl *kgo.Client, only map[string][]int32, commit bool) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var pause, resume = map[string][]int32{}, map[string][]int32{}
	for k, ps := range d.parts {
		if only != nil && !slices.Contains(only[k.topic], k.partition) {
			continue
		}
		if wm := ps.watermark(); commit && wm > ps.committed {
			if offsets[k.topic] == nil {
				offsets[k.topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[k.topic][k.partition] = kgo.EpochOffset{Epoch: -1, Offset: wm}
		}
		switch held := len(ps.pending); {
		case held >= d.opts.MaxHeld && !ps.paused:
			ps.paused = true
			pause[k.topic] = append(pause[k.topic], k.partition)
		case held < d.opts.MaxHeld/2 && ps.paused:
			ps.paused = false
			resume[k.topic] = append(resume[k.topic], k.partition)
		}
	}
	if len(pause) > 0 {
		cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
	if len(offsets) == 0 {
		return nil
	}
	d.commit = time.Now()
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = e
				}
			}
		}
	})
	if cerr != nil {
		// Not fatal: the records settled are read again after a crash or a
		// rebalance (at least once); the next commit tries again.
		d.opts.Logger.Warn("offset commit failed", "error", cerr)
		return nil
	}
	for topic, ps := range offsets {
		for p, eo := range ps {
			if st := d.parts[tp{topic, p}]; st != nil {
				st.committed = eo.Offset
			}
		}
	}
	return nil
}

// revoked waits (up to revokeWait) for the attempts in flight on the
// partitions taken away and settles them, commits what is settled, and
// forgets the partitions: their next owner reads their unsettled records
// again.
func (d *Deliverer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.crashed.Load() {
		for topic, ps := range revoked {
			for _, p := range ps {
				d.revokes[tp{topic, p}] = true
			}
		}
		// Their outcomes come in here or in Run's loop, whichever reads
		// them first.
		for deadline := time.Now().Add(revokeWait); d.inflightOn(revoked) && time.Now().Before(deadline) && !d.crashed.Load(); {
			d.mu.Unlock()
			var outs []outcome
			select {
			case o := <-d.results:
				outs = append(outs, o)
			case <-time.After(20 * time.Millisecond):
			}
			d.mu.Lock()
			if err := d.settleLocked(ctx, cl, outs); err != nil && !errors.Is(err, errCrashed) {
				d.opts.Logger.Warn("revoked partitions: records left unsettled (read again by the next owner)", "error", err.Error())
				break
			}
		}
		if !d.crashed.Load() {
			_ = d.commitLocked(ctx, cl, revoked, true)
		}
	}
	d.forgetLocked(revoked)
}

// inflightOn reports whether an attempt is in flight on one of the
// partitions.
func (d *Deliverer) inflightOn(m map[string][]int32) bool {
	for topic, ps := range m {
		for _, p := range ps {
			if st := d.parts[tp{topic, p}]; st != nil {
				for _, e := range st.pending {
					if e.inflight {
						return true
					}
				}
			}
		}
	}
	return false
}

// lost forgets partitions lost without a chance to commit.
func (d *Deliverer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forgetLocked(lost)
}

func (d *Deliverer) forgetLocked(m map[string][]int32) {
	for topic, ps := range m {
		for _, p := range ps {
			delete(d.parts, tp{topic, p})
			delete(d.revokes, tp{topic, p})
		}
	}
}

func (o DelivererOptions) metrics() send.Metrics {
	if o.Metrics == nil {
		return send.Hooks{}
	}
	return o.Metrics
}

// attempt makes one attempt of e's request and says what follows.
func (d *Deliverer) attempt(ctx context.Context, e *entry) outcome {
	rec := e.rec
	id := d.opts.IntegrationID
	log := d.opts.Logger.With("item", rec.ID, "message_id", send.LogText(rec.MessageID))
	if w, ok := d.opts.Registry.(ConfigWaiter); ok && e.config > 0 && !w.HasConfig(e.config) && d.configEnd != nil {
		// A header beyond the integrations topic's end was stamped by no
		// publisher: held for it, the request would wait for ever.
		if end, ok := d.configEnd(ctx, e.config); ok && e.config > end {
			log.Error("delivery record names a config offset beyond the integrations topic's end; sent with the config up to the end", "topic", e.tp.topic, "partition", e.tp.partition, "offset", e.offset, "config_offset", e.config, "end", end)
			e.config = end
		}
	}
	if w, ok := d.opts.Registry.(ConfigWaiter); ok && e.config > 0 && !w.HasConfig(e.config) {
		// Built under a config this process has not read yet (a key
		// rotated just before the event): sent once it has, held here
		// meanwhile (a record held ReparkAfter is reparked as any).
		log.Debug("request held: the integrations topic is not applied up to its config here", "config_offset", e.config)
		return outcome{e: e, keep: true, later: configRecheck}
	}
	in, ok := d.opts.Registry.Integration(rec.IntegrationID)
	if !ok || rec.IntegrationID != id {
		// Disabled, or its revision not here yet: looked at again later,
		// with no attempt counted (the embedded outbox leaves it pending).
		log.Warn("integration not bound here; request parked", "wait", d.opts.UnknownWait)
		rec.DueAt = d.opts.Now().Add(d.opts.UnknownWait)
		return outcome{e: e, out: d.retryRecord(e, rec)}
	}
	now := d.opts.Now()
	res := in.Evaluate(rec.Event)
	if res.Outcome != runtime.Deliver || rec.Request < 0 || rec.Request >= len(res.Requests) {
		msg := fmt.Sprintf("no longer deliverable: %s %s: %s", res.Outcome, res.Reason, res.Message)
		if res.Reason == runtime.ReasonConsentDenied {
			log.Warn("dropped", "reason", msg)
			d.Stats.Skipped.Add(1)
			return outcome{e: e, final: d.final(rec, outbox.Skipped, 0, msg, now)}
		}
		return d.dead(e, in, rec, ErrorNotDeliverable, 0, msg, now)
	}
	a := d.opts.Sender.DoItem(ctx, in, id, rec.ID, send.EventRef(rec.Event), res.Requests[rec.Request])
	d.Stats.Attempts.Add(1)
	if d.afterAttempt != nil && d.afterAttempt(rec, a) {
		return outcome{e: e, crash: true}
	}
	rec.Attempts++
	now = d.opts.Now()
	attrs := []any{"attempt", rec.Attempts, "status", a.Status, "latency_ms", a.Latency.Milliseconds(), "outcome", string(a.Outcome)}
	switch {
	case a.Delivered():
		log.Info("delivered", attrs...)
		d.Stats.Delivered.Add(1)
		return outcome{e: e, final: d.final(rec, outbox.Delivered, a.Status, a.Message, now)}
	case a.Outcome == runtime.Failed:
		log.Warn("failed permanently", append(attrs, "error", a.Message)...)
		return d.dead(e, in, rec, ErrorDeliveryFailed, a.Status, a.Message, now)
	}
	// The same schedule as send.Worker's.
	delay, giveUp := d.policy.Next(rec.Attempts, rec.CreatedAt, now, a.RetryAfter)
	if giveUp {
		log.Warn("dead letter", append(attrs, "error", a.Message)...)
		return d.dead(e, in, rec, ErrorAttemptsExhausted, a.Status, fmt.Sprintf("gave up after %d attempts: %s", rec.Attempts, a.Message), now)
	}
	log.Info("retrying", append(attrs, "error", a.Message, "retry_in_ms", delay.Milliseconds())...)
	rec.DueAt = now.Add(delay)
	rec.LastStatus = a.Status
	rec.LastError = a.Message
	d.Stats.Retried.Add(1)
	return outcome{e: e, out: d.retryRecord(e, rec)}
}

func (d *Deliverer) retryRecord(e *entry, rec DeliveryRecord) *kgo.Record {
	v, _ := json.Marshal(rec) // a DeliveryRecord always marshals
	r := &kgo.Record{Topic: RetryTopic(d.opts.IntegrationID), Key: e.key, Value: v}
	if e.config > 0 {
		r.Headers = []kgo.RecordHeader{{Key: ConfigHeader, Value: strconv.AppendInt(nil, e.config, 10)}}
	}
	return r
}

// configRecheck is how often a deliverer looks again at a request held
// for its config.
const configRecheck = 100 * time.Millisecond

func (d *Deliverer) dead(e *entry, in *runtime.Integration, rec DeliveryRecord, code string, status int, msg string, now time.Time) outcome {
	d.Stats.Dead.Add(1)
	dr := DeadRecord{
		RejectRecord: delivery.NewRejectRecord(rec.IntegrationID, in, rec.Event, runtime.Result{Reason: code, Message: msg}),
		Kind:         "delivery", ItemID: rec.ID, Request: rec.Request, Status: status, Attempts: rec.Attempts,
	}
	v, _ := json.Marshal(dr)
	return outcome{e: e, out: &kgo.Record{Topic: DLQEvents, Key: e.key, Value: v}, final: d.final(rec, outbox.Dead, status, msg, now)}
}

func (d *Deliverer) final(rec DeliveryRecord, state outbox.State, status int, msg string, now time.Time) *send.FinalInfo {
	return &send.FinalInfo{Item: rec.ID, Integration: rec.IntegrationID, State: state, Attempts: rec.Attempts,
		Status: status, Message: msg, MessageID: send.EventRef(rec.Event), VendorEvent: rec.VendorEvent, At: now}
}

// errRecordTooLarge says that r is over MaxRecordBytes (nil: it is not).
func errRecordTooLarge(r *kgo.Record) error {
	if n := len(r.Key) + len(r.Value); n > MaxRecordBytes {
		return fmt.Errorf("a record of %d bytes (at most %d)", n, MaxRecordBytes)
	}
	return nil
}
