package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// IntegrationsTopic carries every integration's current state to the
// processes that do not own the service's state (roles process and
// deliver): one record per integration keyed by its ID, produced by the
// process that owns the state after every change and before the change is
// answered; a deletion is a tombstone (a record with no value). It is
// compacted (the newest record of each integration is kept for ever) and
// has one partition, so that its offsets order every change: see
// ConfigHeader.
const IntegrationsTopic = "integrations"

// ConfigHeader is the raw-events record header holding, in decimal, the
// offset of IntegrationsTopic below which every config change was
// published when the event was accepted. A processor whose registry is
// fed from the topic evaluates the event only once it has applied the
// topic up to there, so an event accepted after an install is never
// evaluated without that integration.
const ConfigHeader = "config-offset"

// OwnerHeader is the header of every IntegrationsTopic record (tombstones
// too) naming the state that published it: its owner ID, random, created
// once with the state (not secret). The value format is unchanged, so a
// follower of an earlier release reads the record as before; a record
// without the header (an earlier release's) is the current owner's
// history.
const OwnerHeader = "owner"

// InstanceHeader is the header naming the process that published a
// record: a random ID per start of the owner. Two processes running one
// state (a copied state directory) stamp the same owner ID with two
// instance IDs.
const InstanceHeader = "owner-instance"

// TakeOverHeader ("1") marks the records an owner publishes when it takes
// the topic over from another owner explicitly (serve --kafka-take-over):
// from that record on, its owner is the topic's.
const TakeOverHeader = "owner-take-over"

// Ownership is who publishes IntegrationsTopic, as read up to a point:
// Owner is the owner ID of the first stamped record, or of the latest
// take-over record (empty: no stamped record yet), Since and SinceOffset
// that record's time and offset. Other is the first owner ID that
// published after it without taking over (empty: none), OtherSince and
// OtherOffset its first such record's; its records are not applied.
type Ownership struct {
	Owner       string
	Since       time.Time
	SinceOffset int64
	Other       string
	OtherSince  time.Time
	OtherOffset int64
}

// IntegrationRecord is the value of a record of IntegrationsTopic: an
// integration's state and its current revision's config. Config holds the
// config without its secret values; Secrets holds each of those, its JSON
// sealed with AES-256-GCM under the deployment's shared secret key (the
// service seals and opens them; this package never sees a secret in
// clear).
type IntegrationRecord struct {
	ID           string   `json:"id"`
	Vendor       string   `json:"vendor"`
	Version      string   `json:"version"`
	Name         string   `json:"name"`
	Variant      string   `json:"variant"`
	DeliveryMode string   `json:"delivery_mode"`
	Revision     int      `json:"revision_number"`
	Enabled      bool     `json:"enabled"`
	SourceIDs    []string `json:"source_ids"`
	// Config is a JSON object: the non-secret config values.
	Config json.RawMessage `json:"config"`
	// Secrets are the sealed secret values by config key.
	Secrets   map[string][]byte `json:"secrets_enc,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
}

// SameState reports whether r and o describe the same integration state:
// every field but the sealed values and UpdatedAt, the config being
// identified by the integration and its revision number (revisions are
// immutable).
func (r *IntegrationRecord) SameState(o *IntegrationRecord) bool {
	return r.ID == o.ID && r.Vendor == o.Vendor && r.Version == o.Version && r.Name == o.Name && r.Variant == o.Variant &&
		r.DeliveryMode == o.DeliveryMode && r.Revision == o.Revision && r.Enabled == o.Enabled && slices.Equal(r.SourceIDs, o.SourceIDs)
}

// EnsureIntegrationsTopic creates IntegrationsTopic (one partition,
// cleanup.policy=compact) unless it exists, and checks one that exists (or
// that this client may not create, the operators having made it): it must
// have one partition (its offsets order changes) and be compacted only (a
// deleting policy would drop integrations unchanged for retention.ms, and
// a process started later would not know them).
func EnsureIntegrationsTopic(ctx context.Context, cfg Config) error {
	cl, err := cfg.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	compact := "compact"
	res, err := adm.CreateTopics(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, IntegrationsTopic)
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", IntegrationsTopic, err)
	}
	r, err := res.On(IntegrationsTopic, nil)
	if err != nil {
		return fmt.Errorf("kafka: create topic %s: %w", IntegrationsTopic, err)
	}
	switch {
	case r.Err == nil:
		return nil
	case errors.Is(r.Err, kerr.TopicAlreadyExists), errors.Is(r.Err, kerr.TopicAuthorizationFailed), errors.Is(r.Err, kerr.ClusterAuthorizationFailed):
	default:
		return fmt.Errorf("kafka: create topic %s: %w", IntegrationsTopic, r.Err)
	}
	how := "create it with 1 partition and cleanup.policy=compact"
	tds, err := adm.ListTopics(ctx, IntegrationsTopic)
	if err != nil {
		return fmt.Errorf("kafka: topic %s: %w", IntegrationsTopic, err)
	}
	td, ok := tds[IntegrationsTopic]
	if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("kafka: topic %s does not exist and could not be created (%v): %s", IntegrationsTopic, r.Err, how)
	}
	if td.Err != nil {
		return fmt.Errorf("kafka: topic %s: %w", IntegrationsTopic, td.Err)
	}
	if n := len(td.Partitions); n != 1 {
		return fmt.Errorf("kafka: topic %s has %d partitions; it must have 1 (its offsets order config changes): %s", IntegrationsTopic, n, how)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, IntegrationsTopic)
	if err != nil {
		return fmt.Errorf("kafka: topic %s: describe configs: %w", IntegrationsTopic, err)
	}
	rc, err := rcs.On(IntegrationsTopic, nil)
	if err != nil || rc.Err != nil {
		return fmt.Errorf("kafka: topic %s: describe configs: %w", IntegrationsTopic, errors.Join(err, rc.Err))
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && c.MaybeValue() != "compact" {
			return fmt.Errorf("kafka: topic %s has cleanup.policy=%s; it must be compact (a deleting policy drops integrations unchanged for retention.ms): set cleanup.policy=compact", IntegrationsTopic, c.MaybeValue())
		}
	}
	return nil
}

// ConfigPublisher produces integration records (the process that owns the
// state). It is safe for concurrent use, but publishes should be
// serialised by the caller so that the topic's order is the changes'.
type ConfigPublisher struct {
	cl *kgo.Client
	// Owner, when set, is stamped on every record (OwnerHeader), with
	// Instance (InstanceHeader).
	Owner, Instance string
}

// NewConfigPublisher connects a producer (acks=all, idempotent).
func NewConfigPublisher(cfg Config) (*ConfigPublisher, error) {
	cl, err := cfg.client()
	if err != nil {
		return nil, fmt.Errorf("kafka: integrations: %w", err)
	}
	return &ConfigPublisher{cl: cl}, nil
}

// Publish produces recs and a tombstone for each of deleted, in that
// order, and returns once every one is acknowledged (acks=all), with the
// offset after the last: a reader that has applied the topic up to there
// has seen them all. Nothing to publish returns 0.
func (p *ConfigPublisher) Publish(ctx context.Context, recs []IntegrationRecord, deleted []string) (int64, error) {
	return p.PublishAs(ctx, recs, deleted, false)
}

// PublishAs is Publish; takeOver also stamps TakeOverHeader on every
// record: the publisher's Owner takes the topic over.
func (p *ConfigPublisher) PublishAs(ctx context.Context, recs []IntegrationRecord, deleted []string, takeOver bool) (int64, error) {
	var hs []kgo.RecordHeader
	if p.Owner != "" {
		hs = append(hs, kgo.RecordHeader{Key: OwnerHeader, Value: []byte(p.Owner)})
		if p.Instance != "" {
			hs = append(hs, kgo.RecordHeader{Key: InstanceHeader, Value: []byte(p.Instance)})
		}
		if takeOver {
			hs = append(hs, kgo.RecordHeader{Key: TakeOverHeader, Value: []byte("1")})
		}
	}
	out := make([]*kgo.Record, 0, len(recs)+len(deleted))
	for _, r := range recs {
		v, err := json.Marshal(r)
		if err != nil {
			return 0, fmt.Errorf("kafka: integrations: %w", err)
		}
		out = append(out, &kgo.Record{Topic: IntegrationsTopic, Key: []byte(r.ID), Value: v, Headers: slices.Clone(hs)})
	}
	for _, id := range deleted {
		out = append(out, &kgo.Record{Topic: IntegrationsTopic, Key: []byte(id), Headers: slices.Clone(hs)}) // tombstone
	}
	if len(out) == 0 {
		return 0, nil
	}
	res := p.cl.ProduceSync(ctx, out...)
	if err := res.FirstErr(); err != nil {
		return 0, fmt.Errorf("kafka: produce to %s: %w", IntegrationsTopic, err)
	}
	var next int64
	for _, r := range res {
		next = max(next, r.Record.Offset+1)
	}
	return next, nil
}

// Close disconnects.
func (p *ConfigPublisher) Close() { p.cl.Close() }

// ConfigEntry is the newest record of one integration on the topic:
// Record, or Err when its value is not an integration record (the
// integration is then known but unusable until a readable record
// replaces it). Offset is the record's.
type ConfigEntry struct {
	Record IntegrationRecord
	Err    error
	Offset int64
}

// ConfigReader reads IntegrationsTopic from its start, with no consumer
// group (every process reads all of it), and keeps what it read: the
// newest entry of each integration.
type ConfigReader struct {
	// OnRefused, when set, is told of each record not applied: a
	// readable record whose revision is older than the integration's
	// entry (set it before the first read).
	OnRefused func(id string, err error)
	// OnOtherOwner, when set, is told of the first record published by
	// another owner than the topic's (Ownership.Other), once.
	OnOtherOwner func(Ownership)
	// OnStamped, when set, is told the owner and instance of every
	// stamped record read (set it before the first read, or before
	// Follow).
	OnStamped func(owner, instance string, offset int64)

	cl      *kgo.Client
	entries map[string]ConfigEntry
	next    int64
	keys    map[string]bool // every key read, tombstoned ones too
	omu     sync.Mutex
	owner   Ownership
}

// Ownership is who publishes the topic, as read so far (safe to call
// while Follow runs).
func (r *ConfigReader) Ownership() Ownership {
	r.omu.Lock()
	defer r.omu.Unlock()
	return r.owner
}

// Keys is every integration ID read so far, tombstoned ones included
// (not safe to call while Follow runs).
func (r *ConfigReader) Keys() []string { return slices.Sorted(maps.Keys(r.keys)) }

// own follows the topic's ownership through rec, and reports whether
// rec is to be applied: a record stamped by another owner than the
// topic's, without taking it over, is not (the first owner stays the
// topic's until one takes over explicitly). A record without the header
// (an earlier release's) is the current owner's.
func (r *ConfigReader) own(rec *kgo.Record) bool {
	var owner, instance string
	takeOver := false
	for _, h := range rec.Headers {
		switch h.Key {
		case OwnerHeader:
			owner = string(h.Value)
		case InstanceHeader:
			instance = string(h.Value)
		case TakeOverHeader:
			takeOver = string(h.Value) == "1"
		}
	}
	if owner == "" {
		return true
	}
	if r.OnStamped != nil {
		r.OnStamped(owner, instance, rec.Offset)
	}
	r.omu.Lock()
	o := &r.owner
	switch {
	case o.Owner == "" || (takeOver && o.Owner != owner):
		*o = Ownership{Owner: owner, Since: rec.Timestamp, SinceOffset: rec.Offset}
	case takeOver && o.Owner == owner:
		o.Other, o.OtherSince, o.OtherOffset = "", time.Time{}, 0 // taken over again: the intruder's records are gone
	case owner != o.Owner:
		first := o.Other == ""
		if first {
			o.Other, o.OtherSince, o.OtherOffset = owner, rec.Timestamp, rec.Offset
		}
		cp := *o
		r.omu.Unlock()
		if first && r.OnOtherOwner != nil {
			r.OnOtherOwner(cp)
		}
		return false
	}
	r.omu.Unlock()
	return true
}

// NewConfigReader connects a reader positioned at the topic's start.
func NewConfigReader(cfg Config) (*ConfigReader, error) {
	cl, err := cfg.client(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{IntegrationsTopic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: integrations: %w", err)
	}
	return &ConfigReader{cl: cl, entries: map[string]ConfigEntry{}, keys: map[string]bool{}}, nil
}

// CatchUp reads until the end of the topic as it is when called (its high
// watermark), and returns every integration's entry and the offset after
// the last record read. The newest record of a partition is never
// compacted away, so the end is always reached.
func (r *ConfigReader) CatchUp(ctx context.Context) (map[string]ConfigEntry, int64, error) {
	ends, err := kadm.NewClient(r.cl).ListEndOffsets(ctx, IntegrationsTopic)
	if err != nil {
		return nil, 0, fmt.Errorf("kafka: %s: end offset: %w", IntegrationsTopic, err)
	}
	end, ok := ends.Lookup(IntegrationsTopic, 0)
	if !ok {
		return nil, 0, fmt.Errorf("kafka: %s: no end offset for partition 0", IntegrationsTopic)
	}
	if end.Err != nil {
		return nil, 0, fmt.Errorf("kafka: %s: end offset: %w", IntegrationsTopic, end.Err)
	}
	for r.next < end.Offset {
		if _, err := r.poll(ctx); err != nil {
			return nil, 0, fmt.Errorf("kafka: reading %s (at offset %d of %d): %w", IntegrationsTopic, r.next, end.Offset, err)
		}
	}
	return maps.Clone(r.entries), r.next, nil
}

// Follow keeps reading until ctx is done, calling apply with every
// integration's entry and the offset after the last record read, after
// each poll that read records. It returns nil when ctx is done, or the
// first fetch error kgo does not retry itself (call it again to go on).
func (r *ConfigReader) Follow(ctx context.Context, apply func(map[string]ConfigEntry, int64)) error {
	for {
		n, err := r.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("kafka: reading %s: %w", IntegrationsTopic, err)
		}
		if n > 0 {
			apply(maps.Clone(r.entries), r.next)
		}
	}
}

// Close disconnects.
func (r *ConfigReader) Close() { r.cl.Close() }

func (r *ConfigReader) poll(ctx context.Context) (int, error) {
	fs := r.cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var errs []string
	for _, e := range fs.Errors() {
		errs = append(errs, e.Err.Error())
	}
	n := 0
	fs.EachRecord(func(rec *kgo.Record) {
		n++
		r.next = max(r.next, rec.Offset+1)
		id := string(rec.Key)
		if id == "" {
			return // not an integration's: a compacted topic refuses keyless records anyway
		}
		r.keys[id] = true
		if !r.own(rec) {
			return
		}
		if rec.Value == nil {
			delete(r.entries, id)
			return
		}
		e := ConfigEntry{Offset: rec.Offset}
		if err := json.Unmarshal(rec.Value, &e.Record); err != nil {
			e.Err = fmt.Errorf("record at offset %d is not an integration record: %w", rec.Offset, err)
		} else if e.Record.ID != id {
			e.Err = fmt.Errorf("record at offset %d is keyed %q but describes integration %q", rec.Offset, id, e.Record.ID)
		} else if old, ok := r.entries[id]; ok && old.Err == nil && e.Record.Revision < old.Record.Revision {
			// The publisher never goes back: an older revision after a
			// newer one is an old record produced again (a rotated-out
			// key brought back). The newer one stays.
			if r.OnRefused != nil {
				r.OnRefused(id, fmt.Errorf("integration %s: record at offset %d has revision %d, older than revision %d applied from offset %d: not applied (the publisher never goes back; an old record was produced again)",
					id, rec.Offset, e.Record.Revision, old.Record.Revision, old.Offset))
			}
			return
		}
		r.entries[id] = e
	})
	if len(errs) > 0 {
		return n, errors.New(strings.Join(errs, "; "))
	}
	return n, nil
}

// configOffset is the ConfigHeader of a raw-events record (0: none or
// unreadable).
func configOffset(r *kgo.Record) int64 {
	for _, h := range r.Headers {
		if h.Key == ConfigHeader {
			n, err := strconv.ParseInt(string(h.Value), 10, 64)
			if err != nil || n < 0 {
				return 0
			}
			return n
		}
	}
	return 0
}

// integrationsEnd is the end offset of IntegrationsTopic. Every
// ConfigHeader a publisher stamped is at most the end it had then, and the
// end never goes back: a header beyond it was not stamped by a publisher,
// and waiting for it would hold its records for ever.
func integrationsEnd(ctx context.Context, cl *kgo.Client) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, IntegrationsTopic)
	if err != nil {
		return 0, err
	}
	end, ok := ends.Lookup(IntegrationsTopic, 0)
	if !ok {
		return 0, fmt.Errorf("no end offset for %s", IntegrationsTopic)
	}
	return end.Offset, end.Err
}
