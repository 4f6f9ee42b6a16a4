package send

import (
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":               0,
		"0":              0,
		"1":              time.Second,
		" 120 ":          2 * time.Minute,
		"-5":             0,
		"soon":           0,
		"99999999999999": 365 * 24 * time.Hour,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	}
	for in, want := range cases {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestAdaptiveLimiter(t *testing.T) {
	l := newAdaptiveLimiter(0, 0)
	if l.l.Limit() != rate.Inf {
		t.Fatal("unlimited at first")
	}
	l.slowDown()
	if l.current != 100 {
		t.Errorf("first 429: %v, want 100/s", l.current)
	}
	l.slowDown() // within a second: the same overload
	if l.current != 100 {
		t.Errorf("second 429 within a second: %v", l.current)
	}
	for range 100 {
		l.speedUp()
	}
	if l.l.Limit() != rate.Inf {
		t.Errorf("recovered to %v, want unlimited", l.l.Limit())
	}
	capped := newAdaptiveLimiter(3, 0)
	capped.slowDown()
	if capped.current != 3 {
		t.Errorf("a configured rate below the floor stays: %v", capped.current)
	}
}

// TestMulSat: the bound on items held for batches does not wrap around
// for a policy of huge limits (a config without max), which would make it
// negative and stop the worker claiming after one held item.
func TestMulSat(t *testing.T) {
	if got := mulSat(17, math.MaxInt/4); got != math.MaxInt {
		t.Fatalf("mulSat overflowed to %d", got)
	}
	if got := mulSat(17, 1000); got != 17000 {
		t.Fatalf("mulSat(17, 1000) = %d", got)
	}
}

// An event's messageId may be as long as the event: a log line shows 200
// bytes of it, cut on a rune.
func TestAdvLogTextIsBounded(t *testing.T) {
	long := strings.Repeat("é", 1000)
	if got := LogText(long); len(got) > 203 || !strings.HasSuffix(got, "...") || !utf8.ValidString(got) {
		t.Fatalf("%d bytes: %q", len(got), got)
	}
	if LogText("m-1") != "m-1" {
		t.Fatal("short text changed")
	}
}
