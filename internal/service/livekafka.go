package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service/live"
)

// The live stream across processes (docs/kafka.md, "Live events across
// processes"). The process that owns the state (role all or ingest) serves
// the live page; with split roles, the decisions, requests, attempts and
// finals happen in the processes of roles process and deliver (the
// followers). While the owner's hub has a subscriber, the owner produces a
// watch record to kafka.LiveWatchTopic every watchRefresh; a follower that
// read one within watchTTL (by its own clock: the owner's is not trusted)
// subscribes to its own hub and copies every step, redacted again and
// clipped, to kafka.LiveEventsTopic, which the owner reads from its end
// and publishes into its hub. A role-all owner reads the topic too (for
// followers it may have) but never produces to it: its own steps are in
// its hub already.

// Timing of the watch records.
var (
	watchRefresh = 10 * time.Second       // the owner repeats its watch record this often while watched
	watchTTL     = 30 * time.Second       // a follower forwards for this long after reading one
	watchCheck   = 250 * time.Millisecond // how often the owner looks at its subscribers, a follower at its watch
)

// maxWatchTTL bounds the ttl a follower takes from a watch record.
const maxWatchTTL = time.Minute

// liveRestartCap bounds the wait before a live part that stopped on an
// error is run again (a second at first, doubling): a topic this process
// may not read fails every run, and its error is logged at each restart.
const liveRestartCap = time.Minute

// watchKey keys the watch records.
var watchKey = []byte("watch")

// watchRecord is the value of a record of kafka.LiveWatchTopic: forward
// live steps for TTLMS milliseconds from when you read this (0: stop).
type watchRecord struct {
	TTLMS int64 `json:"ttl_ms"`
}

// Steps a follower forwards, and the owner accepts from the topic.
var forwardedTypes = map[string]bool{live.TypeDecision: true, live.TypeRequest: true, live.TypeAttempt: true, live.TypeFinal: true}

// Field bounds of a live step on the topic: a follower clips a longer
// field (after redacting it) and the owner drops a record with one.
const (
	liveIDMax    = 512  // event_id, integration_id, source_id, item
	liveShortMax = 256  // event_name, outcome, reason, method, each field and warning
	liveTextMax  = 8192 // message, url
	liveBodyMax  = 1024 // body_excerpt
	liveReqMax   = 16384
	liveListMax  = 101 // fields, warnings: the runtime's 100 and its "and N more"
)

// logEvery bounds the error lines of the bridge and of the owner's reader.
const liveLogEvery = time.Minute

// liveKafka is a Kafka-mode process's side of the live topics.
type liveKafka struct {
	s   *Service
	log *slog.Logger

	// Owner: tail reads live-events, wprod produces watch records.
	tail  *kafka.Tail
	wprod *kafka.LiveProducer
	shown *prometheus.CounterVec // blueprint_live_topic_records_total{result}

	// Follower: wtail reads live-watch, prod produces live steps.
	wtail   *kafka.Tail
	prod    *kafka.LiveProducer
	bridged *prometheus.CounterVec // blueprint_live_bridge_records_total{result}
	mu      sync.Mutex
	until   time.Time     // forward until (the follower's clock, monotonic)
	wake    chan struct{} // a watch record arrived
	active  atomic.Bool   // the bridge is subscribed

	errLog  rateLog // produce errors (bridge, watch records)
	dropLog rateLog // records of live-events dropped (owner)
}

// rateLog writes an error line at most once per liveLogEvery, with the
// number of errors since the last one.
type rateLog struct {
	mu     sync.Mutex
	last   time.Time
	missed int
}

func (r *rateLog) error(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < liveLogEvery {
		r.missed++
		return
	}
	log.Error(msg, append(args, "not_logged_since_last", r.missed)...)
	r.last, r.missed = now, 0
}

// openLive creates the live topics and connects the clients of the role.
// The live stream across processes is an aid, not the pipeline: when the
// topics cannot be made or reached, the process runs without it, logged.
func (k *kafkaMode) openLive() {
	l := &liveKafka{s: k.s, log: k.log.With("role", "live"), wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := kafka.EnsureLiveTopics(ctx, k.cfg, k.parts); err != nil {
		k.log.Error("kafka: live topics not available: the live page shows only the steps of the process that serves it", "error", err.Error())
		return
	}
	var err error
	if follows(k.role) {
		l.bridged = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_live_bridge_records_total",
			Help: "Live steps of this process for the " + kafka.LiveEventsTopic + " topic while the owner's live page is watched, by result (produced, dropped: lost by a slow bridge or too big, error: not produced)."},
			[]string{"result"})
		k.s.metrics.reg.MustRegister(l.bridged, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "blueprint_live_bridge_watched",
			Help: "1 while this process copies its live steps to the " + kafka.LiveEventsTopic + " topic (the owner's live page is watched), else 0."},
			func() float64 {
				if l.active.Load() {
					return 1
				}
				return 0
			}))
		for _, r := range []string{"produced", "dropped", "error"} {
			l.bridged.WithLabelValues(r)
		}
		if l.prod, err = kafka.NewLiveProducer(k.cfg); err == nil {
			l.wtail, err = kafka.NewTail(k.cfg, kafka.LiveWatchTopic)
		}
	} else {
		l.shown = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_live_topic_records_total",
			Help: "Records of the " + kafka.LiveEventsTopic + " topic (the other processes' live steps), by result (received: shown live, dropped: unreadable)."},
			[]string{"result"})
		k.s.metrics.reg.MustRegister(l.shown)
		for _, r := range []string{"received", "dropped"} {
			l.shown.WithLabelValues(r)
		}
		if l.wprod, err = kafka.NewLiveProducer(k.cfg); err == nil {
			l.tail, err = kafka.NewTail(k.cfg, kafka.LiveEventsTopic)
		}
	}
	if err != nil {
		l.close()
		k.log.Error("kafka: live topics not available: the live page shows only the steps of the process that serves it", "error", err.Error())
		return
	}
	k.live = l
}

// startLive runs the live goroutines of the role (k.mu held).
func (k *kafkaMode) startLive() {
	l := k.live
	if l == nil {
		return
	}
	if l.tail != nil {
		k.superviseUpTo(k.ctx, "live events", liveRestartCap, func(ctx context.Context) error { return l.tail.Run(ctx, l.show) })
		k.superviseUpTo(k.ctx, "live watch", liveRestartCap, l.announce)
	}
	if l.wtail != nil {
		k.superviseUpTo(k.ctx, "live watch", liveRestartCap, func(ctx context.Context) error { return l.wtail.Run(ctx, l.watchRead) })
		k.superviseUpTo(k.ctx, "live bridge", liveRestartCap, l.bridge)
	}
}

func (l *liveKafka) close() {
	if l.tail != nil {
		l.tail.Close()
	}
	if l.wtail != nil {
		l.wtail.Close()
	}
	if l.wprod != nil {
		l.wprod.Close()
	}
	if l.prod != nil {
		l.prod.Close()
	}
}

// announce (owner) produces a watch record when the hub gets its first
// subscriber, every watchRefresh while it has one, and a stop record when
// it has none again.
func (l *liveKafka) announce(ctx context.Context) error {
	t := time.NewTicker(watchCheck)
	defer t.Stop()
	watched := false
	var sent, tried time.Time
	send := func(ctx context.Context, ttl time.Duration) bool {
		b, _ := json.Marshal(watchRecord{TTLMS: ttl.Milliseconds()})
		wait := 5 * time.Second
		if ttl == 0 {
			wait = time.Second // a stop record is a courtesy: the followers stop by themselves within watchTTL
		}
		pctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		tried = time.Now()
		if err := l.wprod.ProduceSync(pctx, kafka.LiveWatchTopic, watchKey, b); err != nil {
			if ctx.Err() == nil {
				l.errLog.error(l.log, "live: watch record not produced: the other processes' steps are not shown", "topic", kafka.LiveWatchTopic, "error", err.Error())
			}
			return false
		}
		sent = tried
		return true
	}
	for {
		select {
		case <-ctx.Done():
			if watched {
				send(context.WithoutCancel(ctx), 0)
			}
			return nil
		case <-t.C:
		}
		n := l.s.hub.Subscribers()
		switch {
		case n > 0 && (!watched || time.Since(sent) >= watchRefresh):
			if time.Since(tried) < time.Second && !tried.Equal(sent) {
				continue // the last try failed: at most one a second
			}
			if send(ctx, watchTTL) {
				watched = true
			}
		case n == 0 && watched:
			if send(ctx, 0) {
				watched = false
			}
		}
	}
}

// show (owner) publishes a record of live-events into the hub, or drops
// it, counted.
func (l *liveKafka) show(r *kgo.Record) {
	m, err := decodeLive(r.Value)
	if err != nil {
		l.shown.WithLabelValues("dropped").Inc()
		l.dropLog.error(l.log, "live: record dropped", "topic", r.Topic, "partition", r.Partition, "offset", r.Offset, "reason", err.Error())
		return
	}
	l.shown.WithLabelValues("received").Inc()
	l.s.hub.Publish(m)
}

// watchRead (follower) applies a watch record: forward for its ttl from
// now, by this process's clock.
func (l *liveKafka) watchRead(r *kgo.Record) {
	var w watchRecord
	if len(r.Value) > 1024 || json.Unmarshal(r.Value, &w) != nil || w.TTLMS < 0 {
		return
	}
	ttl := maxWatchTTL
	if w.TTLMS < maxWatchTTL.Milliseconds() { // compared before the product, which could overflow
		ttl = time.Duration(w.TTLMS) * time.Millisecond
	}
	l.mu.Lock()
	l.until = time.Now().Add(ttl)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *liveKafka) watched() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Now().Before(l.until)
}

// bridge (follower) subscribes to the hub while the owner's page is
// watched and copies each step to live-events. It never slows the
// pipeline: the hub drops what the subscription cannot take (counted),
// and the produce is asynchronous into a bounded buffer (a full buffer
// refuses the record at once, counted as an error).
func (l *liveKafka) bridge(ctx context.Context) error {
	t := time.NewTicker(watchCheck)
	defer t.Stop()
	for {
		for !l.watched() {
			select {
			case <-ctx.Done():
				return nil
			case <-l.wake:
			case <-t.C:
			}
		}
		ch, cancel := l.s.hub.Subscribe("")
		l.active.Store(true)
		l.log.Info("live: the live page is watched: steps copied to " + kafka.LiveEventsTopic)
	forward:
		for {
			select {
			case <-ctx.Done():
				cancel()
				l.active.Store(false)
				return nil
			case m, ok := <-ch:
				if !ok { // the hub was closed: shutting down
					l.active.Store(false)
					<-ctx.Done()
					return nil
				}
				l.forward(m)
			case <-t.C:
				if !l.watched() {
					break forward
				}
			}
		}
		cancel()
		l.active.Store(false)
		l.log.Info("live: the live page is no longer watched: steps no longer copied")
	}
}

// forward produces one step (follower).
func (l *liveKafka) forward(m live.Message) {
	if m.Type == live.TypeDropped {
		var n int
		if _, err := fmt.Sscanf(m.Message, "%d", &n); err != nil || n < 1 {
			n = 1
		}
		l.bridged.WithLabelValues("dropped").Add(float64(n))
		return
	}
	if !forwardedTypes[m.Type] || m.IntegrationID == "" {
		return // "received" is the owner's own
	}
	b, ok := encodeLive(l.s.redactLive(m))
	if !ok {
		l.bridged.WithLabelValues("dropped").Inc()
		return
	}
	l.prod.TryProduce(kafka.LiveEventsTopic, []byte(m.IntegrationID), b, func(err error) {
		if err != nil {
			l.bridged.WithLabelValues("error").Inc()
			l.errLog.error(l.log, "live: steps not produced (the live page misses them)", "topic", kafka.LiveEventsTopic, "error", err.Error())
			return
		}
		l.bridged.WithLabelValues("produced").Inc()
	})
}

// redactLive scrubs every text of a step with every integration bound
// here: the callers redacted it already with its own integration, and the
// topic is one more place it goes.
func (s *Service) redactLive(m live.Message) live.Message {
	for _, p := range []*string{&m.EventID, &m.SourceID, &m.Item, &m.EventName, &m.Outcome, &m.Reason, &m.Message, &m.Method, &m.URL, &m.Request, &m.BodyExcerpt} {
		if *p != "" {
			*p = s.redactAll(*p)
		}
	}
	m.Fields, m.Warnings = redactList(s, m.Fields), redactList(s, m.Warnings)
	return m
}

func redactList(s *Service, l []string) []string {
	if len(l) == 0 {
		return l
	}
	out := make([]string, len(l))
	for i, v := range l {
		out[i] = s.redactAll(v)
	}
	return out
}

// liveFields lists the texts of a step with their bound.
func liveFields(m *live.Message) []struct {
	p   *string
	max int
} {
	return []struct {
		p   *string
		max int
	}{
		{&m.EventID, liveIDMax}, {&m.IntegrationID, liveIDMax}, {&m.SourceID, liveIDMax}, {&m.Item, liveIDMax},
		{&m.EventName, liveShortMax}, {&m.Outcome, liveShortMax}, {&m.Reason, liveShortMax}, {&m.Method, liveShortMax},
		{&m.Message, liveTextMax}, {&m.URL, liveTextMax}, {&m.BodyExcerpt, liveBodyMax}, {&m.Request, liveReqMax},
	}
}

// clip cuts s to at most n bytes, on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// encodeLive is a step as a record of live-events (redacted by the
// caller): every field clipped to its bound, and the record under
// kafka.MaxLiveRecordBytes (the longest texts shortened further when
// escaping made it bigger; false when it still is not).
func encodeLive(m live.Message) ([]byte, bool) {
	for _, f := range liveFields(&m) {
		*f.p = clip(*f.p, f.max)
	}
	clipList := func(l []string) []string {
		if len(l) > liveListMax {
			l = l[:liveListMax]
		}
		out := make([]string, len(l))
		for i, v := range l {
			out[i] = clip(v, liveShortMax)
		}
		return out
	}
	if len(m.Fields) > 0 {
		m.Fields = clipList(m.Fields)
	}
	if len(m.Warnings) > 0 {
		m.Warnings = clipList(m.Warnings)
	}
	for range 2 {
		b, err := json.Marshal(m)
		if err == nil && len(b) <= kafka.MaxLiveRecordBytes {
			return b, true
		}
		m.Request, m.Message, m.URL = clip(m.Request, 1024), clip(m.Message, 1024), clip(m.URL, 1024)
		m.Fields, m.Warnings = nil, nil
	}
	return nil, false
}

// decodeLive reads a record of live-events (owner): JSON, at most
// kafka.MaxLiveRecordBytes, a step type a follower forwards, an
// integration, every field within its bound; else why not.
func decodeLive(b []byte) (live.Message, error) {
	var m live.Message
	if len(b) > kafka.MaxLiveRecordBytes {
		return m, fmt.Errorf("a record of %d bytes (at most %d)", len(b), kafka.MaxLiveRecordBytes)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return live.Message{}, errors.New("not a live step (JSON)")
	}
	switch {
	case !forwardedTypes[m.Type]:
		return live.Message{}, fmt.Errorf("type %.32q is not a step another process forwards", m.Type)
	case m.IntegrationID == "":
		return live.Message{}, errors.New("no integration_id")
	case len(m.Fields) > liveListMax || len(m.Warnings) > liveListMax:
		return live.Message{}, errors.New("too many fields or warnings")
	case m.Status < 0 || m.Status > 999 || m.Attempt < 0 || m.DurationMS < 0:
		return live.Message{}, errors.New("a status, attempt or duration out of range")
	}
	for _, f := range liveFields(&m) {
		if len(*f.p) > f.max {
			return live.Message{}, fmt.Errorf("a field of %d bytes (at most %d)", len(*f.p), f.max)
		}
	}
	for _, l := range [][]string{m.Fields, m.Warnings} {
		for _, v := range l {
			if len(v) > liveShortMax {
				return live.Message{}, fmt.Errorf("a field or warning of %d bytes (at most %d)", len(v), liveShortMax)
			}
		}
	}
	if m.At.IsZero() {
		m.At = time.Now().UTC()
	}
	return m, nil
}
