package kafka

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Ingester produces accepted events to raw-events. It is safe for
// concurrent use.
type Ingester struct {
	cl       *kgo.Client
	configAt atomic.Int64
}

// SetConfigOffset makes every record produced after it carry offset in
// ConfigHeader (0: no header): the process that owns the state calls it
// after each publish to IntegrationsTopic, before answering the change.
func (g *Ingester) SetConfigOffset(offset int64) { g.configAt.Store(offset) }

// NewIngester connects a producer (acks=all, idempotent).
func NewIngester(cfg Config) (*Ingester, error) {
	cl, err := cfg.client()
	if err != nil {
		return nil, fmt.Errorf("kafka: ingest: %w", err)
	}
	return &Ingester{cl: cl}, nil
}

// Ingest produces events (raw JSON objects), each keyed by EventKey, and
// returns once every one is acknowledged by the brokers (acks=all), or
// the first error: then the caller must not acknowledge any of them (some
// may be on the topic: the processor's item IDs make a resent event the
// same requests).
func (g *Ingester) Ingest(ctx context.Context, events ...[]byte) error {
	return g.IngestFrom(ctx, "", events...)
}

// SourceHeader is the raw-events record header naming the source an event
// came from (absent: unknown). The processor delivers an event only to the
// bindings whose Sources are empty or list it, as delivery.Pipeline's
// FeedFrom does.
const SourceHeader = "source"

// IngestFrom is Ingest with each record carrying source in SourceHeader
// ("" adds no header).
func (g *Ingester) IngestFrom(ctx context.Context, source string, events ...[]byte) error {
	if len(events) == 0 {
		return nil
	}
	var hs []kgo.RecordHeader
	if source != "" {
		hs = append(hs, kgo.RecordHeader{Key: SourceHeader, Value: []byte(source)})
	}
	if at := g.configAt.Load(); at > 0 {
		hs = append(hs, kgo.RecordHeader{Key: ConfigHeader, Value: strconv.AppendInt(nil, at, 10)})
	}
	recs := make([]*kgo.Record, len(events))
	for i, ev := range events {
		recs[i] = &kgo.Record{Topic: RawEvents, Key: EventKey(ev), Value: ev, Headers: hs}
	}
	if err := g.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafka: produce to %s: %w", RawEvents, err)
	}
	return nil
}

// Close flushes nothing (Ingest waits for its records) and disconnects.
func (g *Ingester) Close() { g.cl.Close() }
