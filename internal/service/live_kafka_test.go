package service_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service"
)

// liveStep is a message of the live stream, as a test reads it.
type liveStep struct {
	Type          string `json:"type"`
	EventID       string `json:"event_id"`
	IntegrationID string `json:"integration_id"`
	Outcome       string `json:"outcome"`
	Status        int    `json:"status"`
	Message       string `json:"message"`
	URL           string `json:"url"`
	Raw           string `json:"-"`
}

// liveWatcher is a WebSocket subscriber of the live stream; it keeps every
// message it reads.
type liveWatcher struct {
	c    *websocket.Conn
	mu   sync.Mutex
	msgs []liveStep
	done chan struct{}
}

func watchLive(t *testing.T, admin, tok, query string) *liveWatcher {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(admin, "http")+"/v1/admin/live"+query,
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	w := &liveWatcher{c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			_, raw, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m liveStep
			if json.Unmarshal(raw, &m) != nil {
				continue
			}
			m.Raw = string(raw)
			w.mu.Lock()
			w.msgs = append(w.msgs, m)
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *liveWatcher) close() {
	w.c.Close(websocket.StatusNormalClosure, "")
	<-w.done
}

func (w *liveWatcher) all() []liveStep {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]liveStep(nil), w.msgs...)
}

// has reports whether a step of event and type with outcome (any when "")
// and status (any when 0) came.
func (w *liveWatcher) has(event, typ, outcome string, status int) bool {
	for _, m := range w.all() {
		if m.EventID == event && m.Type == typ && (outcome == "" || m.Outcome == outcome) && (status == 0 || m.Status == status) {
			return true
		}
	}
	return false
}

// liveEnd is the number of records of live-events (the sum of its
// partitions' end offsets).
func liveEnd(t *testing.T, brokers []string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, kafka.LiveEventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}

// bridging waits until every follower copies its steps to live-events
// (want true) or none does: within two of the owner's watch refreshes (10 s
// each), so that one watch record a follower's tail was not yet placed to
// read cannot fail a test on a slow machine.
func bridging(t *testing.T, want bool, fs ...*follower) {
	t.Helper()
	v := 0.0
	if want {
		v = 1
	}
	waitLong(t, 25*time.Second, "the followers' live bridge", func() bool {
		for _, f := range fs {
			if metric(t, f.admin, "blueprint_live_bridge_watched") != v {
				return false
			}
		}
		return true
	})
}

// TestServeKafkaLiveSplit: with split roles (an owner of role ingest, a
// process and a deliver follower), the owner's live stream shows the
// decision, the request, the attempts and the final state of each event,
// made in the other processes: a 200 with the right key, a 401 with a
// wrong one. Nothing goes to live-events while nobody watches; the
// followers stop copying when the last watcher leaves.
func TestServeKafkaLiveSplit(t *testing.T) {
	h, brokers, tok, pk, sk := splitOwner(t, 2)
	id := installButton(t, h, tok, "Button", apiKey)
	proc := startFollower(t, h, brokers, "process")
	del := startFollower(t, h, brokers, "deliver")

	// Nobody watches: delivered, and nothing on live-events.
	if st, out := h.post("/v1/events", pk, sk, order("quiet-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 30*time.Second, "quiet-1 at the fake Button", func() bool { _, ok := h.fake.Order("quiet-1"); return ok })
	time.Sleep(200 * time.Millisecond) // a final step would be produced right after the answer
	if n := liveEnd(t, brokers); n != 0 {
		t.Fatalf("%d records on %s while nobody watched", n, kafka.LiveEventsTopic)
	}

	start := time.Now()
	w := watchLive(t, h.admin, tok, "?integration_id="+id)
	bridging(t, true, proc, del)
	t.Logf("the followers copy their steps %v after the subscriber connected", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if st, out := h.post("/v1/events", pk, sk, order("live-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 15*time.Second, "live-1's steps on the owner's stream", func() bool {
		return w.has("m-live-1", "received", "", 0) && w.has("m-live-1", "decision", "deliver", 0) && w.has("m-live-1", "request", "", 0) &&
			w.has("m-live-1", "attempt", "delivered", 200) && w.has("m-live-1", "final", "delivered", 200)
	})
	t.Logf("live-1's final step on the owner's stream %v after the ingest", time.Since(start).Round(time.Millisecond))

	// A wrong key: the 401 shows, attempt and final.
	if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"config": map[string]any{"api_key": "sk-live-WRONG-77"}}); st != 200 {
		t.Fatalf("PATCH: %d %v", st, out)
	}
	if st, out := h.post("/v1/events", pk, sk, order("live-2"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitLong(t, 15*time.Second, "live-2's 401 on the owner's stream", func() bool {
		return w.has("m-live-2", "attempt", "failed", 401) && w.has("m-live-2", "final", "dead", 401)
	})
	for _, m := range w.all() {
		if m.IntegrationID != "" && m.IntegrationID != id {
			t.Errorf("a step of another integration on a stream of %s: %s", id, m.Raw)
		}
		if strings.Contains(m.Raw, "sk-live-WRONG-77") || strings.Contains(m.Raw, apiKey) {
			t.Errorf("a step holds an API key: %s", m.Raw)
		}
	}
	if n := liveEnd(t, brokers); n == 0 {
		t.Errorf("nothing on %s while watched", kafka.LiveEventsTopic)
	}
	m := h.scrape()
	if got := sample(m, `blueprint_live_topic_records_total{result="received"}`); got < 6 {
		t.Errorf("the owner received %v steps from the topic, want at least 6", got)
	}
	if got := sample(m, `blueprint_live_topic_records_total{result="dropped"}`); got != 0 {
		t.Errorf("the owner dropped %v steps of the topic", got)
	}

	// The last watcher gone, the followers stop at once (a stop record).
	w.close()
	bridging(t, false, proc, del)
}

// TestServeKafkaLiveHostileRecords: records on live-events that are not a
// follower's steps (not JSON, too big, an unknown or the owner's own type,
// no integration, a field too long) are dropped and counted by the owner,
// which shows the sound one after them; a hostile text in a sound one
// reaches the stream as a JSON string (the page shows it as text).
func TestServeKafkaLiveHostileRecords(t *testing.T) {
	brokers := kafkaCluster(t)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1}})
	tok := h.login()
	w := watchLive(t, h.admin, tok, "")
	time.Sleep(500 * time.Millisecond) // the owner's reader is at the topic's end
	rec := func(v string) *kgo.Record { return &kgo.Record{Topic: kafka.LiveEventsTopic, Value: []byte(v)} }
	long := strings.Repeat("x", 9000)
	hostile := []*kgo.Record{
		rec("not json"),
		rec(`{"type":"attempt","integration_id":"int_x","message":"` + strings.Repeat("y", kafka.MaxLiveRecordBytes) + `"}`),
		rec(`{"type":"script","integration_id":"int_x","event_id":"e-bad"}`),
		rec(`{"type":"received","event_id":"e-bad"}`),
		rec(`{"type":"dropped","integration_id":"int_x","event_id":"e-bad"}`),
		rec(`{"type":"attempt","event_id":"e-bad"}`),
		rec(`{"type":"attempt","integration_id":"int_x","event_id":"e-bad","url":"` + long + `"}`),
		rec(`{"type":"attempt","integration_id":"int_x","event_id":"e-bad","status":-1}`),
		rec(`[1,2,3]`),
		rec(`{"type":"final","integration_id":"int_x","event_id":"e-good","outcome":"delivered","status":200,"message":"<script>alert(1)</script>"}`),
	}
	produceRaw(t, brokers, hostile...)
	waitLong(t, 10*time.Second, "the sound step", func() bool { return w.has("e-good", "final", "delivered", 200) })
	for _, m := range w.all() {
		if m.EventID == "e-bad" || m.Type == "script" {
			t.Errorf("a hostile record reached the stream: %s", m.Raw)
		}
		if m.EventID == "e-good" && (m.Message != "<script>alert(1)</script>" || strings.Contains(m.Raw, "<script>")) {
			t.Errorf("the sound step: message %q, raw %s (want the text as a JSON string, < escaped)", m.Message, m.Raw)
		}
	}
	waitLong(t, 5*time.Second, "the drops counted", func() bool {
		return sample(h.scrape(), `blueprint_live_topic_records_total{result="dropped"}`) == float64(len(hostile)-1)
	})
	if got := sample(h.scrape(), `blueprint_live_topic_records_total{result="received"}`); got != 1 {
		t.Errorf("received %v, want 1", got)
	}
}
