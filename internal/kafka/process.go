package kafka

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// ProcessGroup is the processors' consumer group on raw-events.
const ProcessGroup = "blueprint-process"

// ProcessorOptions configure a Processor.
type ProcessorOptions struct {
	Config   Config
	Registry Registry
	// Group overrides ProcessGroup.
	Group string
	// OnDecision, when set, is called for each event and integration once
	// the records it led to are acknowledged.
	OnDecision func(delivery.Decision)
	Logger     *slog.Logger
	Now        func() time.Time
}

// ProcessStats counts what a Processor did.
type ProcessStats struct {
	Events, Requests, Skipped, Rejected atomic.Int64
}

// Processor is the process role. Run it; Stats counts.
type Processor struct {
	opts  ProcessorOptions
	Stats ProcessStats
}

// NewProcessor returns a Processor.
func NewProcessor(opts ProcessorOptions) *Processor {
	if opts.Group == "" {
		opts.Group = ProcessGroup
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Processor{opts: opts}
}

// Run consumes raw-events in the group until ctx is done. For each poll
// it evaluates every event for every binding, produces the requests and
// rejects, waits for their acknowledgement, and only then commits the
// poll's offsets: a crash in between re-reads the events, and their
// requests are produced again with the same item IDs (the deliverer's
// vendor sees the same identity). A produce that fails stops Run with the
// error, offsets uncommitted.
func (p *Processor) Run(ctx context.Context) error {
	if p.opts.Registry == nil {
		return errors.New("kafka: process: no registry")
	}
	cl, err := p.opts.Config.client(append(p.opts.Config.member(p.opts.Group),
		kgo.ConsumeTopics(RawEvents),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return fmt.Errorf("kafka: process: %w", err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errs := fs.Errors(); len(errs) > 0 {
			for _, e := range errs {
				p.opts.Logger.Warn("fetch error", "topic", e.Topic, "partition", e.Partition, "error", e.Err)
			}
		}
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
		if len(recs) > 0 {
			p.waitConfig(ctx, cl, recs)
			if ctx.Err() != nil {
				return nil // uncommitted: read again later
			}
			if err := p.handle(ctx, cl, recs); err != nil {
				if ctx.Err() != nil {
					return nil // interrupted: uncommitted, read again later
				}
				return err
			}
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("kafka: process: commit: %w", err)
			}
		}
	}
}

// configWait is how often a processor waiting for its registry (see
// ConfigWaiter) says so in the log (a variable for tests).
var configWait = 10 * time.Second

// waitConfig waits, when the registry follows IntegrationsTopic, until it
// has applied every config change published before recs were accepted
// (their ConfigHeader) and binds every enabled integration: an event is
// never evaluated without an integration it should reach, which would
// drop it for that integration. It waits as long as it takes (the
// records stay uncommitted), saying why every configWait, until ctx is
// done.
func (p *Processor) waitConfig(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) {
	w, ok := p.opts.Registry.(ConfigWaiter)
	if !ok {
		return
	}
	var need int64
	for _, r := range recs {
		need = max(need, configOffset(r))
	}
	if need > 0 && !w.HasConfig(need) {
		// A header beyond the topic's end was stamped by no publisher
		// (written by hand, or by a hostile producer): waiting for it
		// would hold these records, and the partition, for ever. Such
		// records wait only for the topic's end, and are logged.
		if end, err := integrationsEnd(ctx, cl); err == nil && need > end {
			need = 0
			for _, r := range recs {
				if at := configOffset(r); at > end {
					p.opts.Logger.Error("raw-events record names a config offset beyond the integrations topic's end; evaluated with the config up to the end", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "config_offset", at, "end", end)
				}
				need = max(need, min(configOffset(r), end))
			}
		}
	}
	for waited := time.Duration(0); ; waited += configWait {
		wctx, cancel := context.WithTimeout(ctx, configWait)
		err := w.WaitConfig(wctx, need)
		cancel()
		if err == nil || ctx.Err() != nil {
			return
		}
		p.opts.Logger.Warn("raw-events held: the integrations are not all known here yet", "events", len(recs), "waited_s", (waited + configWait).Seconds(), "reason", err.Error())
	}
}

func (p *Processor) handle(ctx context.Context, cl *kgo.Client, recs []*kgo.Record) error {
	bs := p.opts.Registry.Bindings()
	now := p.opts.Now()
	var out []*kgo.Record
	var decisions []delivery.Decision
	var skipped, rejected, requests int64
	// The bindings a record goes to, and their results: the event is
	// checked once and scanned once per blueprint variant they share
	// (delivery.EvaluateEach), not once per integration.
	var to []delivery.Binding
	var ins []*runtime.Integration
	var results []runtime.Result
	for ei, r := range recs {
		ev := r.Value
		evNow := now.Add(time.Duration(ei))
		source, sourced := recordSource(r)
		to, ins = to[:0], ins[:0]
		for _, b := range bs {
			if sourced && len(b.Sources) > 0 && !slices.Contains(b.Sources, source) {
				continue // narrowed to other sources
			}
			to, ins = append(to, b), append(ins, b.Integration)
		}
		results = delivery.EvaluateEach(results[:0], ev, ins)
		for i, b := range to {
			d, rs, err := decide(b, r.Key, ev, results[i], evNow)
			if err != nil {
				return err
			}
			passConfigOffset(r, rs)
			out = append(out, rs...)
			switch d.Result.Outcome {
			case runtime.Deliver:
				requests += int64(len(d.Items))
			case runtime.Skip:
				skipped++
			case runtime.Reject:
				rejected++
			}
			decisions = append(decisions, d)
		}
	}
	if len(out) > 0 {
		if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil {
			return fmt.Errorf("kafka: process: produce: %w", err)
		}
	}
	p.Stats.Events.Add(int64(len(recs)))
	p.Stats.Requests.Add(requests)
	p.Stats.Skipped.Add(skipped)
	p.Stats.Rejected.Add(rejected)
	if p.opts.OnDecision != nil {
		for _, d := range decisions {
			p.opts.OnDecision(d)
		}
	}
	return nil
}

// Evaluate is what a processor does with one event for one binding: the
// decision, and the records it leads to, keyed by key: each request of a
// delivered event to delivery-{id} (attempts 0, the item ID of
// send.Items), or a reject to dlq-events (the event scrubbed of the
// integration's secrets). An event that carries a secret config value of
// the integration is rejected (invalid_event) and never put on a delivery
// topic. The dead-letter replay of a reject calls it for the one
// integration. The error is a record that could not be encoded.
func Evaluate(b delivery.Binding, key, event []byte, now time.Time) (delivery.Decision, []*kgo.Record, error) {
	return decide(b, key, event, b.Integration.Evaluate(event), now)
}

// decide is Evaluate with the integration's result already made (the
// processor makes every binding's at once).
func decide(b delivery.Binding, key, event []byte, res runtime.Result, now time.Time) (delivery.Decision, []*kgo.Record, error) {
	d := delivery.Decision{Integration: b.Name, In: b.Integration, Event: event, Result: res}
	key = recordKey(key)
	var out []*kgo.Record
	if d.Result.Outcome == runtime.Deliver {
		its, err := send.Items(b.Integration, b.Name, b.Ref, event, d.Result, now)
		if err != nil {
			// An event holding the integration's own secret is never put
			// on a topic, as the outbox never stores it.
			d.Result = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent, Event: d.Result.Event, Message: err.Error()}
		}
		d.Items = its
		for _, it := range its {
			rec := DeliveryRecord{ID: it.ID, IntegrationID: b.Name, Blueprint: it.Blueprint, Variant: it.Variant,
				Request: it.Request, MessageID: it.MessageID, VendorEvent: it.VendorEvent, Event: it.Event, CreatedAt: it.CreatedAt}
			if it.Request >= 0 && it.Request < len(d.Result.Requests) {
				rr := b.Integration.Redacted(d.Result.Requests[it.Request])
				rec.Built = &BuiltRequest{Method: rr.Method, URL: rr.URL, Headers: rr.Headers, Body: string(rr.Body)}
			}
			v, err := json.Marshal(rec)
			if err == nil && rec.Built != nil && len(key)+len(v) > MaxRecordBytes {
				// The view is for reading only: a record too large
				// with it goes without it.
				rec.Built = nil
				v, err = json.Marshal(rec)
			}
			if err != nil {
				return d, nil, fmt.Errorf("kafka: process: %w", err)
			}
			if n := len(key) + len(v); n > MaxRecordBytes {
				// The brokers would refuse it (or a deliverer pass it
				// over): rejected, as the ingest API refuses an event
				// over 64 KiB.
				d.Result = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent, Event: d.Result.Event,
					Message: fmt.Sprintf("the event's delivery record is too large: %d bytes; the limit is %d", n, MaxRecordBytes)}
				d.Items, out = nil, nil
				break
			}
			out = append(out, &kgo.Record{Topic: DeliveryTopic(b.Name), Key: key, Value: v})
		}
	}
	if d.Result.Outcome == runtime.Reject {
		rr := delivery.NewRejectRecord(b.Name, b.Integration, event, d.Result)
		v, err := json.Marshal(rr)
		if err != nil {
			return d, nil, fmt.Errorf("kafka: process: %w", err)
		}
		if n := len(key) + len(v); n > MaxRecordBytes {
			// Quoted (not JSON) or escaped, an event can grow six times
			// over: kept as null, as embedded mode keeps no event too
			// large to keep. A produce the brokers refuse would stop the
			// processor on this record at every restart.
			rr.OriginalEvent = json.RawMessage("null")
			rr.Details = fmt.Sprintf("%s (original_event dropped: the record would be %d bytes; the limit is %d)", rr.Details, n, MaxRecordBytes)
			if v, err = json.Marshal(rr); err != nil {
				return d, nil, fmt.Errorf("kafka: process: %w", err)
			}
		}
		out = append(out, &kgo.Record{Topic: DLQEvents, Key: key, Value: v})
	}
	return d, out, nil
}

// maxKeyBytes bounds the key of a record the processor produces: a longer
// raw-events key (the ingest API's keys are user and message IDs, 64 KiB
// at most; a hostile producer's may be near 1 MiB) is replaced by its
// SHA-256, so one user's records still share a key and a partition.
const maxKeyBytes = 1 << 10

func recordKey(key []byte) []byte {
	if len(key) <= maxKeyBytes {
		return key
	}
	sum := sha256.Sum256(key)
	return []byte("sha256:" + hex.EncodeToString(sum[:]))
}

// passConfigOffset gives the delivery records made from raw-events record
// r its ConfigHeader: a deliverer that follows IntegrationsTopic sends a
// request only once it has applied the config its event was accepted
// under (a key rotated before the event is never sent with the old key).
func passConfigOffset(r *kgo.Record, out []*kgo.Record) {
	for _, h := range r.Headers {
		if h.Key != ConfigHeader {
			continue
		}
		for _, o := range out {
			if o.Topic != DLQEvents {
				o.Headers = append(o.Headers, h)
			}
		}
		return
	}
}

// recordSource is the source a raw-events record names (SourceHeader).
func recordSource(r *kgo.Record) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == SourceHeader {
			return string(h.Value), true
		}
	}
	return "", false
}
