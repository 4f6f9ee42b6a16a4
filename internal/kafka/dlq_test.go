package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/delivery/deliverytest"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

const wrongKey = "sk-wrong-Kq81SECRET"

func bindButton(t *testing.T, key string) delivery.Binding {
	return deliverytest.BindButton(t, intID, key)
}

// logBuffer is a log destination safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func openIndex(t *testing.T, cfg Config, path string, maxRejects int, logs ...*logBuffer) *DLQIndex {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	if len(logs) > 0 {
		log = slog.New(slog.NewTextHandler(logs[0], nil))
	}
	x, err := OpenDLQIndex(DLQIndexOptions{Config: cfg, Path: path, MaxRejects: maxRejects, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func produce(t *testing.T, cfg Config, recs ...*kgo.Record) {
	t.Helper()
	cl, err := cfg.client()
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

func ids(dls []DeadLetter) []string {
	var out []string
	for _, dl := range dls {
		out = append(out, dl.ID)
	}
	return out
}

// TestDLQIndexReplay: orders sent with a wrong key are 401 dead letters
// on dlq-events, an order without order_id a reject, and a record that
// cannot be read is listed with its reason. The index lists them; the
// key is corrected and every dead letter replayed: the orders reach the
// vendor once each with the new key, the reject is answered again (a new
// dead letter), the unreadable one stays. Reopened, the index has read
// nothing twice and remembers the replay; no secret is in its file.
func TestDLQIndexReplay(t *testing.T) {
	cfg := cluster(t)
	v := newVendor(t)
	reg := NewRegistry(bindButton(t, wrongKey))
	path := filepath.Join(t.TempDir(), DLQIndexFile)
	var logs logBuffer
	x := openIndex(t, cfg, path, 0, &logs)
	stopX := run(t, x.Run)

	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	noID := []byte(`{"type":"track","event":"Order Completed","messageId":"msg-noid","userId":"u-9","context":{"consent":{"advertising":true}},"properties":{"subtotal":"1.00","currency":"USD"}}`)
	if err := ing.Ingest(ctx, order("dl-1", 1), order("dl-2", 2), noID); err != nil {
		t.Fatal(err)
	}
	produce(t, cfg, &kgo.Record{Topic: DLQEvents, Value: []byte(`{"integration_id":"` + intID + `","kind":"delivery","item_id":7}`)},
		&kgo.Record{Topic: DLQEvents, Value: []byte(`not json at all`)})
	run(t, NewProcessor(ProcessorOptions{Config: cfg, Registry: reg}).Run)
	del := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: send.New(send.Options{VendorURL: v.url}), Policy: fastPolicy()})
	run(t, del.Run)

	var list []DeadLetter
	waitFor(t, "2 dead deliveries, 1 reject, 1 unreadable", func() bool {
		if list, err = x.List(intID); err != nil {
			t.Fatal(err)
		}
		return len(list) == 4
	})
	var dead []DeadLetter
	var rej, bad DeadLetter
	for _, dl := range list {
		switch {
		case dl.Error == ErrorUnreadable:
			bad = dl
		case dl.Kind == KindDelivery:
			dead = append(dead, dl)
		default:
			rej = dl
		}
	}
	if len(dead) != 2 || dead[0].Status != 401 || dead[0].Attempts != 1 || dead[0].Error != ErrorDeliveryFailed || !isObject(dead[0].OriginalEvent) {
		t.Fatalf("dead deliveries: %+v", dead)
	}
	if rej.Error != runtime.ReasonMissingRequiredField || len(rej.Fields) == 0 || rej.Fields[0] != "order_id" || rej.ID[:4] != RejectIDPrefix {
		t.Fatalf("reject: %+v", rej)
	}
	if bad.Kind != KindDelivery || bad.Unreadable == "" || !bytes.Contains([]byte(bad.Details), []byte("could not be read")) {
		t.Fatalf("unreadable: %+v", bad)
	}
	// The record naming no integration cannot be listed: it is logged.
	if l := logs.String(); !strings.Contains(l, "names no integration") || !strings.Contains(l, "listed with its reason") {
		t.Fatalf("unreadable records not logged: %s", l)
	}
	if _, err := x.Get(intID, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an unknown ID: %v", err)
	}
	if got, err := x.Get(intID, dead[0].ID); err != nil || got.ID != dead[0].ID {
		t.Fatalf("Get: %+v %v", got, err)
	}

	// An unknown delivery ID: nothing replayed.
	fixed := bindButton(t, secret)
	if _, err := x.Replay(ctx, fixed, []string{dead[0].ID, "nope"}, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("replay of an unknown ID: %v", err)
	}
	if l, _ := x.List(intID); len(l) != 4 {
		t.Fatalf("a refused replay changed the list: %v", ids(l))
	}

	// The key corrected, everything replayed.
	reg.Set(fixed)
	res, err := x.Replay(ctx, fixed, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 3 || len(res.Decisions) != 1 || res.Decisions[0].Result.Outcome != runtime.Reject {
		t.Fatalf("replay: %+v", res)
	}
	// The reject answered again is listed when Replay returns, under the
	// same ID: the same event rejected by the same integration is one dead
	// letter (as a reject produced twice by a restarted processor is).
	list, _ = x.List(intID)
	if len(list) != 2 || list[0].ID != bad.ID || list[1].Kind != KindReject || list[1].ID != rej.ID || !list[1].ReplayedAt.IsZero() {
		t.Fatalf("after replay: %+v", list)
	}
	waitFor(t, "both orders at the vendor", func() bool { return v.fb.Stats().Created == 2 })
	time.Sleep(200 * time.Millisecond)
	if st := v.fb.Stats(); st.Created != 2 || st.Duplicates != 0 {
		t.Fatalf("vendor: %+v", st)
	}
	// Replayed again: nothing to do for the dead delivery (the reject,
	// answered again, is listed under its ID: another replay would
	// evaluate it again); unknown rejects are named: 404.
	if res, err := x.Replay(ctx, fixed, []string{dead[0].ID}, time.Now()); err != nil || res.Replayed != 0 {
		t.Fatalf("second replay: %+v %v", res, err)
	}
	var nf *NotFoundError
	if _, err := x.Replay(ctx, fixed, []string{dead[0].ID, "rej_8_8", "rej_9_9"}, time.Now()); !errors.As(err, &nf) || !errors.Is(err, ErrNotFound) ||
		strings.Join(nf.IDs, ",") != "rej_8_8,rej_9_9" {
		t.Fatalf("replay of unknown rejects: %v", err)
	}
	if _, err := x.Get(intID, dead[0].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a replayed dead letter is still shown: %v", err)
	}

	// Reopened: the same list, nothing read twice.
	if err := stopX(); err != nil {
		t.Fatal(err)
	}
	x.Close()
	x = openIndex(t, cfg, path, 0)
	defer x.Close()
	run(t, x.Run)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	defer scancel()
	if err := x.Sync(sctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := x.List(intID); len(again) != 2 || again[1].ID != list[1].ID {
		t.Fatalf("reopened: %v, want %v", ids(again), ids(list))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, wrongKey} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the index holds %s", s)
		}
	}
}

// TestDLQIndexKeepsNewestRejects: beyond MaxRejects the oldest rejects
// are dropped, never a dead delivery; a dead delivery that dies again is
// one entry, listed again after a replay.
func TestDLQIndexKeepsNewestRejects(t *testing.T) {
	cfg := cluster(t)
	x := openIndex(t, cfg, filepath.Join(t.TempDir(), DLQIndexFile), 3)
	defer x.Close()
	run(t, x.Run)
	rejectRec := func(n int) *kgo.Record { return rejectRecord(`{"n":` + string(rune('0'+n)) + `}`) }
	deadRec := func(status int) *kgo.Record {
		v, _ := json.Marshal(DeadRecord{RejectRecord: delivery.RejectRecord{Error: ErrorDeliveryFailed, Fields: []string{}, IntegrationID: intID,
			OriginalEvent: json.RawMessage(`{"messageId":"m-1"}`)}, Kind: KindDelivery, ItemID: "abc123", Status: status, Attempts: 1})
		return &kgo.Record{Topic: DLQEvents, Key: []byte("u-1"), Value: v}
	}
	// An item ID bbolt could not hold as a key is an unreadable dead
	// letter: it does not stop the index.
	huge := &kgo.Record{Topic: DLQEvents, Key: []byte("u-1"), Value: []byte(`{"kind":"delivery","integration_id":"int_other","item_id":"` + strings.Repeat("x", 40_000) + `","error":"e","fields":[],"original_event":null}`)}
	produce(t, cfg, huge, deadRec(401), rejectRec(1), rejectRec(2), rejectRec(3), rejectRec(4), rejectRec(5))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := x.List(intID)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 || list[0].ID != "abc123" || string(list[1].OriginalEvent) != `{"n":5}` || string(list[3].OriginalEvent) != `{"n":3}` {
		t.Fatalf("list: %+v", list)
	}
	if other, err := x.List("int_other"); err != nil || len(other) != 1 || other[0].Error != ErrorUnreadable || other[0].Kind != KindDelivery {
		t.Fatalf("the huge item ID: %+v %v", other, err)
	}
	b := bindButton(t, secret)
	if res, err := x.Replay(ctx, b, []string{"abc123"}, time.Now()); err != nil || res.Replayed != 1 {
		t.Fatalf("replay: %+v %v", res, err)
	}
	produce(t, cfg, deadRec(403))
	if err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	dl, err := x.Get(intID, "abc123")
	if err != nil || dl.Status != 403 || dl.Records != 2 {
		t.Fatalf("died again: %+v %v", dl, err)
	}
}

// TestDLQIndexUnavailable: a replay that cannot catch up with dlq-events
// (the index is not running) or reach Kafka is ErrUnavailable, and
// replays nothing.
func TestDLQIndexUnavailable(t *testing.T) {
	cfg := cluster(t)
	x := openIndex(t, cfg, filepath.Join(t.TempDir(), DLQIndexFile), 0)
	defer x.Close()
	v, _ := json.Marshal(delivery.RejectRecord{Error: "missing_required_field", Fields: []string{}, IntegrationID: intID, OriginalEvent: json.RawMessage(`{}`)})
	produce(t, cfg, &kgo.Record{Topic: DLQEvents, Value: v})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := x.Replay(ctx, bindButton(t, secret), nil, time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("replay without the index running: %v", err)
	}
	bad := openIndex(t, Config{Brokers: []string{"127.0.0.1:1"}}, filepath.Join(t.TempDir(), DLQIndexFile), 0)
	defer bad.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := bad.Sync(ctx2); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("sync without a broker: %v", err)
	}
}

// TestDLQIndexRejectProducedTwice: a processor restarted before its commit
// evaluates the same records again and produces their rejects again; the
// index lists such a reject once (its ID is the integration's and the
// event's), while another event's reject is its own entry, and a record
// without its event is named by where it is.
func TestDLQIndexRejectProducedTwice(t *testing.T) {
	cfg := cluster(t)
	x := openIndex(t, cfg, filepath.Join(t.TempDir(), DLQIndexFile), 0)
	defer x.Close()
	run(t, x.Run)
	rec := rejectRecord
	produce(t, cfg, rec(`{"messageId":"m-1"}`), rec(`{"messageId":"m-2"}`), rec(`{"messageId":"m-1"}`), rec(`null`), rec(`null`))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := x.List(intID)
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, dl := range list {
		if !strings.HasPrefix(dl.ID, RejectIDPrefix) {
			t.Errorf("reject ID %q", dl.ID)
		}
		events = append(events, string(dl.OriginalEvent))
	}
	// Newest first: the second m-1 replaced the first.
	if want := []string{"null", "null", `{"messageId":"m-1"}`, `{"messageId":"m-2"}`}; !slices.Equal(events, want) {
		t.Fatalf("listed %q (%v), want %q", events, ids(list), want)
	}
	if list[0].ID == list[1].ID {
		t.Errorf("two records without their event share the ID %s", list[0].ID)
	}
}

// rejectRecord is a dlq-events record of intID rejecting event.
func rejectRecord(event string) *kgo.Record {
	v, _ := json.Marshal(delivery.RejectRecord{Error: "missing_required_field", Details: "d", Fields: []string{"order_id"}, IntegrationID: intID,
		OriginalEvent: json.RawMessage(event)})
	return &kgo.Record{Topic: DLQEvents, Key: []byte("u-1"), Value: v}
}
