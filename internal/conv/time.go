package conv

import "time"

// UTCLayout is how times are written: UTC, whole seconds.
const UTCLayout = "2006-01-02T15:04:05Z"

// ParseTime parses an RFC 3339 time with any offset; fractional seconds of
// any length are accepted.
func ParseTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// AppendUTC appends t in UTC as 2006-01-02T15:04:05Z, dropping (not
// rounding) fractional seconds.
func AppendUTC(dst []byte, t time.Time) []byte {
	return t.UTC().Truncate(time.Second).AppendFormat(dst, UTCLayout)
}
