package conv

import (
	"strings"
	"testing"
	"time"
)

// The fast RFC 3339 path agrees with the time package, instant by instant.
func TestParseRFC3339MatchesTime(t *testing.T) {
	cases := []string{
		"2026-11-24T10:15:30.123Z", "2026-02-25T16:30:00.999+02:00", "2026-02-25t14:30:00z",
		"2024-02-29T23:59:59-23:59", "0000-01-01T00:00:00Z", "0000-01-01T00:00:00+01:00",
		"9999-12-31T23:59:59-01:00", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.5Z",
		"2026-02-30T00:00:00Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
		"2026-01-01T00:60:00Z", "2026-01-01T00:00:60Z", "2026-01-01T00:00:00", "2026-01-01 00:00:00Z",
		"2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+0100", "2026-01-01T00:00:00+24:00", "x026-01-01T00:00:00Z",
		"", "2026-01-01", "2026-01-01T00:00:00.123456789123Z",
	}
	for _, s := range cases {
		tm, err := time.Parse(time.RFC3339Nano, strings.NewReplacer("t", "T", "z", "Z").Replace(s))
		okStd := err == nil && !strings.Contains(s, "+24:")
		secs, okFast := ParseRFC3339([]byte(s))
		if okStd != okFast {
			t.Errorf("%q: time.Parse ok=%v, fast ok=%v", s, okStd, okFast)
			continue
		}
		if !okStd {
			continue
		}
		want := string(AppendUTC(nil, tm))
		if p, ok := ParseTime(s); !ok || string(AppendUTC(nil, p)) != want {
			t.Errorf("%q: ParseTime disagrees", s)
		}
		got, writable := AppendUTCSeconds(nil, secs)
		if writable != WritableUTC(tm) {
			t.Errorf("%q: writable %v, want %v", s, writable, WritableUTC(tm))
		}
		if writable && string(got) != want {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
	// Every day of several years round-trips.
	for d := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2030; d = d.Add(97 * time.Hour) {
		s := d.Format(time.RFC3339)
		secs, ok := ParseRFC3339([]byte(s))
		got, _ := AppendUTCSeconds(nil, secs)
		if !ok || string(got) != s {
			t.Fatalf("%s -> %s", s, got)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	cases := []struct {
		in   string
		exp  int
		want int64
		err  bool
	}{
		{"25.50", 2, 2550, false}, {"1.005", 2, 101, false}, {"0.125", 2, 13, false}, {"0.124", 2, 12, false},
		{"1500.5", 0, 1501, false}, {"12.3456", 3, 12346, false}, {"-1.005", 2, -101, false}, {"1e3", 2, 0, true},
		{"abc", 2, 0, true}, {".5", 2, 0, true}, {"5.", 2, 0, true}, {"99999999999999999999", 2, 0, true}, {"0", 2, 0, false},
		// The largest amount that fits: math.MaxInt64 minor units, and one over.
		{"92233720368547758.07", 2, 9223372036854775807, false}, {"92233720368547758.08", 2, 0, true},
		{"9223372036854775807", 0, 9223372036854775807, false}, {"9223372036854775808", 0, 0, true},
		{"92233720368547758.065", 2, 9223372036854775807, false}, {"92233720368547758.075", 2, 0, true},
	}
	for _, c := range cases {
		got, err := MinorUnits([]byte(c.in), c.exp, false)
		if (err != nil) != c.err || !c.err && got != c.want {
			t.Errorf("MinorUnits(%q, %d) = %d, %v", c.in, c.exp, got, err)
		}
	}
	if got, err := MinorUnits([]byte("1.5e2"), 2, true); err != nil || got != 15000 {
		t.Errorf("exponent form: %d %v", got, err)
	}
	// Below zero as written, whatever the rounding.
	for _, c := range []struct {
		in   string
		exp  int
		want int64
		neg  bool
	}{
		{"-0.001", 2, 0, true}, {"-0.004", 2, 0, true}, {"-0.4", 0, 0, true}, {"-0.005", 2, -1, true},
		{"-1", 2, -100, true}, {"-0", 2, 0, false}, {"-0.00", 2, 0, false}, {"0.001", 2, 0, false}, {"-0e5", 2, 0, false},
	} {
		got, neg, err := MinorUnitsSign([]byte(c.in), c.exp, true)
		if err != nil || got != c.want || neg != c.neg {
			t.Errorf("MinorUnitsSign(%q, %d) = %d, %v, %v; want %d, %v", c.in, c.exp, got, neg, err, c.want, c.neg)
		}
	}
}

// ParseTime keeps the fraction to the nanosecond (for parse_time's
// arithmetic); AppendUTC still writes whole seconds.
func TestParseTimeFraction(t *testing.T) {
	for s, nanos := range map[string]int{
		"2026-03-01T06:00:00.250Z":           250_000_000,
		"2026-03-01T06:00:00.123456789Z":     123_456_789,
		"2026-03-01T06:00:00.1234567891234Z": 123_456_789,
		"2026-03-01T06:00:00Z":               0,
		"2026-03-01T08:00:00.5+02:00":        500_000_000,
	} {
		p, ok := ParseTime(s)
		if !ok || p.Nanosecond() != nanos || string(AppendUTC(nil, p)) != "2026-03-01T06:00:00Z" {
			t.Errorf("ParseTime(%q) = %v (%d ns), %v", s, p, p.Nanosecond(), ok)
		}
	}
}
