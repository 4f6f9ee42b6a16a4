package auth

import (
	"math"
	"sync"
	"time"
)

// Limiter allows each key (a user, an address) perMinute requests a
// minute: a token bucket of perMinute tokens that refills continuously, so
// a burst of perMinute is allowed, then one request every 60/perMinute
// seconds. Keys idle long enough for their bucket to be full again are
// forgotten (they are then the same as new keys), and at most maxKeys are
// kept, so memory stays bounded whatever the keys. It is safe for
// concurrent use.
type Limiter struct {
	mu        sync.Mutex
	now       func() time.Time
	burst     float64 // tokens a full bucket holds
	rate      float64 // tokens per second
	buckets   map[string]*bucket
	lastSweep time.Time
	// maxKeys bounds the number of keys kept; when full after a sweep, an
	// arbitrary key is forgotten to make room.
	maxKeys int
}

type bucket struct {
	tokens float64
	last   time.Time
}

// defaultMaxKeys bounds the memory of a Limiter to a few megabytes.
const defaultMaxKeys = 100_000

// NewLimiter returns a Limiter of perMinute requests per key per minute
// (perMinute < 1: no limit). now is the clock (nil: time.Now).
func NewLimiter(perMinute int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		now:     now,
		burst:   float64(perMinute),
		rate:    float64(perMinute) / 60,
		buckets: map[string]*bucket{},
		maxKeys: defaultMaxKeys,
	}
}

// Allow takes one request of key. When it is refused, retryAfter is the wait
// (whole seconds, at least one) until the next request of key is allowed.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.burst < 1 {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if now.Sub(l.lastSweep) >= l.fullAfter() || len(l.buckets) >= l.maxKeys {
			l.sweep(now)
		}
		for k := range l.buckets {
			if len(l.buckets) < l.maxKeys {
				break
			}
			delete(l.buckets, k)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	} else if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	secs := math.Ceil((1 - b.tokens) / l.rate)
	return false, max(time.Second, time.Duration(secs)*time.Second)
}

// fullAfter is how long an empty bucket takes to fill.
func (l *Limiter) fullAfter() time.Duration {
	return time.Duration(math.Ceil(l.burst / l.rate * float64(time.Second)))
}

// sweep forgets the keys whose bucket is full again by now.
func (l *Limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}
