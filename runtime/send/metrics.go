package send

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// Metrics receives what the sender and the worker observe, item by item: a
// service exports it (Prometheus, say) or shows it live. Implementations
// must be safe for concurrent use and fast: they are called on every
// attempt, from the goroutines that make them.
type Metrics interface {
	// Attempt is called after each try of a request.
	Attempt(AttemptInfo)
	// Final is called once an item's final state is stored in the outbox.
	Final(FinalInfo)
}

// AttemptInfo is one try of a request, as Metrics.Attempt receives it.
type AttemptInfo struct {
	// Item is the outbox item's ID; "" for a request sent with Sender.Do
	// outside a Worker.
	Item        string
	Integration string
	// MessageID is how a live view names the item's event: the Worker
	// gives the item's message ID, the Kafka deliverer the event's
	// EventRef ("" outside them).
	MessageID string
	// Status is the HTTP status (0: no answer).
	Status  int
	Outcome runtime.Outcome
	// Latency is the vendor's time, from sending to the end of the answer.
	Latency time.Duration
	// Message says why, for a try that did not deliver (redacted, like the
	// dead letter's LastError).
	Message string
}

// FinalInfo is an item that reached a final state, as Metrics.Final
// receives it: what a live view or a dead-letter alert needs, never a
// secret (the item's event is not included).
type FinalInfo struct {
	// Item is the outbox item's ID.
	Item        string
	Integration string
	// State is Delivered, Dead or Skipped.
	State outbox.State
	// Attempts is how many tries were made (0: skipped, or no longer
	// deliverable, before any).
	Attempts int
	// Status is the last answer's HTTP status (0: none).
	Status int
	// Message says why an item is dead or skipped (the outbox's LastError);
	// "" when delivered.
	Message string
	// MessageID names the item's event, as AttemptInfo's does.
	MessageID   string
	VendorEvent string
	// At is when the final state was stored.
	At time.Time
}

type nopMetrics struct{}

func (nopMetrics) Attempt(AttemptInfo) {}
func (nopMetrics) Final(FinalInfo)     {}

// Hooks is a Metrics made of two functions; either may be nil.
type Hooks struct {
	OnAttempt func(AttemptInfo)
	OnFinal   func(FinalInfo)
}

// Attempt implements Metrics.
func (h Hooks) Attempt(a AttemptInfo) {
	if h.OnAttempt != nil {
		h.OnAttempt(a)
	}
}

// Final implements Metrics.
func (h Hooks) Final(f FinalInfo) {
	if h.OnFinal != nil {
		h.OnFinal(f)
	}
}

// Tee returns a Metrics that tells each of ms, in order (nil ones are left
// out).
func Tee(ms ...Metrics) Metrics {
	var t tee
	for _, m := range ms {
		if m != nil {
			t = append(t, m)
		}
	}
	return t
}

type tee []Metrics

func (t tee) Attempt(a AttemptInfo) {
	for _, m := range t {
		m.Attempt(a)
	}
}

func (t tee) Final(f FinalInfo) {
	for _, m := range t {
		m.Final(f)
	}
}

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
func (c *Counters) Attempt(a AttemptInfo) {
	c.Attempts.Add(1)
	if a.Outcome == runtime.Retry {
		c.Retries.Add(1)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.statuses == nil {
		c.statuses = map[int]int64{}
		c.buckets = make([]int64, len(latencyBounds)+1)
	}
	c.statuses[a.Status]++
	i := sort.Search(len(latencyBounds), func(i int) bool { return a.Latency <= latencyBounds[i] })
	c.buckets[i]++
}

// Final implements Metrics.
func (c *Counters) Final(f FinalInfo) {
	switch f.State {
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
