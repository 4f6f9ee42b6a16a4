package compiler

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"

	"github.com/blueprint-engine/blueprint/internal/conv"
)

// Function is an expression helper function, documented in
// docs/authoring.md. Every helper is deterministic and side-effect free.
type Function struct {
	Name      string
	Signature string
	Doc       string
	Example   string
	fn        func(args ...any) (any, error)
	types     []any
	// cost charges the evaluation's budget with what a call is about to
	// build and read, before it runs (see budget.go); nil: O(1).
	cost func(b *Budget, args []any) error
	// regex: the second argument is an RE2 pattern; read at run time, it
	// is charged by chargeRuntimePattern too.
	regex bool
}

// Functions lists the helper functions available to expressions, besides
// expr-lang's own builtins (trim, lower, upper, len, ...).
func Functions() []Function { return functions }

var functions = []Function{
	{
		Name: "minor_units", Signature: "minor_units(amount, currency) int",
		Doc:     "Converts a decimal amount (a number, or text such as \"25.50\") to integer minor units of an ISO 4217 currency, from the decimal digits as written (never through a float), rounding half away from zero. Fails on a negative or non-decimal amount.",
		Example: `minor_units("1.005", "USD") == 101`,
		fn:      fnMinorUnits, types: []any{new(func(any, string) int)},
		cost: chargeText(1, 0),
	},
	{
		Name: "decimal_mul", Signature: "decimal_mul(a, b) string",
		Doc:     "The exact product of two amounts (numbers or decimal text), as decimal text: a line total (unit price × quantity) computed from the digits as written, never through a float. Round it once, where it is written, with type decimal (or money) and currency.",
		Example: `decimal_mul("0.125", 3) == "0.375"`,
		fn:      decimalOp(conv.Decimal.Mul),
		types:   []any{new(func(any, any) string)},
		cost:    chargeText(2, 40),
	},
	{
		Name: "decimal_add", Signature: "decimal_add(a, b) string",
		Doc:     "The exact sum of two amounts, as decimal text.",
		Example: `decimal_add("0.1", 0.2) == "0.3"`,
		fn:      decimalOp(conv.Decimal.Add),
		types:   []any{new(func(any, any) string)},
		cost:    chargeText(2, 40),
	},
	{
		Name: "decimal_sum", Signature: "decimal_sum(list) string",
		Doc:     "The exact sum of a list of amounts, as decimal text (\"0\" for an empty list): an order total from line totals.",
		Example: `decimal_sum(["12.75", 0.25, 2]) == "15"`,
		fn:      fnDecimalSum,
		types:   []any{new(func(any) string)},
		cost:    chargeDecimalSum,
	},
	{
		Name: "currency_exponent", Signature: "currency_exponent(code) int",
		Doc:     "The ISO 4217 minor-unit exponent of a currency code: 0 for JPY, KRW and the other zero-decimal currencies, 3 for BHD, IQD, JOD, KWD, LYD, OMR and TND, 2 otherwise.",
		Example: `currency_exponent("JPY") == 0`,
		fn: func(args ...any) (any, error) {
			s, err := str(args[0])
			if err != nil {
				return nil, err
			}
			return conv.CurrencyExponent(strings.ToUpper(s)), nil
		},
		types: []any{new(func(string) int)},
		cost:  chargeText(1, 0),
	},
	{
		Name: "sha256_hex", Signature: "sha256_hex(text) string",
		Doc:     "Lower-case hex SHA-256 of the text's UTF-8 bytes.",
		Example: `sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"`,
		fn: func(args ...any) (any, error) {
			s, err := str(args[0])
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:]), nil
		},
		types: []any{new(func(string) string)},
		cost:  chargeText(1, 64),
	},
	{
		Name: "sha1_hex", Signature: "sha1_hex(text) string",
		Doc:     "Lower-case hex SHA-1 of the text's UTF-8 bytes (for vendors that match hashed emails by SHA-1, as Impact does).",
		Example: `sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d"`,
		fn:      hashHex(sha1.New),
		types:   []any{new(func(string) string)},
		cost:    chargeText(1, 40),
	},
	{
		Name: "sha512_hex", Signature: "sha512_hex(text) string",
		Doc:     "Lower-case hex SHA-512 of the text's UTF-8 bytes.",
		Example: `len(sha512_hex("abc")) == 128`,
		fn:      hashHex(sha512.New),
		types:   []any{new(func(string) string)},
		cost:    chargeText(1, 128),
	},
	{
		Name: "hmac_sha256_hex", Signature: "hmac_sha256_hex(key, text) string",
		Doc:     "Lower-case hex HMAC-SHA256 of the text with the key (both UTF-8). A secret cannot be the key: secrets are read only by auth, secret headers and fields, and request signatures (signature:).",
		Example: `hmac_sha256_hex("key", "The quick brown fox jumps over the lazy dog") == "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"`,
		fn:      hmacHex(sha256.New),
		types:   []any{new(func(string, string) string)},
		cost:    chargeText(1, 64),
	},
	{
		Name: "hmac_sha1_hex", Signature: "hmac_sha1_hex(key, text) string",
		Doc:     "Lower-case hex HMAC-SHA1 of the text with the key.",
		Example: `hmac_sha1_hex("key", "The quick brown fox jumps over the lazy dog") == "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"`,
		fn:      hmacHex(sha1.New),
		types:   []any{new(func(string, string) string)},
		cost:    chargeText(1, 40),
	},
	{
		Name: "hmac_sha512_hex", Signature: "hmac_sha512_hex(key, text) string",
		Doc:     "Lower-case hex HMAC-SHA512 of the text with the key.",
		Example: `len(hmac_sha512_hex("key", "text")) == 128`,
		fn:      hmacHex(sha512.New),
		types:   []any{new(func(string, string) string)},
		cost:    chargeText(1, 128),
	},
	{
		Name: "regex_replace", Signature: "regex_replace(text, pattern, replacement) string",
		Doc:     "Replaces every match of an RE2 pattern (linear time, no backtracking) in the text; $1 or ${name} in the replacement insert a group. A pattern written as a literal is checked when the blueprint compiles.",
		Example: `regex_replace("Tee - Red -- L", " *-+ *", " ") == "Tee Red L"`,
		fn:      fnRegexReplace,
		types:   []any{new(func(string, string, string) string)},
		cost:    chargeRegexReplace,
		regex:   true,
	},
	{
		Name: "regex_find", Signature: "regex_find(text, pattern) string or nil",
		Doc:     "The first match of an RE2 pattern in the text: its first group when the pattern has one, else the whole match; nil when nothing matches or the text is absent. Reads vendor answers that are not JSON.",
		Example: `regex_find("<ok/><bad>2</bad>", "<bad>([0-9]+)</bad>") == "2"`,
		fn:      fnRegexFind,
		types:   []any{new(func(any, string) any)},
		cost:    chargeText(2, 0),
		regex:   true,
	},
	{
		Name: "snake_case", Signature: "snake_case(text) string",
		Doc:     "Lower-cases the text and joins its words with one _: every run of characters other than a-z, A-Z and 0-9 separates words, and so does a capital after a lower-case letter or digit, or ending a run of capitals before a lower-case letter (camelCase); _ is trimmed at both ends. A vendor event name from a source event name.",
		Example: `snake_case(" Checkout Step-2 Viewed! ") == "checkout_step_2_viewed" && snake_case("addedToHTMLCart") == "added_to_html_cart"`,
		fn:      fnSnakeCase,
		types:   []any{new(func(string) string)},
		cost:    chargeText(1, 0),
	},
	{
		Name: "email_sha256", Signature: "email_sha256(email) string",
		Doc:     "sha256_hex of the trimmed, lower-cased email: how ad platforms match hashed emails.",
		Example: `email_sha256(" Jane@Example.com ") == sha256_hex("jane@example.com")`,
		fn: func(args ...any) (any, error) {
			s, err := str(args[0])
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(s))))
			return hex.EncodeToString(sum[:]), nil
		},
		types: []any{new(func(string) string)},
		cost:  chargeText(2, 64),
	},
	{
		Name: "url_query", Signature: "url_query(url, name) string or nil",
		Doc:     "The first value of a query parameter of a URL (names compared exactly), or nil when the URL is absent, unparseable or has no such parameter.",
		Example: `url_query("https://shop.example/?btn_ref=srctok-1", "btn_ref") == "srctok-1"`,
		fn: func(args ...any) (any, error) {
			raw, ok := args[0].(string)
			name, _ := args[1].(string)
			if !ok {
				return nil, nil
			}
			u, err := url.Parse(raw)
			if err != nil {
				return nil, nil
			}
			vs, ok := u.Query()[name]
			if !ok || len(vs) == 0 || vs[0] == "" {
				return nil, nil
			}
			return vs[0], nil
		},
		types: []any{new(func(any, string) any)},
		cost:  chargeText(3, 0),
	},
	{
		Name: "utc_time", Signature: "utc_time(text) string",
		Doc:     "Parses an RFC 3339 time with any offset and writes it in UTC as 2006-01-02T15:04:05Z, dropping fractional seconds. Fails when the text is not RFC 3339.",
		Example: `utc_time("2026-02-25T16:30:00.999+02:00") == "2026-02-25T14:30:00Z"`,
		fn: func(args ...any) (any, error) {
			t, err := parseTimeArg(args[0])
			if err != nil {
				return nil, err
			}
			return string(conv.AppendUTC(nil, t)), nil
		},
		types: []any{new(func(any) string)},
		cost:  chargeText(0, 32),
	},
	{
		Name: "parse_time", Signature: "parse_time(text) time",
		Doc:     "Parses an RFC 3339 time with any offset, in UTC, fractional seconds kept to the nanosecond, for comparisons and date arithmetic with expr-lang's time support (.Year(), .UnixMilli(), .UnixMicro(), .Format(layout)). Fails when the text is not RFC 3339.",
		Example: `parse_time("2026-02-25T14:30:00Z").Year() == 2026`,
		fn: func(args ...any) (any, error) {
			return parseTimeArg(args[0])
		},
		types: []any{new(func(any) time.Time)},
		cost:  chargeText(0, 0),
	},
	{
		Name: "base64", Signature: "base64(text) string",
		Doc:     "Standard base64 (with padding) of the text's UTF-8 bytes, e.g. for a Basic auth header.",
		Example: `base64("sk-XXX:") == "c2stWFhYOg=="`,
		fn: func(args ...any) (any, error) {
			s, err := str(args[0])
			if err != nil {
				return nil, err
			}
			return base64.StdEncoding.EncodeToString([]byte(s)), nil
		},
		types: []any{new(func(string) string)},
		cost:  chargeBase64,
	},
	{
		Name: "coalesce", Signature: "coalesce(a, b, ...) any",
		Doc:     "The first argument that is present and non-empty (not nil, \"\", or an empty list), or nil.",
		Example: `coalesce(nil, "", "x") == "x"`,
		fn: func(args ...any) (any, error) {
			for _, a := range args {
				if !emptyValue(a) {
					return a, nil
				}
			}
			return nil, nil
		},
		types: []any{new(func(...any) any)},
	},
}

// chargeText charges a helper that reads its text arguments once and
// builds perByte bytes per byte of them, plus fixed bytes.
func chargeText(perByte, fixed int64) func(b *Budget, args []any) error {
	return func(b *Budget, args []any) error {
		var n int64
		for _, a := range args {
			n = satAdd(n, textLen(a))
		}
		return b.Charge(satAdd(satMul(n, perByte), fixed), 1+n>>6)
	}
}

// hashHex is a helper writing the lower-case hex digest of its text.
func hashHex(h func() hash.Hash) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		s, err := str(args[0])
		if err != nil {
			return nil, err
		}
		d := h()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil)), nil
	}
}

// hmacHex is a helper writing the lower-case hex HMAC of (key, text).
func hmacHex(h func() hash.Hash) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		key, err := str(args[0])
		if err != nil {
			return nil, err
		}
		s, err := str(args[1])
		if err != nil {
			return nil, err
		}
		m := hmac.New(h, []byte(key))
		m.Write([]byte(s))
		return hex.EncodeToString(m.Sum(nil)), nil
	}
}

func fnSnakeCase(args ...any) (any, error) {
	s, err := str(args[0])
	if err != nil {
		return nil, err
	}
	return snakeCase(s), nil
}

// snakeCase lower-cases s and writes its words joined by one _: a word is
// a run of a-z, A-Z and 0-9 (other letters lower-cased to a-z count too),
// and a capital starts a new word after a lower-case letter or a digit
// (orderCompleted: order_completed), or when it ends a run of capitals
// before a lower-case letter (HTMLPage: html_page). Everything else
// separates words.
func snakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	sep := false
	prev := rune(0) // the previous rune kept, as written; 0 after a separator
	for i, r := range rs {
		lr := r
		if r >= 0x80 {
			lr = unicode.ToLower(r)
		} else if r >= 'A' && r <= 'Z' {
			lr = r + 'a' - 'A'
		}
		if !(lr >= 'a' && lr <= 'z' || lr >= '0' && lr <= '9') {
			sep, prev = true, 0
			continue
		}
		if r >= 'A' && r <= 'Z' {
			switch {
			case prev >= 'a' && prev <= 'z', prev >= '0' && prev <= '9':
				sep = true
			case prev >= 'A' && prev <= 'Z' && i+1 < len(rs) && rs[i+1] >= 'a' && rs[i+1] <= 'z':
				sep = true
			}
		}
		if sep && b.Len() > 0 {
			b.WriteByte('_')
		}
		sep, prev = false, r
		b.WriteRune(lr)
	}
	return b.String()
}

// regexCache keeps compiled patterns of regex_replace, bounded: a pattern
// read from event data is compiled per call once the cache is full.
var regexCache struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

const regexCacheMax = 512

func cachedRegexp(p string) (*regexp.Regexp, error) {
	regexCache.Lock()
	re := regexCache.m[p]
	regexCache.Unlock()
	if re != nil {
		return re, nil
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("bad pattern: %s", reErr(err))
	}
	regexCache.Lock()
	if regexCache.m == nil {
		regexCache.m = map[string]*regexp.Regexp{}
	}
	if len(regexCache.m) < regexCacheMax {
		regexCache.m[p] = re
	}
	regexCache.Unlock()
	return re, nil
}

func fnRegexReplace(args ...any) (any, error) {
	var a [3]string
	for i := range a {
		s, err := str(args[i])
		if err != nil {
			return nil, err
		}
		a[i] = s
	}
	re, err := cachedRegexp(a[1])
	if err != nil {
		return nil, err
	}
	return re.ReplaceAllString(a[0], a[2]), nil
}

func fnRegexFind(args ...any) (any, error) {
	text, ok := args[0].(string)
	if !ok {
		return nil, nil
	}
	p, err := str(args[1])
	if err != nil {
		return nil, err
	}
	re, err := cachedRegexp(p)
	if err != nil {
		return nil, err
	}
	m := re.FindStringSubmatch(text)
	switch {
	case m == nil:
		return nil, nil
	case len(m) > 1:
		return m[1], nil
	}
	return m[0], nil
}

// chargeRegexReplace charges the most regex_replace can build: a match at
// every position of the text (an empty match), each replaced by the whole
// replacement with every group expanded to the whole text.
func chargeRegexReplace(b *Budget, args []any) error {
	n, p, r := textLen(args[0]), textLen(args[1]), textLen(args[2])
	groups := int64(strings.Count(fmt.Sprint(args[2]), "$"))
	per := satAdd(r, satMul(groups, n))
	return b.Charge(satAdd(n, satMul(n+1, per)), satAdd(1+n>>4, p))
}

// chargeDecimalSum: a step and a parse per element.
func chargeDecimalSum(b *Budget, args []any) error {
	list, _ := args[0].([]any)
	n := int64(len(list))
	return b.Charge(satMul(n, 48), 1+n)
}

// chargeBase64: the text's bytes, then their encoding.
func chargeBase64(b *Budget, args []any) error {
	n := textLen(args[0])
	return b.Charge(n+(n+2)/3*4, 1+n>>6)
}

// builtinsDisabled are expr-lang builtins that read the clock or can
// allocate without bound from event data.
var builtinsDisabled = []string{"now", "repeat"}

// Integer arithmetic in expressions is checked: where both operands are
// known to be integers, +, - and * go through these functions, and an
// overflow fails the expression instead of wrapping around.
var checkedOps = []struct {
	op, name string
	fn       func(a, b int) (int, bool)
}{
	{"+", "__checked_add", func(a, b int) (int, bool) {
		r := a + b
		return r, (r > a) == (b > 0)
	}},
	{"-", "__checked_sub", func(a, b int) (int, bool) {
		r := a - b
		return r, (r < a) == (b > 0)
	}},
	{"*", "__checked_mul", func(a, b int) (int, bool) {
		if a == 0 || b == 0 {
			return 0, true
		}
		r := a * b
		return r, r/b == a && !(a == -1 && b == math.MinInt) && !(b == -1 && a == math.MinInt)
	}},
}

var exprOptions = func() []expr.Option {
	opts := []expr.Option{expr.Timezone("UTC")}
	for _, f := range functions {
		opts = append(opts, expr.Function(f.Name, f.fn, f.types...))
	}
	for _, op := range checkedOps {
		fn := op.fn
		opts = append(opts,
			expr.Function(op.name, func(args ...any) (any, error) {
				r, ok := fn(args[0].(int), args[1].(int))
				if !ok {
					return nil, fmt.Errorf("integer overflow in %d %s %d", args[0], op.op, args[1])
				}
				return r, nil
			}, new(func(int, int) int)),
			expr.Operator(op.op, op.name))
	}
	for _, b := range builtinsDisabled {
		opts = append(opts, expr.DisableBuiltin(b))
	}
	opts = append(opts, func(c *conf.Config) {
		for name, f := range overloadsOnce {
			if !c.Disabled[name] {
				c.Functions[name] = f
			}
		}
		c.Functions["int"] = checkedInt
	})
	return opts
}()

// checkedInt is expr-lang's int with a number outside int's range refused:
// Go's conversion of such a float is undefined, and gives math.MinInt on
// amd64, so int(event.properties.quantity) with a quantity of 1e300 (or
// 9.3e18) wrote -9223372036854775808 as if it were the event's value.
var checkedInt = func() *builtin.Function {
	for _, f := range builtin.Builtins {
		if f.Name == "int" {
			g := *f
			fast := f.Fast
			// A function of the configuration runs through Func.
			g.Fast = nil
			g.Func = func(args ...any) (any, error) {
				var v float64
				switch x := args[0].(type) {
				case float64:
					v = x
				case float32:
					v = float64(x)
				default:
					return fast(args[0]), nil
				}
				// -2^63 <= v < 2^63, NaN failing both.
				if !(v >= -9223372036854775808.0 && v < 9223372036854775808.0) {
					return nil, fmt.Errorf("invalid operation: int(%g): out of the integer range", v)
				}
				return fast(args[0]), nil
			}
			return &g
		}
	}
	panic("expr-lang has no builtin int")
}()

// overloadsOnce are expr-lang's builtins with several signatures (replace,
// split, trim, join...), declared as functions of the same name checked by
// one Validate that picks the signature from the arguments' types; they
// run expr-lang's own implementation. expr-lang's checker visits a
// builtin's arguments once per signature it tries, so calls nested in one
// another took 2^depth visits: 25 nested replace calls took minutes to
// compile. The messages are expr-lang's; a wrong argument is reported at
// the call.
var overloadsOnce = func() map[string]*builtin.Function {
	m := map[string]*builtin.Function{}
	for _, f := range builtin.Builtins {
		if len(f.Types) < 2 || f.Validate != nil || f.Predicate || f.Func == nil {
			continue
		}
		g := *f
		name, types := f.Name, f.Types
		g.Types = nil
		g.Validate = func(args []reflect.Type) (reflect.Type, error) { return pickOverload(name, types, args) }
		m[name] = &g
	}
	return m
}()

// pickOverload is the result type of the first signature the arguments
// fit (an argument of unknown type fits any parameter), or the error
// expr-lang gives for the last one.
func pickOverload(name string, types []reflect.Type, args []reflect.Type) (reflect.Type, error) {
	var err error
	for _, t := range types {
		if t.IsVariadic() {
			if len(args) < t.NumIn()-1 {
				err = fmt.Errorf("not enough arguments to call %s", name)
				continue
			}
		} else if len(args) > t.NumIn() {
			err = fmt.Errorf("too many arguments to call %s", name)
			continue
		} else if len(args) < t.NumIn() {
			err = fmt.Errorf("not enough arguments to call %s", name)
			continue
		}
		fits := true
		for i, a := range args {
			var in reflect.Type
			if t.IsVariadic() && i >= t.NumIn()-1 {
				in = t.In(t.NumIn() - 1).Elem()
			} else {
				in = t.In(i)
			}
			switch {
			case a == nil:
				if in.Kind() != reflect.Ptr && in.Kind() != reflect.Interface {
					err = fmt.Errorf("cannot use nil as argument (type %s) to call %s", in, name)
					fits = false
				}
			case a.Kind() == reflect.Interface || in.Kind() == reflect.Interface || a.AssignableTo(in):
			case isIntKind(a.Kind()) && isIntKind(in.Kind()):
			default:
				err = fmt.Errorf("cannot use %s as argument (type %s) to call %s", a, in, name)
				fits = false
			}
			if !fits {
				break
			}
		}
		if fits && t.NumOut() > 0 {
			return t.Out(0), nil
		}
	}
	return anyType, err
}

func isIntKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return true
	}
	return false
}

// ErrAbsent is the error of a helper function called on an absent value
// (the runtime then treats the expression's result as absent, not
// invalid).
var ErrAbsent = errors.New("argument is absent")

var errNil = ErrAbsent

func str(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", errNil
	}
	return "", fmt.Errorf("argument is %T, not a string", v)
}

func parseTimeArg(v any) (time.Time, error) {
	s, err := str(v)
	if err != nil {
		return time.Time{}, err
	}
	t, ok := conv.ParseTime(s)
	if !ok {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time", clipText(s))
	}
	if !conv.WritableUTC(t) {
		return time.Time{}, fmt.Errorf("%q falls outside the years 0000-9999 in UTC", clipText(s))
	}
	return t, nil
}

// amountText is an amount argument as decimal text.
func amountText(a any) (string, error) {
	switch a := a.(type) {
	case string:
		return a, nil
	case int:
		return strconv.Itoa(a), nil
	case int64:
		return strconv.FormatInt(a, 10), nil
	case float64:
		// The shortest text that reads back as the same float is the
		// decimal as written for every amount with up to 15 significant
		// digits.
		return strconv.FormatFloat(a, 'f', -1, 64), nil
	case nil:
		return "", errNil
	default:
		return "", fmt.Errorf("amount is %T, not a number or decimal text", a)
	}
}

// decimalArg reads an amount argument as an exact decimal.
func decimalArg(a any) (conv.Decimal, error) {
	text, err := amountText(a)
	if err != nil {
		return conv.Decimal{}, err
	}
	d, err := conv.ParseDecimal([]byte(text), false)
	if err != nil {
		return conv.Decimal{}, fmt.Errorf("amount %q: %w", clipText(text), err)
	}
	return d, nil
}

// decimalOp is decimal_mul or decimal_add: an exact operation on two
// amounts, written as decimal text.
func decimalOp(op func(a, b conv.Decimal) (conv.Decimal, error)) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		a, err := decimalArg(args[0])
		if err != nil {
			return nil, err
		}
		b, err := decimalArg(args[1])
		if err != nil {
			return nil, err
		}
		r, err := op(a, b)
		if err != nil {
			return nil, err
		}
		return string(r.Append(nil)), nil
	}
}

func fnDecimalSum(args ...any) (any, error) {
	list, ok := args[0].([]any)
	if !ok {
		if args[0] == nil {
			return nil, errNil
		}
		return nil, fmt.Errorf("decimal_sum takes a list, not %T", args[0])
	}
	var sum conv.Decimal
	for _, x := range list {
		d, err := decimalArg(x)
		if err != nil {
			return nil, err
		}
		if sum, err = sum.Add(d); err != nil {
			return nil, err
		}
	}
	return string(sum.Append(nil)), nil
}

func fnMinorUnits(args ...any) (any, error) {
	cur, err := str(args[1])
	if err != nil {
		return nil, err
	}
	exp := conv.CurrencyExponent(strings.ToUpper(cur))
	text, err := amountText(args[0])
	if err != nil {
		return nil, err
	}
	n, err := conv.MinorUnits([]byte(text), exp, false)
	if err != nil {
		return nil, fmt.Errorf("amount %q: %w", clipText(text), err)
	}
	if n < 0 {
		return nil, fmt.Errorf("amount %q is negative", clipText(text))
	}
	return int(n), nil
}

// clipText shortens a value quoted in an error message: a message does
// not copy a megabyte of event data.
func clipText(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func emptyValue(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	}
	return false
}
