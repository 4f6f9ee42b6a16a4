package conv

import (
	"strconv"
	"strings"
)

// MaxDecimalDigits bounds the digits DecimalText writes either side of
// the point (1e40 has 41; 1e1000000 is refused rather than written out).
const MaxDecimalDigits = 64

// DecimalText writes the JSON number s in plain decimal, exactly: no
// exponent, no leading zeros, no trailing zeros after the point, no point
// when the value is an integer, and no sign on zero. It refuses (false) a
// number of more than MaxDecimalDigits digits either side of the point.
func DecimalText(s string) (string, bool) {
	if !jsonNumber(s) {
		return "", false
	}
	neg := strings.HasPrefix(s, "-")
	mant, exp := strings.TrimPrefix(s, "-"), 0
	if e := strings.IndexAny(mant, "eE"); e >= 0 {
		n, err := strconv.Atoi(mant[e+1:])
		if err != nil || n > 2*MaxDecimalDigits || n < -2*MaxDecimalDigits {
			return "", false
		}
		mant, exp = mant[:e], n
	}
	digits, point := mant, len(mant)
	if dot := strings.IndexByte(mant, '.'); dot >= 0 {
		digits, point = mant[:dot]+mant[dot+1:], dot
	}
	point += exp
	// Leading zeros move the point; trailing ones are dropped when after it.
	lead := len(digits) - len(strings.TrimLeft(digits, "0"))
	digits, point = digits[lead:], point-lead
	digits = strings.TrimRight(digits, "0")
	if digits == "" {
		return "0", true
	}
	if point > MaxDecimalDigits || len(digits)-point > MaxDecimalDigits {
		return "", false
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	switch {
	case point <= 0:
		b.WriteString("0.")
		b.WriteString(strings.Repeat("0", -point))
		b.WriteString(digits)
	case point >= len(digits):
		b.WriteString(digits)
		b.WriteString(strings.Repeat("0", point-len(digits)))
	default:
		b.WriteString(digits[:point])
		b.WriteByte('.')
		b.WriteString(digits[point:])
	}
	return b.String(), true
}

// jsonNumber reports whether s is a JSON number (RFC 8259).
func jsonNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(s)
}
