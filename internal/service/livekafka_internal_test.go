package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service/live"
)

// TestEncodeLiveFitsWhatDecodeTakes: whatever a follower's step holds
// (texts past their bounds, characters JSON escapes six bytes each, many
// fields), encodeLive makes a record under kafka.MaxLiveRecordBytes that
// decodeLive accepts, cut on character boundaries; what decodeLive
// refuses, encodeLive never makes.
func TestEncodeLiveFitsWhatDecodeTakes(t *testing.T) {
	ctl := strings.Repeat("\x01", 20000) // \u0001 in JSON: 6 bytes each
	many := make([]string, 100)
	for i := range many {
		many[i] = strings.Repeat("é", 300)
	}
	for name, m := range map[string]live.Message{
		"plain": {Type: live.TypeAttempt, IntegrationID: "int_1", EventID: "m-1", Status: 200, Outcome: "delivered"},
		"long":  {Type: live.TypeRequest, IntegrationID: "int_1", EventID: strings.Repeat("e", 2000), URL: strings.Repeat("u", 20000), Request: strings.Repeat("é", 40000), Message: strings.Repeat("m", 20000)},
		"escaped": {Type: live.TypeDecision, IntegrationID: "int_1", EventID: "m-2", Message: ctl, URL: ctl, Request: ctl, BodyExcerpt: ctl,
			Fields: many, Warnings: many},
	} {
		b, ok := encodeLive(m)
		if !ok {
			t.Errorf("%s: not encoded", name)
			continue
		}
		if len(b) > kafka.MaxLiveRecordBytes || !utf8.Valid(b) {
			t.Errorf("%s: a record of %d bytes (valid UTF-8: %v)", name, len(b), utf8.Valid(b))
		}
		got, err := decodeLive(b)
		if err != nil {
			t.Errorf("%s: the owner refuses what a follower makes: %v", name, err)
			continue
		}
		if got.Type != m.Type || got.IntegrationID != m.IntegrationID || got.Status != m.Status {
			t.Errorf("%s: %+v", name, got)
		}
	}
	if _, ok := encodeLive(live.Message{Type: live.TypeFinal, IntegrationID: "int_1", Item: strings.Repeat("\x02", 100000)}); !ok {
		t.Error("an item of control characters is not clipped to fit")
	}
}

// TestBridgeNeverBlocks: with the brokers gone, a follower's bridge still
// takes every step at once (the pipeline that publishes them never
// waits): the producer's buffer is bounded, the steps past it are
// counted as errors, and the error is logged once, not per step. A hub's
// "dropped" notice is counted as the steps it says were lost.
func TestBridgeNeverBlocks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	cfg := kafka.Config{Brokers: c.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.EnsureLiveTopics(ctx, cfg, 1); err != nil {
		t.Fatal(err)
	}
	prod, err := kafka.NewLiveProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // the brokers gone
	var logs strings.Builder
	var mu sync.Mutex
	l := &liveKafka{s: &Service{}, prod: prod,
		log: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return logs.Write(p)
		}), nil)),
		bridged: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b"}, []string{"result"})}
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.bridged)
	const n = 3000
	start := time.Now()
	for i := range n {
		l.forward(live.Message{Type: live.TypeAttempt, IntegrationID: "int_1", EventID: fmt.Sprint("m-", i), Status: 200, Message: strings.Repeat("x", 1000)})
	}
	l.forward(live.Message{Type: live.TypeDropped, Message: "7 messages dropped: the page was too slow"})
	l.forward(live.Message{Type: live.TypeReceived, EventID: "m-r"}) // the owner's own: not copied, not counted
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("%d steps took %v to hand over with the brokers gone", n, d)
	}
	if got := counterValue(reg, `b{result="dropped"}`); got != 7 {
		t.Errorf("dropped %v, want the hub's 7", got)
	}
	// Past the buffer, refused at once; the rest fail with the brokers
	// gone, at the latest when the producer closes: every one an error.
	if got := counterValue(reg, `b{result="error"}`); got < 1 {
		t.Errorf("%v steps counted as errors while the buffer (1,024) overflowed", got)
	}
	prod.Close()
	deadline := time.Now().Add(5 * time.Second)
	for counterValue(reg, `b{result="error"}`) != n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := counterValue(reg, `b{result="error"}`); got != n {
		t.Errorf("%v steps counted as errors, want all %d", got, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if k := strings.Count(logs.String(), "steps not produced"); k != 1 {
		t.Errorf("the error logged %d times, want once a minute:\n%s", k, logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// counterValue reads one series of reg as /metrics shows it (-1: none).
func counterValue(reg *prometheus.Registry, series string) float64 {
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestSuperviseBacksOff: a part that fails at once every run is run again
// a second after the first failure, then two, four... up to its cap: in
// 3.5 s at most three runs (at 0, 1 and 3 s; without the backoff, four),
// each failure logged. A part that stops without error is run again a
// second later, as before.
func TestSuperviseBacksOff(t *testing.T) {
	var log strings.Builder
	var mu sync.Mutex
	k := &kafkaMode{log: slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &mu}, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	var runs int
	k.superviseUpTo(ctx, "failing", time.Minute, func(context.Context) error {
		mu.Lock()
		runs++
		mu.Unlock()
		return fmt.Errorf("no read access")
	})
	time.Sleep(3500 * time.Millisecond)
	cancel()
	k.wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if runs < 1 || runs > 3 {
		t.Errorf("%d runs in 3.5 s, want at most 3", runs)
	}
	if n := strings.Count(log.String(), "kafka role stopped"); n != runs {
		t.Errorf("%d failures logged for %d runs:\n%s", n, runs, log.String())
	}
	if runs >= 3 && !strings.Contains(log.String(), "restarting in 4s") {
		t.Errorf("the third failure does not wait 4 s:\n%s", log.String())
	}
}

type lockedWriter struct {
	w  *strings.Builder
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
