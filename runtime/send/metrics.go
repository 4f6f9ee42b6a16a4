package send

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// Metrics receives what the sender and the worker observe; a serve layer
// exports it (Prometheus, say). Implementations must be safe for concurrent
// use and fast: they are called on every attempt.
type Metrics interface {
	// Attempt: one try, with the HTTP status (0: no answer), its outcome
	// and the vendor's latency.
	Attempt(integration string, status int, outcome runtime.Outcome, latency time.Duration)
	// Final: an item reached a final state.
	Final(integration string, state outbox.State)
}

type nopMetrics struct{}

func (nopMetrics) Attempt(string, int, runtime.Outcome, time.Duration) {}
func (nopMetrics) Final(string, outbox.State)                          {}

// Counters is an in-memory Metrics: counts per outcome and final state, and
// a latency histogram. The CLI shows it as progress.
type Counters struct {
	Attempts, Retries, Delivered, Dead, Skipped atomic.Int64

	mu       sync.Mutex
	statuses map[int]int64
	// latency buckets, upper bounds in milliseconds
	buckets []int64
}

var latencyBounds = []time.Duration{5 * time.Millisecond, 20 * time.Millisecond, 100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second, 10 * time.Second}

// Attempt implements Metrics.
func (c *Counters) Attempt(_ string, status int, outcome runtime.Outcome, latency time.Duration) {
	c.Attempts.Add(1)
	if outcome == runtime.Retry {
		c.Retries.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statuses == nil {
		c.statuses = map[int]int64{}
		c.buckets = make([]int64, len(latencyBounds)+1)
	}
	c.statuses[status]++
	i := sort.Search(len(latencyBounds), func(i int) bool { return latency <= latencyBounds[i] })
	c.buckets[i]++
}

// Final implements Metrics.
func (c *Counters) Final(_ string, state outbox.State) {
	switch state {
	case outbox.Delivered:
		c.Delivered.Add(1)
	case outbox.Dead:
		c.Dead.Add(1)
	case outbox.Skipped:
		c.Skipped.Add(1)
	}
}

// Statuses returns how many answers had each status (0: no answer).
func (c *Counters) Statuses() map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[int]int64, len(c.statuses))
	for k, v := range c.statuses {
		out[k] = v
	}
	return out
}
