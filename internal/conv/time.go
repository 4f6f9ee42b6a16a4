package conv

import "time"

// UTCLayout is how times are written: UTC, whole seconds.
const UTCLayout = "2006-01-02T15:04:05Z"

// ParseTime parses an RFC 3339 time with any offset (hours 00-23, as RFC
// 3339 requires), fractional seconds of any length (kept to the
// nanosecond; those past the ninth digit dropped) and a t and z
// in either case.
func ParseTime(s string) (time.Time, bool) {
	secs, ok := ParseRFC3339([]byte(s))
	if !ok {
		return time.Time{}, false
	}
	// The fraction, to the nanosecond (digits past the ninth dropped).
	var nanos int64
	if len(s) > 20 && s[19] == '.' {
		scale := int64(100_000_000)
		for i := 20; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			nanos += int64(s[i]-'0') * scale
			scale /= 10
		}
	}
	return time.Unix(secs, nanos).UTC(), true
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

// ParseRFC3339 parses an RFC 3339 time (any offset, any fraction, t and z
// in either case) to Unix seconds in UTC, the fraction dropped. It is the
// allocation-free twin of ParseTime for the event path.
func ParseRFC3339(b []byte) (int64, bool) {
	// 2006-01-02T15:04:05[.frac](Z|+07:00)
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[10] != 'T' && b[10] != 't' || b[13] != ':' || b[16] != ':' {
		return 0, false
	}
	year, ok1 := digits(b[0:4])
	month, ok2 := digits(b[5:7])
	day, ok3 := digits(b[8:10])
	hour, ok4 := digits(b[11:13])
	minute, ok5 := digits(b[14:16])
	sec, ok6 := digits(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	i := 19
	if b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return 0, false
		}
	}
	var offset int64
	switch {
	case i == len(b)-1 && (b[i] == 'Z' || b[i] == 'z'):
	case i == len(b)-6 && (b[i] == '+' || b[i] == '-') && b[i+3] == ':':
		oh, okh := digits(b[i+1 : i+3])
		om, okm := digits(b[i+4 : i+6])
		if !okh || !okm || oh > 23 || om > 59 {
			return 0, false
		}
		offset = int64(oh*3600 + om*60)
		if b[i] == '-' {
			offset = -offset
		}
	default:
		return 0, false
	}
	days := daysFromCivil(int64(year), int64(month), int64(day))
	return days*86400 + int64(hour*3600+minute*60+sec) - offset, true
}

// AppendUTCSeconds appends Unix seconds as 2006-01-02T15:04:05Z; ok is
// false when the year in UTC leaves 0000-9999.
func AppendUTCSeconds(dst []byte, secs int64) ([]byte, bool) {
	days := secs / 86400
	rem := secs % 86400
	if rem < 0 {
		rem += 86400
		days--
	}
	y, m, d := civilFromDays(days)
	if y < 0 || y > 9999 {
		return dst, false
	}
	dst = append4(dst, int(y))
	dst = append(dst, '-')
	dst = append2(dst, int(m))
	dst = append(dst, '-')
	dst = append2(dst, int(d))
	dst = append(dst, 'T')
	dst = append2(dst, int(rem/3600))
	dst = append(dst, ':')
	dst = append2(dst, int(rem%3600/60))
	dst = append(dst, ':')
	dst = append2(dst, int(rem%60))
	return append(dst, 'Z'), true
}

func digits(b []byte) (int, bool) {
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil and civilFromDays convert between proleptic Gregorian
// dates and days since 1970-01-01 (Howard Hinnant's algorithms).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func append2(dst []byte, n int) []byte { return append(dst, byte('0'+n/10), byte('0'+n%10)) }

func append4(dst []byte, n int) []byte {
	return append(dst, byte('0'+n/1000), byte('0'+n/100%10), byte('0'+n/10%10), byte('0'+n%10))
}
