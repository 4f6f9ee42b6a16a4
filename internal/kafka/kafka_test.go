package kafka

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
	"github.com/blueprint-engine/blueprint/runtime/delivery/deliverytest"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

const (
	secret = "sk-live-Zq93kXw7SECRET"
	intID  = "int_btn1"
)

// fakeCluster starts a one-broker kfake cluster, closed when the test
// ends, and creates the topics of the integrations ids (none: no topic)
// with the given partitions.
func fakeCluster(t *testing.T, partitions int32, ids ...string) (Config, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := Config{Brokers: c.ListenAddrs()}
	if len(ids) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := EnsureTopics(ctx, cfg, partitions, ids...); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, c
}

// cluster starts a kfake broker and creates the topics.
func cluster(t *testing.T) Config {
	t.Helper()
	cfg, _ := fakeCluster(t, 2, intID)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, cfg, 2, intID); err != nil { // again: left alone
		t.Fatal(err)
	}
	return cfg
}

func registry(t *testing.T) *StaticRegistry {
	return NewRegistry(deliverytest.BindButton(t, intID, secret))
}

func order(id string, user int) []byte {
	return []byte(fmt.Sprintf(`{"type":"track","event":"Order Completed","messageId":"msg-%s","userId":"u-%d","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true},"click_ids":{"btn_ref":"srctok-0123456789abcdef"}},"properties":{"order_id":"%s","subtotal":"12.99","currency":"USD","products":[{"product_id":"p-1","price":"12.99","quantity":1}]}}`, id, user, id))
}

// vendor is the fake Button behind a fault layer: an order_id starting
// "flaky" is answered 503 the first time, "bad" always 400.
type vendor struct {
	fb  *fakebutton.Server
	url *url.URL
	mu  sync.Mutex
	hit map[string]int
}

func newVendor(t *testing.T) *vendor {
	v := &vendor{fb: fakebutton.New(fakebutton.Options{APIKey: secret}), hit: map[string]int{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		oid := gjson.GetBytes(body, "order_id").String()
		v.mu.Lock()
		v.hit[oid]++
		n := v.hit[oid]
		v.mu.Unlock()
		switch {
		case strings.HasPrefix(oid, "flaky") && n == 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"meta":{"status":"error"},"error":{"message":"try later"}}`)
			return
		case strings.HasPrefix(oid, "bad"):
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"meta":{"status":"error"},"error":{"message":"order refused"}}`)
			return
		}
		v.fb.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	v.url, _ = url.Parse(hs.URL)
	return v
}

func fastPolicy() send.Policy {
	return send.Policy{MaxAttempts: 5, Base: 20 * time.Millisecond, Cap: 100 * time.Millisecond, MaxAge: time.Minute}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// run starts f in a goroutine, stopped and waited for at cleanup.
func run(t *testing.T, f func(ctx context.Context) error) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// readAll reads every record of every topic of the cluster: key and value.
func readAll(t *testing.T, cfg Config) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for topic, recs := range kafkatest.ReadAll(t, cfg.Brokers, false) {
		out[topic] = nil
		for _, r := range recs {
			out[topic] = append(out[topic], append(append([]byte(nil), r.Key...), r.Value...))
		}
	}
	return out
}

func TestEventKey(t *testing.T) {
	for ev, want := range map[string]string{
		`{"anonymousId":"a","userId":"u","messageId":"m"}`: "a",
		`{"userId":"u","messageId":"m"}`:                   "u",
		`{"user_id":"u2","message_id":"m"}`:                "u2",
		`{"messageId":"m"}`:                                "m",
		`{"anonymousId":"","userId":7,"messageId":"m"}`:    "7",
		`{"user_id":1001,"message_id":"m"}`:                "1001",
		`{"userId":1.0e3,"messageId":"m"}`:                 "1000",
		`{"userId":-0,"messageId":"m"}`:                    "0",
		`{"userId":"","messageId":"m"}`:                    "m",
		`{"anonymousId":7,"userId":"u","messageId":"m"}`:   "7",
		`{"anonymous_id":2.50,"messageId":"m"}`:            "2.5",
		`{"userId":true,"messageId":"m"}`:                  "true",
		`{"userId":{"a":1},"messageId":"m"}`:               "m",
		`{"userId":null,"messageId":"m"}`:                  "m",
		`{}`:                                               "",
	} {
		if got := string(EventKey([]byte(ev))); got != want {
			t.Errorf("EventKey(%s) = %q, want %q", ev, got, want)
		}
	}
}

// TestEndToEnd runs the three roles on kfake against the fake Button:
// orders are delivered once each, a 503 then 200 goes through the retry
// topic, a 400 and an event without order_id end in dlq-events, and no
// topic holds the API key in any form.
func TestEndToEnd(t *testing.T) {
	cfg := cluster(t)
	reg := registry(t)
	v := newVendor(t)
	var events [][]byte
	for i := range 10 {
		events = append(events, order(fmt.Sprintf("ord-%d", i), i%3))
	}
	events = append(events, order("flaky-1", 1), order("bad-1", 2))
	events = append(events, []byte(`{"type":"track","event":"Order Completed","messageId":"msg-noid","userId":"u-9","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"subtotal":"1.00","currency":"USD"}}`))
	// An event that carries the API key itself: rejected, never stored as is.
	events = append(events, order("leak-"+secret, 4))

	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ing.Ingest(ctx, events...); err != nil {
		t.Fatal(err)
	}

	proc := NewProcessor(ProcessorOptions{Config: cfg, Registry: reg})
	var finalsMu sync.Mutex
	finals := map[string][]send.FinalInfo{}
	del := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID,
		Sender: send.New(send.Options{VendorURL: v.url}), Policy: fastPolicy(),
		Metrics: send.Hooks{OnFinal: func(f send.FinalInfo) {
			finalsMu.Lock()
			finals[f.Item] = append(finals[f.Item], f)
			finalsMu.Unlock()
		}}})
	stopP := run(t, proc.Run)
	stopD := run(t, del.Run)
	waitFor(t, "11 deliveries and 1 dead letter", func() bool {
		return del.Stats.Delivered.Load() == 11 && del.Stats.Dead.Load() == 1
	})
	if err := stopD(); err != nil {
		t.Fatal(err)
	}
	if err := stopP(); err != nil {
		t.Fatal(err)
	}
	if got := proc.Stats.Rejected.Load(); got != 2 {
		t.Errorf("rejected %d events, want 2 (no order_id, carries the key)", got)
	}
	if got := proc.Stats.Events.Load(); got != int64(len(events)) {
		t.Errorf("processed %d events, want %d", got, len(events))
	}
	st := v.fb.Stats()
	if st.Created != 11 || st.Duplicates != 0 {
		t.Errorf("vendor: %d orders created, %d duplicates; want 11, 0", st.Created, st.Duplicates)
	}
	if got := del.Stats.Retried.Load(); got != 1 {
		t.Errorf("retried %d, want 1", got)
	}
	finalsMu.Lock()
	for id, fs := range finals {
		if len(fs) != 1 {
			t.Errorf("item %s final %d times", id, len(fs))
		}
	}
	finalsMu.Unlock()

	all := readAll(t, cfg)
	if n := len(all[RetryTopic(intID)]); n != 1 {
		t.Errorf("%s holds %d records, want 1", RetryTopic(intID), n)
	}
	if n := len(all[DeliveryTopic(intID)]); n != 12 {
		t.Errorf("%s holds %d records, want 12", DeliveryTopic(intID), n)
	}
	// Each delivery record carries the request as built, without its
	// secret (DESIGN: delivery-{id} holds built requests, no secret in
	// them); noSecret below greps it with the rest.
	for _, raw := range all[DeliveryTopic(intID)] {
		var rec DeliveryRecord
		if err := json.Unmarshal(raw[bytes.IndexByte(raw, '{'):], &rec); err != nil {
			t.Fatalf("delivery record %s: %v", raw, err)
		}
		b := rec.Built
		if b == nil || b.Method != "POST" || b.URL != "https://api.usebutton.com/v1/order" ||
			b.Headers["Authorization"] != "Basic ***" || !strings.Contains(b.Body, `"order_id":"`) {
			t.Errorf("delivery record %s: built request %+v, want POST .../v1/order, Basic ***, the order's body", rec.ID, b)
		}
	}
	var kinds []string
	for _, raw := range all[DLQEvents] {
		i := bytes.IndexByte(raw, '{')
		var rec struct {
			Error         string          `json:"error"`
			Details       string          `json:"details"`
			Fields        []string        `json:"fields"`
			IntegrationID string          `json:"integration_id"`
			OriginalEvent json.RawMessage `json:"original_event"`
			Status        int             `json:"status"`
		}
		if err := json.Unmarshal(raw[i:], &rec); err != nil {
			t.Fatalf("dlq record %s: %v", raw, err)
		}
		if rec.IntegrationID != intID || len(rec.OriginalEvent) == 0 || rec.Fields == nil {
			t.Errorf("dlq record lacks the platform's fields: %s", raw[i:])
		}
		kinds = append(kinds, fmt.Sprintf("%s/%d", rec.Error, rec.Status))
	}
	if len(kinds) != 3 || !strings.Contains(strings.Join(kinds, " "), ErrorDeliveryFailed+"/400") {
		t.Errorf("dlq-events: %v, want two rejects and %s/400", kinds, ErrorDeliveryFailed)
	}
	noSecret(t, all)
}

// noSecret greps every record (key and value) of every topic for the
// secret and its base64 forms (Basic auth is base64 of "key:").
func noSecret(t *testing.T, all map[string][][]byte) {
	t.Helper()
	forms := []string{secret}
	for _, s := range []string{secret, secret + ":"} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			forms = append(forms, enc.EncodeToString([]byte(s)))
		}
	}
	for _, want := range []string{RawEvents, DLQEvents, DeliveryTopic(intID), RetryTopic(intID)} {
		if _, ok := all[want]; !ok {
			t.Errorf("topic %s not read", want)
		}
	}
	n := 0
	for topic, recs := range all {
		for _, r := range recs {
			n++
			for _, f := range forms {
				// raw-events holds what clients sent: the event carrying
				// the key is theirs, and is on it as sent.
				if topic != RawEvents && bytes.Contains(r, []byte(f)) {
					t.Errorf("topic %s holds the secret (%q): %s", topic, f, r)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no record read")
	}
}
