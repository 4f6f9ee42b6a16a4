package conv

import "time"

// UTCLayout is how times are written: UTC, whole seconds.
const UTCLayout = "2006-01-02T15:04:05Z"

// ParseTime parses an RFC 3339 time with any offset; fractional seconds of
// any length are accepted, and so are a lower-case t and z (RFC 3339 §5.6).
func ParseTime(s string) (time.Time, bool) {
	if len(s) > 10 && s[10] == 't' || len(s) > 0 && s[len(s)-1] == 'z' {
		b := []byte(s)
		if b[10] == 't' {
			b[10] = 'T'
		}
		if b[len(b)-1] == 'z' {
			b[len(b)-1] = 'Z'
		}
		s = string(b)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// WritableUTC reports whether t, in UTC, has a four-digit year, so that it
// can be written in UTCLayout.
func WritableUTC(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// AppendUTC appends t in UTC as 2006-01-02T15:04:05Z, dropping (not
// rounding) fractional seconds.
func AppendUTC(dst []byte, t time.Time) []byte {
	return t.UTC().Truncate(time.Second).AppendFormat(dst, UTCLayout)
}
