package service

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/blueprint-engine/blueprint/internal/service/live"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// metrics are the service's Prometheus series. Labels never hold event
// data or a secret: source and integration IDs, outcomes, reasons, status
// classes.
type metrics struct {
	reg       *prometheus.Registry
	ingested  *prometheus.CounterVec
	decisions *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	retries   *prometheus.CounterVec
	finals    *prometheus.CounterVec
	logins    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.ingested = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_events_ingested_total", Help: "Events received at ingestion, by source and result (accepted, failed, refused, unavailable)."}, []string{"source", "result"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_decisions_total", Help: "Decisions, by integration, outcome (deliver, skip, reject) and reason."}, []string{"integration", "outcome", "reason"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_vendor_attempts_total", Help: "Vendor attempts, by integration, status class (2xx, 4xx, 5xx, none) and outcome."}, []string{"integration", "status_class", "outcome"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "blueprint_vendor_latency_seconds", Help: "Vendor answer time, by integration.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"integration"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_retries_total", Help: "Attempts that will be retried, by integration."}, []string{"integration"})
	m.finals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_requests_final_total", Help: "Requests that reached a final state (delivered, dead, skipped), by integration."}, []string{"integration", "state"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_logins_total", Help: "Management logins, by result."}, []string{"result"})
	m.reg.MustRegister(m.ingested, m.decisions, m.attempts, m.latency, m.retries, m.finals, m.logins,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// outboxGauges reports the outbox's depth at every scrape.
type outboxGauges struct {
	box     outbox.Store
	pending *prometheus.Desc
	dead    *prometheus.Desc
	// kafkaDead, in Kafka mode, counts the dead deliveries of the
	// dead-letter index instead of the (unused) outbox's.
	kafkaDead func() (int, error)
}

func (g *outboxGauges) Describe(ch chan<- *prometheus.Desc) { ch <- g.pending; ch <- g.dead }

func (g *outboxGauges) Collect(ch chan<- prometheus.Metric) {
	c, err := g.box.Counts(context.Background())
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(g.pending, prometheus.GaugeValue, float64(c[outbox.Pending]))
	dead := c[outbox.Dead]
	if g.kafkaDead != nil {
		if dead, err = g.kafkaDead(); err != nil {
			return
		}
	}
	ch <- prometheus.MustNewConstMetric(g.dead, prometheus.GaugeValue, float64(dead))
}

func statusClass(status int) string {
	if status == 0 {
		return "none"
	}
	return strconv.Itoa(status/100) + "xx"
}

// onDecision reports each event's decision for each integration: live,
// metrics, and the request as it will be sent (redacted).
func (s *Service) onDecision(d delivery.Decision) {
	res := d.Result
	s.metrics.decisions.WithLabelValues(d.Integration, string(res.Outcome), res.Reason).Inc()
	if !(s.hub.Subscribers() > 0) {
		return
	}
	at := s.cfg.Now().UTC()
	id := eventID(d.Event)
	m := live.Message{Type: "decision", At: at, EventID: id, IntegrationID: d.Integration, EventName: res.Event,
		Outcome: string(res.Outcome), Reason: res.Reason, Fields: res.Fields, Warnings: res.Warnings, Message: res.Message}
	s.hub.Publish(m)
	for i, req := range res.Requests {
		rr := d.In.Redacted(req)
		rm := live.Message{Type: "request", At: at, EventID: id, IntegrationID: d.Integration, Method: rr.Method, URL: rr.URL, Request: requestText(rr)}
		if i < len(d.Items) {
			rm.Item = d.Items[i].ID
		}
		s.hub.Publish(rm)
	}
}

// Attempt implements send.Metrics: metrics and the live stream.
func (s *Service) Attempt(a send.AttemptInfo) {
	s.metrics.attempts.WithLabelValues(a.Integration, statusClass(a.Status), string(a.Outcome)).Inc()
	if a.Status != 0 {
		s.metrics.latency.WithLabelValues(a.Integration).Observe(a.Latency.Seconds())
	}
	if a.Outcome == runtime.Retry {
		s.metrics.retries.WithLabelValues(a.Integration).Inc()
	}
	if !(s.hub.Subscribers() > 0) {
		return
	}
	var ev string
	if id, ok := s.items.Load(a.Item); ok {
		ev = id.(string)
	} else if ev = s.eventOf(a.Item); ev != "" {
		s.items.Store(a.Item, ev) // for the final step: a delivered item no longer holds its event
	} else {
		ev = a.MessageID // Kafka mode: no outbox item to read; the deliverer names the event as eventID does
	}
	s.hub.Publish(live.Message{Type: "attempt", At: s.cfg.Now().UTC(), EventID: ev, IntegrationID: a.Integration, Item: a.Item,
		Outcome: string(a.Outcome), Status: a.Status, DurationMS: a.Latency.Milliseconds(), Message: a.Message, BodyExcerpt: excerpt(a.Message)})
}

// Final implements send.Metrics.
func (s *Service) Final(f send.FinalInfo) {
	s.metrics.finals.WithLabelValues(f.Integration, string(f.State)).Inc()
	id, _ := s.items.LoadAndDelete(f.Item)
	if !(s.hub.Subscribers() > 0) {
		return
	}
	ev, _ := id.(string)
	if ev == "" {
		ev = s.eventOf(f.Item)
	}
	if ev == "" {
		ev = f.MessageID
	}
	s.hub.Publish(live.Message{Type: "final", At: f.At.UTC(), EventID: ev, IntegrationID: f.Integration, Item: f.Item,
		Outcome: string(f.State), Status: f.Status, Attempt: f.Attempts, Message: f.Message})
}

// eventOf is the live id of the event of an outbox item, read from the
// item itself: the worker may attempt an item, and settle it, before the
// feeder reports its decision (after the whole batch is in the outbox), so
// nothing noted at decision time can be relied on. "" when it cannot be
// read or the item no longer holds its event (delivered), and in a
// process of role process or deliver, which has no outbox.
func (s *Service) eventOf(item string) string {
	if s.box == nil {
		return ""
	}
	it, err := s.box.Get(context.Background(), item)
	if err != nil || len(it.Event) == 0 {
		return ""
	}
	return eventID(it.Event)
}

func excerpt(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// rejectSink stores rejected events in the dead-letter view, in the shape
// of the platform's dlq-events (secrets already scrubbed).
type rejectSink struct{ s *Service }

func (r rejectSink) Reject(rec delivery.RejectRecord) error {
	return r.s.st.AddReject(&store.Reject{IntegrationID: rec.IntegrationID, Error: rec.Error, Details: rec.Details, Fields: rec.Fields,
		OriginalEvent: rec.OriginalEvent, CreatedAt: r.s.cfg.Now().UTC()})
}

// requestText writes a redacted request as HTTP-like text.
func requestText(rr runtime.RedactedRequest) string {
	var b strings.Builder
	b.WriteString(rr.Method + " " + rr.URL + "\n")
	keys := make([]string, 0, len(rr.Headers))
	for k := range rr.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(k + ": " + rr.Headers[k] + "\n")
	}
	if len(rr.Body) > 0 {
		b.WriteString("\n")
		body := rr.Body
		if len(body) > 4096 {
			body = body[:4096]
		}
		b.Write(body)
	}
	return b.String()
}
