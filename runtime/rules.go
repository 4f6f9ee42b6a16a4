package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/conv"
)

// rule applies a type rule to a present input.
func (c *evalCtx) rule(t *engine.Type, r gjson.Result) val {
	switch t.Kind {
	case engine.KindAny:
		return presentVal(r)
	case engine.KindString:
		s, ok := scalarText(r)
		if !ok {
			return invalidVal("expected text, got %s", describe(r))
		}
		if t.Pattern != nil && !t.Pattern.MatchString(s) {
			return invalidVal("%q does not match the required pattern", truncate(s, 40))
		}
		if r.Type == gjson.String {
			return presentVal(r)
		}
		return presentVal(strResult(s))
	case engine.KindID:
		switch r.Type {
		case gjson.String:
			if t.Pattern != nil && !t.Pattern.MatchString(r.Str) {
				return invalidVal("%q does not match the required pattern", truncate(r.Str, 40))
			}
			return presentVal(r)
		case gjson.Number:
			if s, ok := integerText(r.Raw); ok {
				return presentVal(strResult(s))
			}
			return invalidVal("expected text or an integer, got the number %s", r.Raw)
		}
		return invalidVal("expected text or an integer, got %s", describe(r))
	case engine.KindInteger:
		var s string
		var ok bool
		switch r.Type {
		case gjson.Number:
			s, ok = integerText(r.Raw)
		case gjson.String:
			s, ok = integerText(r.Str)
		}
		if !ok {
			return invalidVal("expected an integer, got %s", describeValue(r))
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return invalidVal("integer %s is out of range", truncate(s, 40))
		}
		if msg := bounds(t, float64(n)); msg != "" {
			return invalidVal("%d %s", n, msg)
		}
		return presentVal(gjson.Result{Type: gjson.Number, Raw: s, Num: float64(n)})
	case engine.KindNumber:
		var f float64
		raw := r.Raw
		switch r.Type {
		case gjson.Number:
			f = r.Num
		case gjson.String:
			x, err := strconv.ParseFloat(r.Str, 64)
			if err != nil || !plainDecimal(r.Str) {
				return invalidVal("expected a number, got %s", describeValue(r))
			}
			f, raw = x, r.Str
		default:
			return invalidVal("expected a number, got %s", describe(r))
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return invalidVal("number %s is out of range", truncate(raw, 40))
		}
		if msg := bounds(t, f); msg != "" {
			return invalidVal("%s %s", raw, msg)
		}
		return presentVal(gjson.Result{Type: gjson.Number, Raw: raw, Num: f})
	case engine.KindBoolean:
		if r.Type == gjson.True || r.Type == gjson.False {
			return presentVal(r)
		}
		return invalidVal("expected true or false, got %s", describe(r))
	case engine.KindMoney:
		return c.money(t, r)
	case engine.KindCurrency:
		if r.Type != gjson.String {
			return invalidVal("expected a three-letter currency code, got %s", describe(r))
		}
		up := strings.ToUpper(r.Str)
		if !conv.ValidCurrency([]byte(up)) {
			return invalidVal("%q is not a three-letter currency code", truncate(r.Str, 40))
		}
		return presentVal(strResult(up))
	case engine.KindTime:
		if r.Type != gjson.String {
			return invalidVal("expected an RFC 3339 time, got %s", describe(r))
		}
		tm, ok := conv.ParseTime(r.Str)
		if !ok {
			return invalidVal("%q is not an RFC 3339 time", truncate(r.Str, 40))
		}
		if !conv.WritableUTC(tm) {
			return invalidVal("%q falls outside the years 0000-9999 in UTC", truncate(r.Str, 40))
		}
		return presentVal(strResult(string(conv.AppendUTC(nil, tm))))
	case engine.KindEmailSHA256:
		if r.Type != gjson.String {
			return invalidVal("expected an email address, got %s", describe(r))
		}
		norm := strings.ToLower(strings.TrimSpace(r.Str))
		if norm == "" {
			return val{}
		}
		sum := sha256.Sum256([]byte(norm))
		return presentVal(strResult(hex.EncodeToString(sum[:])))
	case engine.KindObject:
		if !r.IsObject() {
			return invalidVal("expected an object, got %s", describe(r))
		}
		return presentVal(r)
	case engine.KindArray:
		if !r.IsArray() {
			return invalidVal("expected a list, got %s", describe(r))
		}
		return presentVal(r)
	}
	return presentVal(r)
}

func bounds(t *engine.Type, f float64) string {
	if t.Min != nil && f < *t.Min {
		return "is below the minimum " + strconv.FormatFloat(*t.Min, 'f', -1, 64)
	}
	if t.Max != nil && f > *t.Max {
		return "is above the maximum " + strconv.FormatFloat(*t.Max, 'f', -1, 64)
	}
	return ""
}

// money converts a JSON number or decimal text to minor units of the
// currency value's exponent (2 when the currency is absent or invalid).
func (c *evalCtx) money(t *engine.Type, r gjson.Result) val {
	exp := 2
	if t.Currency != nil {
		if cv := c.value(t.Currency); cv.st == present && cv.res.Type == gjson.String {
			exp = conv.CurrencyExponent(cv.res.Str)
		}
	}
	var n int64
	var err error
	switch r.Type {
	case gjson.Number:
		n, err = conv.MinorUnits([]byte(r.Raw), exp, true)
	case gjson.String:
		n, err = conv.MinorUnits([]byte(r.Str), exp, false)
	default:
		return invalidVal("expected an amount (a number or decimal text), got %s", describe(r))
	}
	switch {
	case errors.Is(err, conv.ErrTooLarge):
		return invalidVal("amount %s is too large", truncate(rawText(r), 40))
	case err != nil:
		return invalidVal("%s is not a decimal amount", describeValue(r))
	case n < 0:
		return invalidVal("amount %s is negative", truncate(rawText(r), 40))
	}
	s := strconv.FormatInt(n, 10)
	return presentVal(gjson.Result{Type: gjson.Number, Raw: s, Num: float64(n)})
}

func rawText(r gjson.Result) string {
	if r.Type == gjson.String {
		return r.Str
	}
	return r.Raw
}

// describeValue describes a scalar with its text, for messages.
func describeValue(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return strconv.Quote(truncate(r.Str, 40))
	case gjson.Number:
		return truncate(r.Raw, 40)
	}
	return describe(r)
}

// scalarText is a scalar written as text: strings as they are, numbers as
// their decimal text, booleans as true/false.
func scalarText(r gjson.Result) (string, bool) {
	switch r.Type {
	case gjson.String:
		return r.Str, true
	case gjson.Number:
		if strings.ContainsAny(r.Raw, "eE") {
			if math.IsInf(r.Num, 0) {
				return "", false
			}
			return strconv.FormatFloat(r.Num, 'f', -1, 64), true
		}
		return r.Raw, true
	case gjson.True:
		return "true", true
	case gjson.False:
		return "false", true
	}
	return "", false
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
	// Exponent or non-zero fraction: integral only when the value is.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 || !plainNumber(s) {
		return "", false
	}
	return strconv.FormatInt(int64(f), 10), true
}

// normInt drops leading zeros and a negative zero's sign.
func normInt(s string) string {
	neg := strings.HasPrefix(s, "-")
	d := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if d == "" {
		return "0"
	}
	if neg {
		return "-" + d
	}
	return d
}

func plainNumber(s string) bool {
	return gjson.Valid(s) && gjson.Parse(s).Type == gjson.Number
}

// plainDecimal: -?digits(.digits)?
func plainDecimal(s string) bool {
	_, err := conv.MinorUnits([]byte(s), 0, false)
	return err == nil || errors.Is(err, conv.ErrTooLarge)
}

// strResult builds a JSON string result.
func strResult(s string) gjson.Result {
	return gjson.Result{Type: gjson.String, Str: s, Raw: string(appendJSONString(nil, s))}
}

// goResult turns a Go value (from config or an expression) into a JSON
// result. Values JSON cannot hold become null (absent).
func goResult(x any) gjson.Result {
	switch x := x.(type) {
	case nil:
		return gjson.Result{Type: gjson.Null, Raw: "null"}
	case string:
		return strResult(x)
	case bool:
		if x {
			return gjson.Result{Type: gjson.True, Raw: "true"}
		}
		return gjson.Result{Type: gjson.False, Raw: "false"}
	case int:
		return gjson.Result{Type: gjson.Number, Raw: strconv.Itoa(x), Num: float64(x)}
	case int64:
		return gjson.Result{Type: gjson.Number, Raw: strconv.FormatInt(x, 10), Num: float64(x)}
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return gjson.Result{Type: gjson.Null, Raw: "null"}
		}
		return gjson.Result{Type: gjson.Number, Raw: strconv.FormatFloat(x, 'f', -1, 64), Num: x}
	case time.Time:
		return strResult(string(conv.AppendUTC(nil, x)))
	}
	b, err := json.Marshal(x)
	if err != nil {
		return gjson.Result{Type: gjson.Null, Raw: "null"}
	}
	return gjson.ParseBytes(b)
}

// goValue turns a JSON result into the Go value an expression sees:
// string, int (integral numbers that fit), float64, bool, nil, or
// map[string]any / []any for objects and arrays.
func goValue(r gjson.Result) any {
	switch r.Type {
	case gjson.Null:
		return nil
	case gjson.String:
		return r.Str
	case gjson.True:
		return true
	case gjson.False:
		return false
	case gjson.Number:
		if !strings.ContainsAny(r.Raw, ".eE") {
			if n, err := strconv.ParseInt(r.Raw, 10, 64); err == nil {
				return int(n)
			}
		}
		return r.Num
	case gjson.JSON:
		return r.Value()
	}
	return nil
}

// runExpr evaluates a compiled expression. An expression that fails because
// an input is absent gives absent; one whose input is itself invalid gives
// skipped (it is derived, and never named in a fault); any other failure is
// invalid.
func (c *evalCtx) runExpr(e *engine.Expr, sc *objScope) (val, error) {
	env := make(map[string]any, len(e.Inputs))
	anyAbsent, anyBad := false, false
	for _, in := range e.Inputs {
		var x any
		switch in.Kind {
		case engine.InputEvent:
			if in.Path == "" {
				x = goValue(gjson.ParseBytes(c.event))
			} else {
				x = goValue(gjson.GetBytes(c.event, in.Path))
			}
		case engine.InputItem:
			if in.Path == "" {
				x = goValue(sc.item)
			} else {
				x = goValue(sc.item.Get(in.Path))
			}
		case engine.InputConfig:
			x = c.in.config[in.Config]
			if i, ok := x.(int64); ok {
				x = int(i)
			}
		case engine.InputStatus:
			if c.resp != nil {
				x = c.resp.status
			}
		case engine.InputBody:
			if c.resp != nil && gjson.ValidBytes(c.resp.body) {
				if in.Path == "" {
					x = goValue(gjson.ParseBytes(c.resp.body))
				} else {
					x = goValue(gjson.GetBytes(c.resp.body, in.Path))
				}
			}
		case engine.InputHeader:
			if c.resp != nil {
				if v := c.resp.header.Values(in.Path); len(v) > 0 {
					x = v[0]
				}
			}
		case engine.InputValue, engine.InputField:
			var v val
			if in.Kind == engine.InputValue {
				v = c.value(in.Value)
			} else if in.Field < len(sc.fields) {
				v = sc.fields[in.Field]
			}
			switch v.st {
			case present:
				x = goValue(v.res)
			case invalid, skipped:
				anyBad = true
			}
		}
		if x == nil {
			anyAbsent = true
		}
		env[in.Name] = x
	}
	out, err := c.vm.Run(e.Program, env)
	if err != nil {
		switch {
		case anyBad:
			return val{st: skipped}, err
		case anyAbsent:
			return val{}, err
		}
		return invalidVal("%s", exprMessage(err)), err
	}
	r := goResult(out)
	if isAbsent(r) {
		if anyBad {
			return val{st: skipped}, nil
		}
		return val{}, nil
	}
	return presentVal(r), nil
}

var exprLocRE = regexp.MustCompile(` \(\d+:\d+\)$`)

// exprMessage is the first line of an expression error, without expr's
// position inside the expression.
func exprMessage(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return exprLocRE.ReplaceAllString(strings.TrimSpace(msg), "")
}

func (c *evalCtx) runBool(e *engine.Expr, sc *objScope) (bool, error) {
	v, err := c.runExpr(e, sc)
	if err != nil {
		return false, err
	}
	return v.st == present && v.res.Type == gjson.True, nil
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and HTML-sensitive characters left as they are.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
