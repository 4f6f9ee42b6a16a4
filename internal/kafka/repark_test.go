package kafka

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/runtime/send"
)

// clock is a settable time for a deliverer's Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestDelivererReparksLongWaits: a request the vendor answers 503 waits an
// hour on the retry topic. The orders behind it are delivered meanwhile,
// and once it has been held ReparkAfter it is produced again to the retry
// topic's tail, so the group's committed offset on that topic moves past
// it (a crash would not make anyone read the records behind it again).
// When it is due it is delivered, once.
func TestDelivererReparksLongWaits(t *testing.T) {
	cfg := cluster(t)
	reg := registry(t)
	v := newVendor(t)
	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	events := [][]byte{order("flaky-wait", 1)}
	for i := range 4 {
		events = append(events, order(fmt.Sprintf("behind-%d", i), 10+i))
	}
	if err := ing.Ingest(ctx, events...); err != nil {
		t.Fatal(err)
	}
	run(t, NewProcessor(ProcessorOptions{Config: cfg, Registry: reg}).Run)

	clk := &clock{t: time.Now()}
	hour := send.Policy{MaxAttempts: 5, Base: time.Hour, Cap: time.Hour, MaxAge: 24 * time.Hour}
	d := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID,
		Sender: send.New(send.Options{VendorURL: v.url}), Policy: hour, ReparkAfter: 10 * time.Minute, Now: clk.Now})
	run(t, d.Run)
	waitFor(t, "4 orders delivered and one retry scheduled", func() bool {
		return d.Stats.Delivered.Load() == 4 && d.Stats.Retried.Load() == 1
	})
	if got := d.Stats.Reparked.Load(); got != 0 {
		t.Fatalf("%d records reparked before ReparkAfter", got)
	}
	committed := func() int64 {
		adm := kadm.NewClient(mustClient(t, cfg))
		offs, err := adm.FetchOffsets(ctx, DeliverGroup(intID))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == RetryTopic(intID) {
				n += o.At
			}
		})
		return n
	}
	// The retry record is held (read, not settled): nothing committed on
	// the retry topic yet.
	time.Sleep(300 * time.Millisecond)
	if got := committed(); got > 0 {
		t.Fatalf("retry topic committed up to %d while its only record waits", got)
	}
	clk.add(11 * time.Minute)
	waitFor(t, "the waiting record reparked", func() bool { return d.Stats.Reparked.Load() >= 1 })
	waitFor(t, "the retry topic's offset past the reparked record", func() bool { return committed() >= 1 })
	if got := v.fb.Stats().Created; got != 4 {
		t.Fatalf("vendor has %d orders, want 4 (the waiting one not due)", got)
	}
	clk.add(time.Hour)
	waitFor(t, "the waiting order delivered", func() bool { return d.Stats.Delivered.Load() == 5 })
	st := v.fb.Stats()
	if st.Created != 5 || st.Duplicates != 0 {
		t.Errorf("vendor: %d created, %d duplicates; want 5 and 0", st.Created, st.Duplicates)
	}
	if n := d.Stats.Reparked.Load(); n != 1 {
		t.Errorf("%d reparks, want 1 (a reparked record is read anew, and held from then)", n)
	}
}

func mustClient(t *testing.T, cfg Config) *kgo.Client {
	t.Helper()
	cl, err := cfg.client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}
