package kafka

import (
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

	mu    sync.Mutex // guards parts; held while a poll's records are handled
	parts map[tp]*partState

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
// offset, and the offset after the last one read.
type partState struct {
	pending   map[int64]*entry
	next      int64
	committed int64
	paused    bool
}

// watermark is the offset to commit: the lowest record not settled, else
// the next to read.
func (ps *partState) watermark() int64 {
	wm := ps.next
	for o := range ps.pending {
		wm = min(wm, o)
	}
	return wm
}

type entry struct {
	tp     tp
	offset int64
	key    []byte
	rec    DeliveryRecord
	due    time.Time
	read   time.Time // when this deliverer read it (ReparkAfter counts from it)
	// config is the record's ConfigHeader (0: none): the integrations
	// topic's offset its event was accepted under.
	config int64
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Deliverer{opts: opts, policy: opts.Policy.WithDefaults(), parts: map[tp]*partState{}}
}

// Run consumes the integration's delivery and retry topics in its group
// until ctx is done. Every record read is held until it is settled: sent
// and final (delivered, duplicate, dead-lettered to dlq-events), or handed
// on (produced, acknowledged) to the retry topic with its next due time.
// A partition's committed offset is its lowest record not settled, so a
// crash or a rebalance makes the next owner read again (and send again,
// with the same item ID) only records whose fate was not yet
// acknowledged. A record not due yet never stops the records behind it:
// they are read and sent while it waits (see docs/kafka.md).
func (d *Deliverer) Run(ctx context.Context) error {
	id := d.opts.IntegrationID
	if d.opts.Registry == nil || id == "" {
		return errors.New("kafka: deliver: a registry and an integration ID are required")
	}
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
	for {
		wait := d.nextWait()
		pctx, cancel := context.WithTimeout(ctx, wait)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) && !errors.Is(e.Err, context.Canceled) {
				d.opts.Logger.Warn("fetch error", "topic", e.Topic, "partition", e.Partition, "error", e.Err)
			}
		}
		if err := d.step(ctx, cl, fs); err != nil {
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

// nextWait is how long a poll may wait for records: until the earliest
// held record is due (at least 1 ms, at most 1 s).
func (d *Deliverer) nextWait() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opts.Now()
	wait := time.Second
	for _, ps := range d.parts {
		for _, e := range ps.pending {
			wait = min(wait, e.due.Sub(now))
		}
	}
	return max(wait, time.Millisecond)
}

// outcome is what an attempt leads to.
type outcome struct {
	e      *entry
	keep   bool // not settled: looked at again after later (config not applied yet)
	later  time.Duration
	out    *kgo.Record // to produce before the record is settled
	final  *send.FinalInfo
	crash  bool
	repark bool // out is the record again, produced to the retry topic's tail
}

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
		if err := json.Unmarshal(r.Value, &rec); err != nil || rec.ID == "" {
			// Not ours to send (nothing to rebuild a request from): logged
			// and passed over, never silently.
			d.opts.Logger.Error("unreadable delivery record skipped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "error", errText(err))
			return
		}
		due := rec.DueAt
		if due.IsZero() {
			due = now
		}
		ps.pending[r.Offset] = &entry{tp: k, offset: r.Offset, key: r.Key, rec: rec, due: due, read: now, config: configOffset(r)}
	})
	// The due records, earliest first, up to Concurrency; the ones held
	// ReparkAfter and not due go to the retry topic's tail as they are.
	var due []*entry
	var outs []outcome
	for _, ps := range d.parts {
		for _, e := range ps.pending {
			switch {
			case !e.due.After(now):
				due = append(due, e)
			case now.Sub(e.read) >= d.opts.ReparkAfter:
				outs = append(outs, outcome{e: e, out: d.retryRecord(e, e.rec), repark: true})
			}
		}
	}
	slices.SortFunc(due, func(a, b *entry) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return int(a.offset - b.offset)
	})
	if len(due) > d.opts.Concurrency {
		due = due[:d.opts.Concurrency]
	}
	tried := make([]outcome, len(due))
	var wg sync.WaitGroup
	actx := context.WithoutCancel(ctx) // attempts in flight finish
	for i, e := range due {
		wg.Go(func() { tried[i] = d.attempt(actx, e) })
	}
	wg.Wait()
	outs = append(outs, tried...)
	for _, o := range outs {
		if o.crash {
			d.crashed.Store(true)
			return errCrashed
		}
	}
	var produce []*kgo.Record
	for _, o := range outs {
		if o.out != nil {
			produce = append(produce, o.out)
		}
	}
	if len(produce) > 0 {
		pctx, cancel := context.WithTimeout(actx, 30*time.Second)
		err := cl.ProduceSync(pctx, produce...).FirstErr()
		cancel()
		if err != nil {
			// Nothing settled: the records are read again by whoever owns
			// their partitions next.
			return fmt.Errorf("kafka: deliver: produce: %w", err)
		}
	}
	for _, o := range outs {
		if o.keep {
			o.e.due = d.opts.Now().Add(o.later)
			continue
		}
		delete(d.parts[o.e.tp].pending, o.e.offset)
		if o.repark {
			d.Stats.Reparked.Add(1)
		}
		if o.final != nil {
			d.opts.metrics().Final(*o.final)
		}
	}
	return d.commitLocked(actx, cl, nil)
}

// commitLocked commits the watermark of every partition (only, when not
// nil) that moved, and pauses or resumes fetching by how much is held.
func (d *Deliverer) commitLocked(ctx context.Context, cl *kgo.Client, only map[string][]int32) error {
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var pause, resume = map[string][]int32{}, map[string][]int32{}
	for k, ps := range d.parts {
		if only != nil && !slices.Contains(only[k.topic], k.partition) {
			continue
		}
		if wm := ps.watermark(); wm > ps.committed {
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

// revoked commits what is settled of the partitions taken away, and
// forgets them: their next owner reads their unsettled records again.
func (d *Deliverer) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.crashed.Load() {
		_ = d.commitLocked(ctx, cl, revoked)
	}
	d.forgetLocked(revoked)
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
	log := d.opts.Logger.With("integration", id, "item", rec.ID, "message_id", rec.MessageID)
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
	if res.Outcome != runtime.Deliver || rec.Request >= len(res.Requests) {
		msg := fmt.Sprintf("no longer deliverable: %s %s: %s", res.Outcome, res.Reason, res.Message)
		if res.Reason == runtime.ReasonConsentDenied {
			log.Warn("dropped", "reason", msg)
			d.Stats.Skipped.Add(1)
			return outcome{e: e, final: d.final(rec, outbox.Skipped, 0, msg, now)}
		}
		return d.dead(e, in, rec, ErrorNotDeliverable, 0, msg, now)
	}
	a := d.opts.Sender.DoItem(ctx, in, id, rec.ID, res.Requests[rec.Request])
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
		Status: status, Message: msg, MessageID: rec.MessageID, VendorEvent: rec.VendorEvent, At: now}
}

func errText(err error) string {
	if err == nil {
		return "no item id"
	}
	return err.Error()
}
