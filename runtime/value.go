package runtime

import (
	"crypto/sha256"
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/conv"
	"github.com/blueprint-engine/blueprint/internal/encoding"
)

// state is what became of a value or field for one event.
type state uint8

const (
	absent  state = iota // no source present: omitted, or missing when required
	present              // has an output
	invalid              // its own source breaks its rule: named in a fault
	skipped              // derived from an invalid input: never named
)

// rv is a computed value. Its bytes point into the event, the evaluation's
// scratch space or its output buffer; nothing is copied until the body is
// handed out. It is kept small: values are passed by value on the hot path.
type rv struct {
	// b is the text of a string (unescaped), or the JSON text of anything
	// else.
	b   []byte
	n   int64
	msg string // why invalid
	// off, end: the value's JSON text is c.out[off:end] (inOut).
	off, end int32
	st       state
	jt       byte // JSON type: '"' string, '0' number, 't' true, 'f' false, 'n' null, '{' object, '[' array
	isInt    bool
	inOut    bool
	// plain: a string whose text needs no escaping in JSON (it came from a
	// JSON string without escapes), written between quotes as is.
	plain bool
}

// outVal is a value written to the output buffer at c.out[start:end].
func outVal(jt byte, start, end int) rv {
	return rv{st: present, jt: jt, inOut: true, off: int32(start), end: int32(end)}
}

func intVal(n int64) rv { return rv{st: present, jt: '0', n: n, isInt: true} }

func textVal(b []byte) rv { return rv{st: present, jt: '"', b: b} }

func invalidVal(msg string) rv { return rv{st: invalid, msg: msg} }

// bstr views bytes as a string without copying; the bytes must not change
// while the string is in use.
func bstr(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// sbytes views a string as bytes; they must not be written.
func sbytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// jsonText returns the value's JSON text (allocating only for values that
// are not kept as JSON).
func (c *evalCtx) jsonText(v rv) []byte {
	switch {
	case v.inOut:
		return c.out[v.off:v.end]
	case v.isInt:
		return strconv.AppendInt(nil, v.n, 10)
	case v.jt == '"':
		return c.appendVal(nil, v)
	}
	return v.b
}

// appendVal writes a value's JSON text.
func (c *evalCtx) appendVal(out []byte, v rv) []byte {
	switch {
	case v.inOut:
		return append(out, c.out[v.off:v.end]...)
	case v.isInt:
		return strconv.AppendInt(out, v.n, 10)
	case v.jt == '"':
		if v.plain {
			out = append(out, '"')
			out = append(out, v.b...)
			return append(out, '"')
		}
		return encoding.AppendJSONString(out, v.b)
	}
	return append(out, v.b...)
}

// scratch appends to the evaluation's scratch space and returns the bytes
// written; they stay valid until the evaluation ends.
func (c *evalCtx) scratchText(f func(dst []byte) []byte) []byte {
	start := len(c.scratch)
	c.scratch = f(c.scratch)
	return c.scratch[start:len(c.scratch):len(c.scratch)]
}

// spanVal reads a scanned value: absent for a missing key, null, "" and
// [] (the absent rule).
func (c *evalCtx) spanVal(doc []byte, sp span) rv {
	switch sp.kind {
	case 0, 'n':
		return rv{}
	case '"':
		raw := doc[sp.start:sp.end]
		body := raw[1 : len(raw)-1]
		if len(body) == 0 {
			return rv{}
		}
		if sp.esc {
			body = c.scratchText(func(d []byte) []byte { return unescape(d, body) })
			return rv{st: present, jt: '"', b: body}
		}
		return rv{st: present, jt: '"', b: body, plain: true}
	case '[':
		raw := doc[sp.start:sp.end]
		inner := raw[1 : len(raw)-1]
		for _, ch := range inner {
			if ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' {
				return rv{st: present, jt: '[', b: raw}
			}
		}
		return rv{}
	}
	return rv{st: present, jt: sp.kind, b: doc[sp.start:sp.end]}
}

func isAbsent(v rv) bool {
	if v.st != present {
		return v.st == absent
	}
	switch v.jt {
	case 'n':
		return true
	case '"':
		return len(v.b) == 0 && !v.inOut
	}
	return false
}

// rule applies a type rule to a present value.
func (c *evalCtx) rule(t *compiler.Type, v rv) rv {
	switch t.Kind {
	case compiler.KindAny:
		return v
	case compiler.KindString:
		var text []byte
		switch v.jt {
		case '"':
			text = v.b
		case '0':
			if v.isInt {
				text = c.scratchText(func(d []byte) []byte { return strconv.AppendInt(d, v.n, 10) })
			} else {
				// The number's value in plain decimal, however it is
				// written: 1.0e3 and 1000.00 are "1000", -0 is "0",
				// 1.50 is "1.5" (exact, on the digits).
				dec, ok := conv.DecimalText(bstr(v.b)) // checks the JSON number grammar itself
				if !ok {
					return invalidVal("number " + truncate(string(v.b), 40) + " is out of range")
				}
				text = c.scratchText(func(d []byte) []byte { return append(d, dec...) })
			}
		case 't':
			text = sbytes("true")
		case 'f':
			text = sbytes("false")
		default:
			return invalidVal("expected text, got " + describeVal(v))
		}
		if t.Pattern != nil && !t.Pattern.Match(text) {
			return invalidVal(strconv.Quote(truncate(string(text), 40)) + " does not match the required pattern")
		}
		if v.jt == '"' {
			return v
		}
		return textVal(text)
	case compiler.KindID:
		switch v.jt {
		case '"':
			if t.Pattern != nil && !t.Pattern.Match(v.b) {
				return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " does not match the required pattern")
			}
			return v
		case '0':
			if v.isInt {
				return textVal(c.scratchText(func(d []byte) []byte { return strconv.AppendInt(d, v.n, 10) }))
			}
			if s, ok := integerText(bstr(v.b)); ok {
				return textVal(c.scratchText(func(d []byte) []byte { return append(d, s...) }))
			}
			return invalidVal("expected text or an integer, got the number " + truncate(string(v.b), 40))
		}
		return invalidVal("expected text or an integer, got " + describeVal(v))
	case compiler.KindInteger:
		var n int64
		switch {
		case v.isInt:
			n = v.n
		case v.jt == '0' || v.jt == '"':
			s, ok := integerText(bstr(v.b))
			if !ok {
				return invalidVal("expected an integer, got " + describeScalar(v))
			}
			var err error
			if n, err = strconv.ParseInt(s, 10, 64); err != nil {
				return invalidVal("integer " + truncate(s, 40) + " is out of range")
			}
		default:
			return invalidVal("expected an integer, got " + describeVal(v))
		}
		if msg := bounds(t, float64(n)); msg != "" {
			return invalidVal(strconv.FormatInt(n, 10) + " " + msg)
		}
		if t.Text {
			return textVal(c.scratchText(func(d []byte) []byte { return strconv.AppendInt(d, n, 10) }))
		}
		return intVal(n)
	case compiler.KindNumber:
		var f float64
		switch {
		case v.isInt:
			f = float64(v.n)
		case v.jt == '0' || v.jt == '"' && plainDecimal(v.b):
			var err error
			if f, err = strconv.ParseFloat(bstr(v.b), 64); err != nil && !errors.Is(err, strconv.ErrRange) {
				return invalidVal("expected a number, got " + describeScalar(v))
			}
		default:
			return invalidVal("expected a number, got " + describeScalar(v))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return invalidVal("number " + truncate(string(v.b), 40) + " is out of range")
		}
		if msg := bounds(t, f); msg != "" {
			return invalidVal(truncate(string(v.b), 40) + " " + msg)
		}
		switch {
		case t.Text && v.isInt:
			return textVal(c.scratchText(func(d []byte) []byte { return strconv.AppendInt(d, v.n, 10) }))
		case t.Text:
			return textVal(v.b)
		case v.jt == '"':
			return rv{st: present, jt: '0', b: v.b}
		}
		return v
	case compiler.KindBoolean:
		if v.jt == 't' || v.jt == 'f' {
			return v
		}
		return invalidVal("expected true or false, got " + describeVal(v))
	case compiler.KindMoney:
		return c.money(t, v)
	case compiler.KindDecimal:
		return c.decimal(t, v)
	case compiler.KindCurrency:
		if v.jt != '"' {
			return invalidVal("expected a three-letter currency code, got " + describeVal(v))
		}
		up := v.b
		if !conv.ValidCurrency(up) {
			up = c.scratchText(func(d []byte) []byte {
				for _, ch := range v.b {
					if ch >= 'a' && ch <= 'z' {
						ch -= 'a' - 'A'
					}
					d = append(d, ch)
				}
				return d
			})
			if !conv.ValidCurrency(up) {
				return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " is not a three-letter currency code")
			}
		}
		return rv{st: present, jt: '"', b: up, plain: true}
	case compiler.KindTime:
		if v.jt != '"' {
			return invalidVal("expected an RFC 3339 time, got " + describeVal(v))
		}
		if t.Format != "" {
			return c.formatTime(t, v)
		}
		secs, ok := conv.ParseRFC3339(v.b)
		if !ok {
			return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " is not an RFC 3339 time")
		}
		start := len(c.scratch)
		out, writable := conv.AppendUTCSeconds(c.scratch, secs)
		if !writable {
			return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " falls outside the years 0000-9999 in UTC")
		}
		if msg := timeBounds(t, secs); msg != "" {
			return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " " + msg)
		}
		c.scratch = out
		return rv{st: present, jt: '"', b: out[start:len(out):len(out)], plain: true}
	case compiler.KindEmailSHA256:
		if v.jt != '"' {
			return invalidVal("expected an email address, got " + describeVal(v))
		}
		norm := c.scratchText(func(d []byte) []byte { return appendLowerTrim(d, v.b) })
		if len(norm) == 0 {
			return rv{}
		}
		sum := sha256.Sum256(norm)
		// Hex digits: written between quotes as they are.
		return rv{st: present, jt: '"', b: c.scratchText(func(d []byte) []byte { return appendHex32(d, &sum) }), plain: true}
	case compiler.KindObject:
		if v.jt != '{' {
			return invalidVal("expected an object, got " + describeVal(v))
		}
		if t.Keep != nil {
			return c.keepMembers(t.Keep, v)
		}
		return v
	case compiler.KindArray:
		if v.jt != '[' {
			return invalidVal("expected a list, got " + describeVal(v))
		}
		if msg := lengthBounds(t, v.b); msg != "" {
			return invalidVal(msg)
		}
		return v
	}
	return v
}

// lengthBounds applies min/max to a list: its number of elements.
func lengthBounds(t *compiler.Type, list []byte) string {
	if t.Min == nil && t.Max == nil {
		return ""
	}
	n := 0
	gjson.ParseBytes(list).ForEach(func(_, _ gjson.Result) bool { n++; return true })
	if t.Min != nil && float64(n) < *t.Min {
		return "has " + strconv.Itoa(n) + " elements, fewer than the minimum " + strconv.FormatFloat(*t.Min, 'f', -1, 64)
	}
	if t.Max != nil && float64(n) > *t.Max {
		return "has " + strconv.Itoa(n) + " elements, more than the maximum " + strconv.FormatFloat(*t.Max, 'f', -1, 64)
	}
	return ""
}

// appendLowerTrim appends s trimmed of white space and lower-cased.
func appendLowerTrim(dst, s []byte) []byte {
	s = trimSpace(s)
	// One pass, ASCII assumed, into room grown once; undone for the rare
	// non-ASCII text. Callgrind, the benchmark's 20-byte email: 415
	// instructions with two passes appending a byte at a time, 309.
	n := len(dst)
	dst = slices.Grow(dst, len(s))[:n+len(s)]
	out := dst[n:]
	for i, ch := range s {
		if ch >= utf8.RuneSelf {
			return append(dst[:n], strings.ToLower(bstr(s))...)
		}
		if ch-'A' < 26 {
			ch += 'a' - 'A'
		}
		out[i] = ch
	}
	return dst
}

func trimSpace(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\v' || s[0] == '\f') {
		s = s[1:]
	}
	for len(s) > 0 {
		ch := s[len(s)-1]
		if ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r' && ch != '\v' && ch != '\f' {
			break
		}
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[0] >= utf8.RuneSelf || len(s) > 0 && s[len(s)-1] >= utf8.RuneSelf {
		return sbytes(strings.TrimSpace(bstr(s)))
	}
	return s
}

func containsAny(b []byte, chars string) bool {
	for _, c := range b {
		if strings.IndexByte(chars, c) >= 0 {
			return true
		}
	}
	return false
}

func bounds(t *compiler.Type, f float64) string {
	if t.Min != nil && f < *t.Min {
		return "is below the minimum " + strconv.FormatFloat(*t.Min, 'f', -1, 64)
	}
	if t.Max != nil && f > *t.Max {
		return "is above the maximum " + strconv.FormatFloat(*t.Max, 'f', -1, 64)
	}
	return ""
}

// timeBounds applies min/max to a time: Unix seconds of the time in UTC
// (min: 0 refuses a time before 1970), the fraction dropped (floor).
func timeBounds(t *compiler.Type, secs int64) string {
	at := func(b float64) string {
		s, ok := conv.AppendUTCSeconds(nil, int64(b))
		if !ok {
			return strconv.FormatFloat(b, 'f', -1, 64) + " Unix seconds"
		}
		return string(s)
	}
	if t.Min != nil && float64(secs) < *t.Min {
		return "is before " + at(math.Ceil(*t.Min))
	}
	if t.Max != nil && float64(secs) > *t.Max {
		return "is after " + at(math.Floor(*t.Max))
	}
	return ""
}

// money converts a JSON number or decimal text to minor units of the
// currency value's exponent (2 when the currency is absent or invalid).
func (c *evalCtx) money(t *compiler.Type, v rv) rv {
	exp := 2
	if t.Currency != nil {
		if cv := c.value(t.Currency); cv.st == present && cv.jt == '"' {
			exp = conv.CurrencyExponent(bstr(cv.b))
		}
	}
	var n int64
	var neg bool
	var err error
	switch {
	case v.isInt:
		n, neg, err = conv.MinorUnitsSign(strconv.AppendInt(c.num[:0], v.n, 10), exp, false)
	case v.jt == '0':
		n, neg, err = conv.MinorUnitsSign(v.b, exp, true)
	case v.jt == '"':
		n, neg, err = conv.MinorUnitsSign(v.b, exp, false)
	default:
		return invalidVal("expected an amount (a number or decimal text), got " + describeVal(v))
	}
	switch {
	case errors.Is(err, conv.ErrTooLarge):
		return invalidVal("amount " + describeAmount(v) + " is too large")
	case err != nil:
		return invalidVal(describeScalar(v) + " is not a decimal amount")
	case n < 0 || neg:
		return invalidVal("amount " + describeAmount(v) + " is negative")
	}
	return intVal(n)
}

// decimal applies the decimal rule: an exact amount in major units, from
// the digits as written (never through a float), rounded half away from
// zero to the currency's exponent (with currency: an amount, which cannot
// be negative), to Scale digits, or kept as written; written with exactly
// that many fraction digits and no exponent, as a JSON number (or text).
func (c *evalCtx) decimal(t *compiler.Type, v rv) rv {
	var raw []byte
	allowExp := false
	switch {
	case v.isInt:
		raw = strconv.AppendInt(c.num[:0], v.n, 10)
	case v.jt == '0':
		raw, allowExp = v.b, true
	case v.jt == '"':
		raw = v.b
	default:
		return invalidVal("expected an amount (a number or decimal text), got " + describeVal(v))
	}
	scale := t.Scale
	if t.Currency != nil {
		scale = 2
		if cv := c.value(t.Currency); cv.st == present && cv.jt == '"' {
			scale = conv.CurrencyExponent(bstr(cv.b))
		}
	} else if scale < 0 {
		scale = conv.NaturalScale(raw)
	}
	n, neg, err := conv.MinorUnitsSign(raw, scale, allowExp)
	switch {
	case errors.Is(err, conv.ErrTooLarge):
		return invalidVal("amount " + describeAmount(v) + " is too large")
	case err != nil:
		return invalidVal(describeScalar(v) + " is not a decimal amount")
	case t.Currency != nil && (n < 0 || neg):
		return invalidVal("amount " + describeAmount(v) + " is negative")
	}
	text := c.scratchText(func(d []byte) []byte { return conv.AppendFixed(d, n, scale) })
	if t.Min != nil || t.Max != nil {
		f, _ := strconv.ParseFloat(bstr(text), 64)
		if msg := bounds(t, f); msg != "" {
			return invalidVal(bstr(text) + " " + msg)
		}
	}
	if t.Text {
		return rv{st: present, jt: '"', b: text, plain: true}
	}
	return rv{st: present, jt: '0', b: text}
}

// formatTime writes an RFC 3339 time as the type's format says: Unix
// seconds, milliseconds or microseconds (digits below dropped; times
// before 1970 refused), or a Go layout in UTC.
func (c *evalCtx) formatTime(t *compiler.Type, v rv) rv {
	tm, ok := conv.ParseTime(bstr(v.b))
	if !ok {
		return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " is not an RFC 3339 time")
	}
	if !conv.WritableUTC(tm) {
		return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " falls outside the years 0000-9999 in UTC")
	}
	if msg := timeBounds(t, tm.Unix()); msg != "" {
		return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " " + msg)
	}
	var n int64
	switch t.Format {
	case compiler.TimeUnixSeconds:
		n = tm.Unix()
	case compiler.TimeUnixMillis:
		n = tm.UnixMilli()
	case compiler.TimeUnixMicros:
		n = tm.UnixMicro()
	default:
		return rv{st: present, jt: '"', b: c.scratchText(func(d []byte) []byte { return tm.UTC().AppendFormat(d, t.Format) })}
	}
	if n < 0 {
		return invalidVal(strconv.Quote(truncate(string(v.b), 40)) + " is before 1970, which a Unix time cannot say")
	}
	if t.Text {
		return textVal(c.scratchText(func(d []byte) []byte { return strconv.AppendInt(d, n, 10) }))
	}
	return intVal(n)
}

func describeVal(v rv) string {
	switch v.jt {
	case '"':
		return "a string (" + strconv.Quote(truncate(string(v.b), 40)) + ")"
	case 0:
		return "nothing"
	}
	return describeKind(v.jt)
}

// describeScalar describes a scalar with its text, for messages.
func describeScalar(v rv) string {
	switch v.jt {
	case '"':
		return strconv.Quote(truncate(string(v.b), 40))
	case '0':
		if v.isInt {
			return strconv.FormatInt(v.n, 10)
		}
		return truncate(string(v.b), 40)
	}
	return describeVal(v)
}

// integerText returns the decimal text of an integral number written as
// s ("2", "2.0", "-3", "1e3"), or false.
func integerText(s string) (string, bool) {
	if s == "" {
		return "", false
	}
	i := 0
	if s[0] == '-' {
		i = 1
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return "", false
	}
	intPart := s[:i]
	if i == len(s) {
		return normInt(intPart), true
	}
	if s[i] == '.' {
		j := i + 1
		for j < len(s) && s[j] == '0' {
			j++
		}
		if j == len(s) && j > i+1 {
			return normInt(intPart), true
		}
	}
	// Exponent or non-zero fraction: integral only when the value is,
	// worked out on the digits (never through a float, which would round
	// 9007199254740993e0 and refuse 1e21 while 1000000000000000000000
	// written out is an integer).
	if !plainNumber(s) {
		return "", false
	}
	mant, exp := s[start:], 0
	if e := strings.IndexAny(mant, "eE"); e >= 0 {
		n, err := strconv.Atoi(mant[e+1:])
		if err != nil || n > maxIntegerDigits || n < -maxIntegerDigits {
			return "", false
		}
		mant, exp = mant[:e], n
	}
	digits, point := mant, len(mant)
	if dot := strings.IndexByte(mant, '.'); dot >= 0 {
		digits, point = mant[:dot]+mant[dot+1:], dot
	}
	point += exp // the decimal point's place in digits
	digits = strings.TrimRight(digits, "0")
	if point < len(digits) {
		return "", false // a non-zero digit after the point
	}
	if point > maxIntegerDigits {
		return "", false
	}
	if digits == "" {
		return "0", true
	}
	return normInt(s[:start] + digits + strings.Repeat("0", point-len(digits))), true
}

// maxIntegerDigits bounds the integer an exponent may write out (1e40 has
// 41 digits; 1e1000000 is refused rather than written out).
const maxIntegerDigits = 64

// normInt drops leading zeros and a negative zero's sign.
func normInt(s string) string {
	neg := strings.HasPrefix(s, "-")
	d := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	switch {
	case d == "":
		return "0"
	case neg:
		return "-" + d
	case len(d) == len(s):
		return s
	}
	return d
}

// plainNumber: a JSON number.
func plainNumber(s string) bool {
	i, err := scanNumber(sbytes(s), 0)
	return err == nil && i == len(s)
}

// plainDecimal: -?digits(.digits)?
func plainDecimal(b []byte) bool {
	_, err := conv.MinorUnits(b, 0, false)
	return err == nil || errors.Is(err, conv.ErrTooLarge)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte { return encoding.AppendJSONString(b, sbytes(s)) }

// describeAmount shows an amount in a message: its text, or the integer
// an expression computed.
func describeAmount(v rv) string {
	if v.isInt {
		return strconv.FormatInt(v.n, 10)
	}
	return truncate(string(v.b), 40)
}

// keepMembers copies the members of an object whose JSON type is in keep,
// byte for byte and in order (keys and values as written: 2.50 stays
// 2.50, escapes stay escapes).
func (c *evalCtx) keepMembers(keep []string, v rv) rv {
	out := c.scratchText(func(d []byte) []byte {
		d = append(d, '{')
		n := 0
		gjson.ParseBytes(v.b).ForEach(func(k, val gjson.Result) bool {
			if !slices.Contains(keep, jsonTypeName(val)) {
				return true
			}
			if n > 0 {
				d = append(d, ',')
			}
			d = append(d, k.Raw...)
			d = append(d, ':')
			d = append(d, val.Raw...)
			n++
			return true
		})
		return append(d, '}')
	})
	return rv{st: present, jt: '{', b: out}
}

// jsonTypeName names a JSON value's type as keep lists it.
func jsonTypeName(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return "string"
	case gjson.Number:
		return "number"
	case gjson.True, gjson.False:
		return "boolean"
	case gjson.Null:
		return "null"
	}
	if r.IsArray() {
		return "array"
	}
	return "object"
}

// hexPairs holds the two lower-case hex digits of every byte value.
var hexPairs = func() (t [256][2]byte) {
	const digits = "0123456789abcdef"
	for i := range t {
		t[i] = [2]byte{digits[i>>4], digits[i&15]}
	}
	return t
}()

// appendHex32 is hex.AppendEncode for a SHA-256 sum: a pair of digits per
// byte from a table, into a fixed array (no bounds checks), then one
// append. Callgrind, per hashed email: hex.AppendEncode (a digit per
// table read, a slice growth check) 646 instructions, this about 290
// with its copy: -0.7 % of the 3-item purchase.
func appendHex32(dst []byte, sum *[32]byte) []byte {
	var out [64]byte
	for i, v := range sum {
		p := hexPairs[v]
		out[2*i], out[2*i+1] = p[0], p[1]
	}
	return append(dst, out[:]...)
}
