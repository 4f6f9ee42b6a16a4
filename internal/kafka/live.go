package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The live stream across processes (docs/kafka.md, "Live events across
// processes"). The process that owns the state serves the live page; the
// processes of roles process and deliver make the decisions, attempts and
// finals it shows. While the page is watched, the owner says so on
// LiveWatchTopic, and the others copy their live steps to LiveEventsTopic,
// which the owner reads. Both topics hold nothing that must last: short
// retention, delete policy; a record lost is a step the page does not show.
const (
	// LiveEventsTopic carries live steps (the service's live.Message as
	// JSON, redacted), keyed by integration ID.
	LiveEventsTopic = "live-events"
	// LiveWatchTopic carries the owner's "someone is watching" records
	// (one partition).
	LiveWatchTopic = "live-watch"
	// LiveRetention is the retention.ms the live topics are created with.
	LiveRetention = time.Hour
	// MaxLiveRecordBytes bounds a record of LiveEventsTopic: a producer
	// never makes a bigger one, and a reader drops it unread.
	MaxLiveRecordBytes = 64 << 10
)

// EnsureLiveTopics creates LiveEventsTopic with the given partitions and
// LiveWatchTopic with one, both cleanup.policy=delete and retention.ms one
// hour, leaving those that exist alone. Where the client may not create
// topics, a missing one is an error naming it (the caller runs without the
// live stream across processes).
func EnsureLiveTopics(ctx context.Context, cfg Config, partitions int32) error {
	cl, err := cfg.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	del, ret := "delete", strconv.FormatInt(LiveRetention.Milliseconds(), 10)
	configs := map[string]*string{"cleanup.policy": &del, "retention.ms": &ret}
	var refused []string
	for topic, parts := range map[string]int32{LiveEventsTopic: partitions, LiveWatchTopic: 1} {
		res, err := adm.CreateTopics(ctx, parts, -1, configs, topic)
		if err != nil {
			return fmt.Errorf("kafka: create topic %s: %w", topic, err)
		}
		r, err := res.On(topic, nil)
		if err != nil {
			return fmt.Errorf("kafka: create topic %s: %w", topic, err)
		}
		switch {
		case r.Err == nil, errors.Is(r.Err, kerr.TopicAlreadyExists):
		case errors.Is(r.Err, kerr.TopicAuthorizationFailed), errors.Is(r.Err, kerr.ClusterAuthorizationFailed):
			refused = append(refused, topic)
		default:
			return fmt.Errorf("kafka: create topic %s: %w", topic, r.Err)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	tds, err := adm.ListTopics(ctx, refused...)
	if err != nil {
		return fmt.Errorf("kafka: topics %s: %w", strings.Join(refused, ", "), err)
	}
	for _, t := range refused {
		if td, ok := tds[t]; !ok || td.Err != nil {
			return fmt.Errorf("kafka: topic %s does not exist and this client may not create it: create it (cleanup.policy=delete, retention.ms=%d)", t, LiveRetention.Milliseconds())
		}
	}
	return nil
}

// LiveProducer produces live records without ever blocking its caller:
// acks from the leader only, no idempotence, a bounded buffer (a record
// that does not fit is refused at once), a few retries within 10 s, then
// the record is given up.
type LiveProducer struct {
	cl *kgo.Client
}

// Bounds of a LiveProducer's buffer.
const (
	liveMaxBufferedRecords = 1024
	liveMaxBufferedBytes   = 8 << 20
	liveDeliveryTimeout    = 10 * time.Second
)

// NewLiveProducer connects a LiveProducer.
func NewLiveProducer(cfg Config) (*LiveProducer, error) {
	cl, err := cfg.client(
		kgo.RequiredAcks(kgo.LeaderAck()),
		kgo.DisableIdempotentWrite(),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.MaxBufferedRecords(liveMaxBufferedRecords),
		kgo.MaxBufferedBytes(liveMaxBufferedBytes),
		kgo.RecordDeliveryTimeout(liveDeliveryTimeout),
		kgo.RecordRetries(3),
		kgo.ProducerBatchMaxBytes(MaxLiveRecordBytes*4),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: live: %w", err)
	}
	return &LiveProducer{cl: cl}, nil
}

// TryProduce buffers a record and returns at once; done is told its fate
// from another goroutine (kgo.ErrMaxBuffered when the buffer is full).
// kgo hands failed records to done through a queue of its own: only while
// thousands of failures wait there can TryProduce wait for it briefly.
func (p *LiveProducer) TryProduce(topic string, key, value []byte, done func(error)) {
	p.cl.TryProduce(context.Background(), &kgo.Record{Topic: topic, Key: key, Value: value}, func(_ *kgo.Record, err error) { done(err) })
}

// ProduceSync produces a record and waits for its acknowledgement.
func (p *LiveProducer) ProduceSync(ctx context.Context, topic string, key, value []byte) error {
	return p.cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: key, Value: value}).FirstErr()
}

// Close disconnects, giving up what is still buffered.
func (p *LiveProducer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.cl.Flush(ctx)
	p.cl.Close()
}

// Tail reads the records a topic gets from now on: every partition (those
// added later within 30 s), from its end, with no consumer group and no
// committed offsets.
type Tail struct {
	cl *kgo.Client
}

// NewTail connects a Tail of topic.
func NewTail(cfg Config, topic string) (*Tail, error) {
	cl, err := cfg.client(
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.FetchMaxBytes(8<<20),
		kgo.MetadataMaxAge(30*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: %s: %w", topic, err)
	}
	return &Tail{cl: cl}, nil
}

// Run calls each with every record read until ctx is done (nil), or until
// a fetch error kgo does not retry itself (call Run again to go on).
func (t *Tail) Run(ctx context.Context, each func(*kgo.Record)) error {
	for {
		fs := t.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var errs []string
		for _, e := range fs.Errors() {
			errs = append(errs, e.Topic+": "+e.Err.Error())
		}
		fs.EachRecord(each)
		if len(errs) > 0 {
			return errors.New("kafka: " + strings.Join(errs, "; "))
		}
	}
}

// Close disconnects.
func (t *Tail) Close() { t.cl.Close() }
