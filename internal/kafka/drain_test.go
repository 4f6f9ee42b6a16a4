package kafka

import (
	"context"
	"testing"
	"time"
)

// TestDrainOutcomeTakenByRevoke: at shutdown, drain waits for the attempts
// in flight; a revocation running at the same time may read and settle
// their outcomes first. drain must then see nothing is in flight any more
// and return, not wait for an outcome that will never come.
func TestDrainOutcomeTakenByRevoke(t *testing.T) {
	d := NewDeliverer(DelivererOptions{Registry: NewRegistry(), IntegrationID: intID})
	d.results = make(chan outcome, 1)
	d.inflight = 1
	done := make(chan error, 1)
	go func() { done <- d.drain(context.Background(), nil) }()
	time.Sleep(50 * time.Millisecond) // drain is waiting for the outcome
	// What revoked does with the outcome it read: settled, no longer in flight.
	d.mu.Lock()
	d.inflight--
	d.mu.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("drain still waits for an outcome settled by the revocation")
	}
}
