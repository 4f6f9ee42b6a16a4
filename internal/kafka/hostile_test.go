package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/runtime/send"
)

// produceRaw produces records as they are, with a client that takes
// records up to 2 MB (a hostile or careless producer).
func produceRaw(t *testing.T, cfg Config, recs ...*kgo.Record) {
	t.Helper()
	cl, err := cfg.client(kgo.ProducerBatchMaxBytes(2 << 20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestDelivererHostileRecords: records on delivery-{id} that no processor
// makes (garbage, a negative request index, negative attempts, another
// integration's ID, an ID of 300 KB, a record of 900 KB) are each logged
// at error with their position and passed over: no panic, no partition
// stuck behind them, no record parked for ever. The order behind them on
// the same partition is delivered.
func TestDelivererHostileRecords(t *testing.T) {
	cfg := cluster(t)
	reg := registry(t)
	v := newVendor(t)
	ev := json.RawMessage(order("hostile-ok", 1))
	rec := func(mod func(*DeliveryRecord)) []byte {
		r := DeliveryRecord{ID: "item-" + fmt.Sprint(time.Now().UnixNano()), IntegrationID: intID, Event: ev, CreatedAt: time.Now()}
		mod(&r)
		b, _ := json.Marshal(r)
		return b
	}
	pad := strings.Repeat("x", 900<<10)
	values := [][]byte{
		[]byte("not json at all"),
		rec(func(r *DeliveryRecord) { r.Request = -1 }),
		rec(func(r *DeliveryRecord) { r.Attempts = -1 << 40 }),
		rec(func(r *DeliveryRecord) { r.IntegrationID = "int_other" }),
		rec(func(r *DeliveryRecord) { r.ID = strings.Repeat("i", 300<<10) }),
		rec(func(r *DeliveryRecord) { r.Event = json.RawMessage(`{"pad":"` + pad + `"}`) }),
	}
	key := []byte("u-1")
	var recs []*kgo.Record
	for _, v := range values {
		recs = append(recs, &kgo.Record{Topic: DeliveryTopic(intID), Key: key, Value: v})
	}
	good := rec(func(r *DeliveryRecord) { r.ID = "item-good" })
	recs = append(recs, &kgo.Record{Topic: DeliveryTopic(intID), Key: key, Value: good})
	produceRaw(t, cfg, recs...)

	var logs syncBuffer
	d := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: send.New(send.Options{VendorURL: v.url}),
		Policy: fastPolicy(), UnknownWait: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, d.Run)
	waitFor(t, "the order behind the hostile records delivered", func() bool { return d.Stats.Delivered.Load() == 1 })
	waitFor(t, "every hostile record logged", func() bool { return strings.Count(logs.String(), "unreadable delivery record") == len(values) })
	time.Sleep(100 * time.Millisecond)
	if n := d.Stats.Attempts.Load(); n != 1 {
		t.Errorf("%d attempts, want 1 (the good order only)", n)
	}
	if got := v.fb.Stats().Created; got != 1 {
		t.Errorf("vendor created %d orders, want 1", got)
	}
	out := logs.String()
	for i := range values {
		if !strings.Contains(out, fmt.Sprintf("offset=%d ", i)) {
			t.Errorf("no log line names offset %d:\n%.2000s", i, out)
		}
	}
	if strings.Contains(out, pad[:1000]) {
		t.Error("a log line holds the hostile record's content")
	}
}

// TestProcessorHostileRawRecords: records on raw-events that the ingest
// API never accepts (300 KB of "<" that are not JSON, which a reject
// quotes six times larger; a key of 900 KB; an order padded to 600 KB, a
// delivery record no deliverer would take) never stop the processor on
// a produce the brokers refuse: each is a reject on dlq-events (the event
// dropped from the record when too large to keep, as embedded mode does)
// and the order behind them is delivered to its topic.
func TestProcessorHostileRawRecords(t *testing.T) {
	cfg := cluster(t)
	reg := registry(t)
	big := strings.Repeat("<", 300<<10)
	padded := strings.Replace(string(order("padded", 2)), `"properties":{`, `"properties":{"pad":"`+strings.Repeat("p", 600<<10)+`",`, 1)
	produceRaw(t, cfg,
		&kgo.Record{Topic: RawEvents, Key: []byte("u-1"), Value: []byte(big)},
		&kgo.Record{Topic: RawEvents, Key: []byte(strings.Repeat("k", 900<<10)), Value: order("long-key", 3)},
		&kgo.Record{Topic: RawEvents, Key: []byte("u-2"), Value: []byte(padded)},
		&kgo.Record{Topic: RawEvents, Key: []byte("u-4"), Value: order("fine", 4)},
	)
	var logs syncBuffer
	proc := NewProcessor(ProcessorOptions{Config: cfg, Registry: reg, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	run(t, func(ctx context.Context) error { // as serve supervises it
		for ctx.Err() == nil {
			if err := proc.Run(ctx); err != nil {
				logs.Write([]byte("run: " + err.Error() + "\n"))
				time.Sleep(50 * time.Millisecond)
			}
		}
		return nil
	})
	deadline := time.Now().Add(5 * time.Second)
	for proc.Stats.Events.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("the processor evaluated %d of 4 events in 5 s:\n%.3000s", proc.Stats.Events.Load(), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r, x := proc.Stats.Requests.Load(), proc.Stats.Rejected.Load(); r != 2 || x != 2 {
		t.Errorf("%d requests and %d rejects, want 2 (the long key's order and the fine one) and 2", r, x)
	}
	all := readAll(t, cfg)
	for _, v := range all[DeliveryTopic(intID)] {
		if len(v) > MaxRecordBytes { // key and value
			t.Errorf("a delivery record of %d bytes", len(v))
		}
	}
	var rejects []string
	for _, v := range all[DLQEvents] {
		if len(v) > MaxRecordBytes {
			t.Errorf("a dead letter of %d bytes", len(v))
		}
		var r struct {
			Error   string          `json:"error"`
			Details string          `json:"details"`
			Orig    json.RawMessage `json:"original_event"`
		}
		if err := json.Unmarshal(v[strings.IndexByte(string(v), '{'):], &r); err != nil { // readAll gives key and value
			t.Fatal(err)
		}
		if string(r.Orig) != "null" {
			t.Errorf("a reject keeps an event of %d bytes, want null (too large)", len(r.Orig))
		}
		rejects = append(rejects, r.Error+": "+r.Details)
	}
	if len(rejects) != 2 || !strings.Contains(strings.Join(rejects, "\n"), "too large") {
		t.Errorf("dlq-events:\n%s\nwant 2 rejects, saying what was too large", strings.Join(rejects, "\n"))
	}
}

// TestBogusConfigOffset: a config-offset header beyond the integrations
// topic's end (no publisher stamped it) held its raw-events records, and
// its delivery records, for ever in a process whose registry follows the
// topic: the partition stuck behind one hostile header. Now they wait
// only for the topic's end, logged at error with their position.
func TestBogusConfigOffset(t *testing.T) {
	cfg := configCluster(t)
	pub, err := NewConfigPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end, err := pub.Publish(ctx, []IntegrationRecord{{ID: intID, Vendor: "button", Config: json.RawMessage(`{}`)}}, nil)
	if err != nil || end != 1 {
		t.Fatal(end, err)
	}
	reg := NewRegistry()
	reg.SetAt(end, nil, registry(t).Bindings()...) // followed, the topic applied to its end
	bogus := []kgo.RecordHeader{{Key: ConfigHeader, Value: []byte("999999999")}}
	produceRaw(t, cfg, &kgo.Record{Topic: RawEvents, Key: []byte("u-1"), Value: order("bogus-raw", 1), Headers: bogus})
	dr, _ := json.Marshal(DeliveryRecord{ID: "item-bogus", IntegrationID: intID, Event: order("bogus-delivery", 2), CreatedAt: time.Now()})
	produceRaw(t, cfg, &kgo.Record{Topic: DeliveryTopic(intID), Key: []byte("u-2"), Value: dr, Headers: bogus})

	old := configWait
	configWait = 50 * time.Millisecond
	t.Cleanup(func() { configWait = old })
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	proc := NewProcessor(ProcessorOptions{Config: cfg, Registry: reg, Logger: log})
	run(t, proc.Run)
	v := newVendor(t)
	d := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: send.New(send.Options{VendorURL: v.url}), Policy: fastPolicy(), Logger: log})
	run(t, d.Run)
	deadline := time.Now().Add(4 * time.Second)
	for d.Stats.Delivered.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d events evaluated, %d delivered of 2 in 4 s:\n%.3000s", proc.Stats.Events.Load(), d.Stats.Delivered.Load(), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"raw-events record names a config offset beyond", "delivery record names a config offset beyond"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log %q:\n%.3000s", want, logs.String())
		}
	}
}

// TestDelivererClampsFarDueTimes: a retry record due in the year 9999 (a
// hostile or corrupt due_at) is attempted once the policy's window has
// passed, not re-parked for ever: it ends delivered or dead-lettered.
func TestDelivererClampsFarDueTimes(t *testing.T) {
	cfg := cluster(t)
	reg := registry(t)
	v := newVendor(t)
	r := DeliveryRecord{ID: "item-far", IntegrationID: intID, Event: json.RawMessage(order("far-due", 1)), CreatedAt: time.Now(),
		Attempts: 1, DueAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, _ := json.Marshal(r)
	produceRaw(t, cfg, &kgo.Record{Topic: RetryTopic(intID), Key: []byte("u-1"), Value: b})
	clk := &clock{t: time.Now()}
	d := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: send.New(send.Options{VendorURL: v.url}),
		Policy: send.Policy{MaxAttempts: 5, Base: time.Minute, Cap: time.Hour, MaxAge: 24 * time.Hour}, Now: clk.Now})
	run(t, d.Run)
	time.Sleep(300 * time.Millisecond) // read and held
	clk.add(25 * time.Hour)
	waitFor(t, "the far-due record attempted and delivered", func() bool { return d.Stats.Delivered.Load() == 1 })
}
