package auth

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiter(100, c.now)
	for i := range 100 {
		if ok, ra := l.Allow("usr_a"); !ok || ra != 0 {
			t.Fatalf("request %d refused (%v)", i+1, ra)
		}
	}
	ok, ra := l.Allow("usr_a")
	if ok {
		t.Fatal("the 101st request in a minute is allowed")
	}
	if ra < time.Second || ra%time.Second != 0 {
		t.Errorf("Retry-After %v, want whole seconds, at least 1", ra)
	}
	// Another key has its own budget.
	if ok, _ := l.Allow("usr_b"); !ok {
		t.Error("another key is refused")
	}
	// Waiting Retry-After is enough for one more, not two.
	c.add(ra)
	if ok, _ := l.Allow("usr_a"); !ok {
		t.Errorf("refused after waiting Retry-After %v", ra)
	}
	if ok, ra = l.Allow("usr_a"); ok || ra < time.Second {
		t.Errorf("a second request right after: %v, %v", ok, ra)
	}
	// A full minute refills the whole budget, and no more.
	c.add(time.Minute)
	n := 0
	for {
		ok, _ := l.Allow("usr_a")
		if !ok {
			break
		}
		n++
		if n > 1000 {
			t.Fatal("no limit")
		}
	}
	if n != 100 {
		t.Errorf("%d allowed after a minute's rest, want 100", n)
	}
	// Steady rate: 100/min is one every 0.6 s.
	allowed := 0
	for range 100 {
		c.add(600 * time.Millisecond)
		if ok, _ := l.Allow("usr_a"); ok {
			allowed++
		}
	}
	if allowed < 99 {
		t.Errorf("%d of 100 requests at the limit's own pace allowed", allowed)
	}
}

func TestLimiterRetryAfter(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		perMinute int
		want      time.Duration
	}{{100, time.Second}, {60, time.Second}, {1, time.Minute}, {2, 30 * time.Second}, {6000, time.Second}} {
		l := NewLimiter(tc.perMinute, c.now)
		for range tc.perMinute {
			l.Allow("k")
		}
		if ok, ra := l.Allow("k"); ok || ra != tc.want {
			t.Errorf("%d/min: Allow = %v, %v; want refused, %v", tc.perMinute, ok, ra, tc.want)
		}
	}
}

func TestLimiterDisabled(t *testing.T) {
	l := NewLimiter(0, nil)
	for range 1000 {
		if ok, _ := l.Allow("k"); !ok {
			t.Fatal("a limiter of 0 refuses")
		}
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	c := &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiter(100, c.now)
	for i := range 1000 {
		l.Allow(fmt.Sprint("ip-", i))
	}
	if len(l.buckets) != 1000 {
		t.Fatalf("%d keys", len(l.buckets))
	}
	// Idle for a minute: their buckets are full again, they are forgotten
	// when the next key comes.
	c.add(time.Minute)
	l.Allow("usr_busy")
	if len(l.buckets) != 1 {
		t.Errorf("%d keys kept after a minute idle, want 1", len(l.buckets))
	}
	// A key still draining is kept (forgetting it would reset its limit).
	for range 100 {
		l.Allow("usr_busy")
	}
	c.add(30 * time.Second)
	l.sweep(c.now())
	if _, ok := l.buckets["usr_busy"]; !ok {
		t.Fatal("a bucket half full is forgotten")
	}
	if ok, _ := l.Allow("usr_busy"); !ok {
		t.Fatal("half a minute refills half the budget")
	}
	c.add(time.Minute)
	l.Allow("newer") // a new key, a minute after the last sweep: a sweep
	if _, ok := l.buckets["usr_busy"]; ok {
		t.Error("a bucket full again is kept")
	}

	// A hard bound, whatever the rate of new keys.
	l.maxKeys = 50
	for i := range 10_000 {
		l.Allow(fmt.Sprint("flood-", i))
		if len(l.buckets) > 50 {
			t.Fatalf("%d keys, bound 50", len(l.buckets))
		}
	}
}

func TestLimiterConcurrent(t *testing.T) {
	l := NewLimiter(100, nil)
	var ok atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if yes, _ := l.Allow("shared"); yes {
					ok.Add(1)
				}
				l.Allow(fmt.Sprint("own-", g))
			}
		}()
	}
	wg.Wait()
	// 400 requests within well under a second: 100, perhaps one more.
	if n := ok.Load(); n < 100 || n > 101 {
		t.Errorf("%d of 400 concurrent requests allowed, want 100", n)
	}
}
