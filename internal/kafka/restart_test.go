package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/send"
)

// TestDelivererCrashBeforeCommit: a deliverer sends an order, the vendor
// takes it, and the deliverer dies before committing; a new deliverer in
// the group reads the record again and sends the same item (same ID, same
// order_id): the fake Button answers 409, counted as delivered. Every
// order reaches the vendor exactly once.
func TestDelivererCrashBeforeCommit(t *testing.T) {
	cfg := cluster(t)
	reg := registry(t)
	v := newVendor(t)
	ing, err := NewIngester(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ing.Close()
	var events [][]byte
	for i := range 5 {
		events = append(events, order(fmt.Sprintf("crash-%d", i), i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ing.Ingest(ctx, events...); err != nil {
		t.Fatal(err)
	}
	proc := NewProcessor(ProcessorOptions{Config: cfg, Registry: reg})
	run(t, proc.Run)

	var mu sync.Mutex
	sent := map[string]int{} // item ID -> attempts, across both deliverers
	sender := send.New(send.Options{VendorURL: v.url})
	first := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: sender, Policy: fastPolicy(), Concurrency: 1})
	first.afterAttempt = func(rec DeliveryRecord, a send.Attempt) bool {
		mu.Lock()
		defer mu.Unlock()
		sent[rec.ID]++
		return a.Status == 200 // dies right after the vendor took it
	}
	errc := make(chan error, 1)
	go func() { errc <- first.Run(context.Background()) }()
	select {
	case err := <-errc:
		if !errors.Is(err, errCrashed) {
			t.Fatalf("first deliverer: %v, want a crash", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first deliverer never sent")
	}
	if got := v.fb.Stats().Created; got != 1 {
		t.Fatalf("vendor has %d orders after the crash, want 1", got)
	}

	second := NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: intID, Sender: sender, Policy: fastPolicy()})
	second.afterAttempt = func(rec DeliveryRecord, a send.Attempt) bool {
		mu.Lock()
		defer mu.Unlock()
		sent[rec.ID]++
		return false
	}
	run(t, second.Run)
	waitFor(t, "5 orders delivered by the second deliverer", func() bool { return second.Stats.Delivered.Load() == 5 })
	st := v.fb.Stats()
	if st.Created != 5 || st.Duplicates != 1 {
		t.Errorf("vendor: %d created, %d duplicates; want 5 and 1 (the re-sent item)", st.Created, st.Duplicates)
	}
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for id, n := range sent {
		switch n {
		case 1:
		case 2:
			twice++
		default:
			t.Errorf("item %s sent %d times", id, n)
		}
	}
	if twice != 1 || len(sent) != 5 {
		t.Errorf("%d items, %d sent twice; want 5 items, the crashed one (same ID) sent twice", len(sent), twice)
	}
}
