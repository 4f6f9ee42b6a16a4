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
