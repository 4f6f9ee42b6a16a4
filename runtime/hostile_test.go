package runtime_test

// Hostile events against the Button blueprint: every one must give its
// exact outcome and reason (and, for field faults, the exact fields), never
// panic, and never take long. The expectations come from the Button 0.1.0
// contract (order of checks, money, quantity, event-name normalisation, size
// limit); where the contract is silent the case says which behaviour it pins
// and why.
//
// The helpers in this file (robust*) are shared by the other robustness
// tests of this package: fuzz_test.go, concurrency_test.go, secret_test.go.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Config of the Button integration used by the robustness tests.
const (
	robustAppID  = "app-abc123def456"
	robustAPIKey = "sk-test-123"
)

// robustHosts are the hosts a delivered Button request may go to.
var robustHosts = []string{"api.usebutton.com", robustAppID + ".mobileapi.usebutton.com"}

var (
	robustOnce sync.Once
	robustBP   *engine.Blueprint
	robustErr  error
)

// robustButton compiles button@0.1.0 from the embedded catalog (once).
func robustButton(tb testing.TB) *engine.Blueprint {
	tb.Helper()
	robustOnce.Do(func() {
		cat, err := engine.NewCatalog(blueprints.FS)
		if err != nil {
			robustErr = err
			return
		}
		bp, ds, err := cat.Compile("button@0.1.0")
		switch {
		case err != nil:
			robustErr = err
		case bp == nil:
			robustErr = fmt.Errorf("button@0.1.0 does not compile:\n%v", ds)
		}
		robustBP = bp
	})
	if robustErr != nil {
		tb.Fatal(robustErr)
	}
	return robustBP
}

// robustBind binds Button with the test config.
func robustBind(tb testing.TB, variant, apiKey string, opts ...runtime.Option) *runtime.Integration {
	tb.Helper()
	in, err := runtime.Bind(robustButton(tb), variant, map[string]any{"application_id": robustAppID, "api_key": apiKey}, opts...)
	if err != nil {
		tb.Fatalf("Bind(%s): %v", variant, err)
	}
	return in
}

// robustEnvelope is what every test event carries besides its name and
// properties: a track event with a time and advertising consent granted.
const robustEnvelope = `"type":"track","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}}`

// robustGoodOrder are the properties of a valid Order Completed.
const robustGoodOrder = `"order_id":"ord-1","total":25.5,"currency":"USD","products":[{"product_id":"p-1","price":25.5,"quantity":1}]`

// robustOrder is an Order Completed event with the given properties (the
// inside of the properties object).
func robustOrder(props string) []byte {
	return []byte(`{"event":"Order Completed",` + robustEnvelope + `,"properties":{` + props + `}}`)
}

// robustProduct is a Product Added event with the given properties.
func robustProduct(props string) []byte {
	return []byte(`{"event":"Product Added",` + robustEnvelope + `,"properties":{` + props + `}}`)
}

// robustNamed is a track event of the given raw JSON name and top-level
// type member (the raw text after "type":, or "" for none), with the valid
// order properties.
func robustNamed(typ, nameJSON string) []byte {
	t := ""
	if typ != "" {
		t = `"type":` + typ + `,`
	}
	return []byte(`{` + t + `"event":` + nameJSON + `,"timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{` + robustGoodOrder + `}}`)
}

// robustTimed is a valid Order Completed with the given timestamp.
func robustTimed(ts string) []byte {
	return []byte(`{"type":"track","event":"Order Completed","timestamp":"` + ts + `","context":{"consent":{"advertising":true}},"properties":{` + robustGoodOrder + `}}`)
}

// robustNest is n levels of {"a": ... } around 1 (n == 0 gives 1).
func robustNest(n int) string {
	return strings.Repeat(`{"a":`, n) + `1` + strings.Repeat(`}`, n)
}

// robustProblems collects what is wrong with one result.
type robustProblems []string

func (p *robustProblems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// robustEvaluate evaluates an event, turning a panic (in Evaluate or in
// rendering its result) into a problem.
func robustEvaluate(in *runtime.Integration, event []byte) (res runtime.Result, text string, p robustProblems) {
	res, text, _, p = robustEvaluateTimed(in, event)
	return res, text, p
}

// robustEvaluateTimed is robustEvaluate that also says how long Evaluate
// alone took.
func robustEvaluateTimed(in *runtime.Integration, event []byte) (res runtime.Result, text string, took time.Duration, p robustProblems) {
	defer func() {
		if r := recover(); r != nil {
			p.add("PANIC: %v", r)
		}
	}()
	start := time.Now()
	res = in.Evaluate(event)
	took = time.Since(start)
	text = res.String()
	for _, q := range res.Requests {
		_ = in.Redacted(q)
	}
	return res, text, took, p
}

// robustInvariants checks what holds for every result: one of the three
// outcomes, a reason from the fixed set matching the outcome, fields for a
// field fault, valid requests for a deliver, and no recovered panic.
func robustInvariants(res runtime.Result, text string, p *robustProblems) {
	if strings.Contains(res.Message, "internal error") || strings.Contains(text, "internal error") {
		p.add("Evaluate recovered from a panic: %s", res.Message)
	}
	switch res.Outcome {
	case runtime.Deliver:
		if res.Reason != "" {
			p.add("deliver with reason %q", res.Reason)
		}
		if len(res.Requests) == 0 {
			p.add("deliver without requests")
		}
		for i, q := range res.Requests {
			if q == nil {
				p.add("request %d is nil", i)
				continue
			}
			if !json.Valid(q.Body) {
				p.add("request %d body is not valid JSON: %.200q", i, q.Body)
			}
			if !utf8.Valid(q.Body) {
				p.add("request %d body is not valid UTF-8", i)
			}
			u, err := url.Parse(q.URL)
			if err != nil {
				p.add("request %d URL %q does not parse: %v", i, q.URL, err)
			} else if u.Scheme != "https" || !slices.Contains(robustHosts, u.Host) {
				p.add("request %d goes to %s://%s, not one of https://%v", i, u.Scheme, u.Host, robustHosts)
			}
		}
	case runtime.Skip:
		if !slices.Contains([]string{runtime.ReasonConsentDenied, runtime.ReasonEventNotMapped, runtime.ReasonFiltered}, res.Reason) {
			p.add("skip with reason %q", res.Reason)
		}
		if len(res.Requests) > 0 {
			p.add("skip with %d requests", len(res.Requests))
		}
	case runtime.Reject:
		switch res.Reason {
		case runtime.ReasonMissingRequiredField, runtime.ReasonInvalidField:
			if len(res.Fields) == 0 {
				p.add("reject %s names no field", res.Reason)
			}
		case runtime.ReasonInvalidEvent:
		default:
			p.add("reject with reason %q", res.Reason)
		}
		if len(res.Requests) > 0 {
			p.add("reject with %d requests", len(res.Requests))
		}
	default:
		p.add("unknown outcome %q", res.Outcome)
	}
}

// robustBody decodes the body of the first request.
func robustBody(res runtime.Result) map[string]any {
	if len(res.Requests) == 0 {
		return nil
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(res.Requests[0].Body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil
	}
	return m
}

// robustFinish reports problems as failures.
func robustFinish(t *testing.T, p robustProblems) {
	t.Helper()
	if len(p) > 0 {
		t.Error(strings.Join(p, "\n"))
	}
}

type hostileCase struct {
	name     string
	variants []string // nil: default and retail
	event    []byte
	opts     []runtime.Option
	outcome  runtime.Outcome
	reason   string
	// fields are the exact fields at fault (compared as a set).
	fields []string
	// check adds case-specific checks.
	check func(res runtime.Result, p *robustProblems)
	// within bounds the time of one Evaluate (default 2s; generous, so
	// that -race on a slow machine passes: without -race every case takes
	// well under a second).
	within time.Duration
}

var bothVariants = []string{"default", "retail"}

// retailOnly is for Product Added, which only the retail variant maps.
var retailOnly = []string{"retail"}

func hostileCases() []hostileCase {
	invalidEvent := func(name string, ev []byte) hostileCase {
		return hostileCase{name: name, event: ev, outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent}
	}
	notMapped := func(name string, ev []byte) hostileCase {
		return hostileCase{name: name, event: ev, outcome: runtime.Skip, reason: runtime.ReasonEventNotMapped}
	}
	deliver := func(name string, ev []byte, check func(runtime.Result, *robustProblems)) hostileCase {
		return hostileCase{name: name, event: ev, outcome: runtime.Deliver, check: check}
	}
	invalidField := func(name string, ev []byte, fields ...string) hostileCase {
		return hostileCase{name: name, event: ev, outcome: runtime.Reject, reason: runtime.ReasonInvalidField, fields: fields}
	}
	missing := func(name string, ev []byte, fields ...string) hostileCase {
		return hostileCase{name: name, event: ev, outcome: runtime.Reject, reason: runtime.ReasonMissingRequiredField, fields: fields}
	}
	retail := func(c hostileCase) hostileCase { c.variants = retailOnly; return c }
	defaultOnly := func(c hostileCase) hostileCase { c.variants = []string{"default"}; return c }
	bodyHas := func(key string, want any) func(runtime.Result, *robustProblems) {
		return func(res runtime.Result, p *robustProblems) {
			got := robustBody(res)[key]
			if fmt.Sprint(got) != fmt.Sprint(want) {
				p.add("body %s = %v, want %v", key, got, want)
			}
		}
	}
	lineItem := func(key string, want any) func(runtime.Result, *robustProblems) {
		return func(res runtime.Result, p *robustProblems) {
			items, _ := robustBody(res)["line_items"].([]any)
			if len(items) == 0 {
				p.add("no line_items in body")
				return
			}
			item, _ := items[0].(map[string]any)
			if got := item[key]; fmt.Sprint(got) != fmt.Sprint(want) {
				p.add("line_items[0].%s = %v, want %v", key, got, want)
			}
		}
	}

	good := robustOrder(robustGoodOrder)
	// The valid order with its properties padded (by a "pad" property) to
	// exactly n bytes.
	padded := func(n int) []byte {
		base := len(robustOrder(robustGoodOrder + `,"pad":""`))
		if n < base {
			panic("padded: too small")
		}
		ev := robustOrder(robustGoodOrder + `,"pad":"` + strings.Repeat("x", n-base) + `"`)
		if len(ev) != n {
			panic("padded: wrong length")
		}
		return ev
	}
	products := func(n int, item func(i int) string) []byte {
		var b strings.Builder
		b.WriteString(`"order_id":"ord-big","total":1000,"currency":"USD","products":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(item(i))
		}
		b.WriteString(`]`)
		return robustOrder(b.String())
	}
	okItem := func(i int) string { return fmt.Sprintf(`{"sku":"s%d","price":1}`, i) }
	const big = 16 << 20

	cases := []hostileCase{
		// 1. Not a JSON object.
		invalidEvent("not an object: empty array", []byte(`[]`)),
		invalidEvent("not an object: array of events", []byte(`[`+string(good)+`]`)),
		invalidEvent("not an object: string", []byte(`"Order Completed"`)),
		invalidEvent("not an object: number", []byte(`42`)),
		invalidEvent("not an object: negative float", []byte(`-1.5e3`)),
		invalidEvent("not an object: null", []byte(`null`)),
		invalidEvent("not an object: true", []byte(`true`)),
		invalidEvent("not an object: false", []byte(`false`)),

		// Malformed JSON.
		invalidEvent("malformed: trailing comma", []byte(`{"event":"Order Completed",}`)),
		invalidEvent("malformed: unquoted key", []byte(`{event:"Order Completed"}`)),
		invalidEvent("malformed: single quotes", []byte(`{'event':'Order Completed'}`)),
		invalidEvent("malformed: missing colon", []byte(`{"event" "Order Completed"}`)),
		invalidEvent("malformed: leading zero", []byte(`{"event":"Order Completed","n":01}`)),
		invalidEvent("malformed: NaN literal", []byte(`{"event":"Order Completed","n":NaN}`)),
		invalidEvent("malformed: Infinity literal", []byte(`{"event":"Order Completed","n":Infinity}`)),
		invalidEvent("malformed: bare dot number", []byte(`{"event":"Order Completed","n":1.}`)),
		invalidEvent("malformed: hex number", []byte(`{"event":"Order Completed","n":0x10}`)),
		invalidEvent("malformed: bad escape", []byte(`{"event":"Order\x Completed"}`)),
		invalidEvent("malformed: short unicode escape", []byte(`{"event":"Order \u00 Completed"}`)),
		invalidEvent("malformed: raw newline in string", []byte("{\"event\":\"Order\nCompleted\"}")),
		invalidEvent("malformed: raw NUL in string", []byte("{\"event\":\"Order\x00Completed\"}")),
		invalidEvent("malformed: comment", []byte(`{"event":"Order Completed" /* c */}`)),
		invalidEvent("malformed: unclosed string", []byte(`{"event":"Order Completed}`)),
		invalidEvent("malformed: mismatched bracket", []byte(`{"event":"Order Completed","p":[1,2}}`)),

		// Truncated JSON (every prefix is checked in TestHostileTruncated).
		invalidEvent("truncated: half", good[:len(good)/2]),
		invalidEvent("truncated: last brace", good[:len(good)-1]),
		invalidEvent("truncated: open brace", []byte(`{`)),

		// Trailing data after the object.
		invalidEvent("trailing: second object", append(slices.Clone(good), `{}`...)),
		invalidEvent("trailing: second event", append(append(slices.Clone(good), '\n'), good...)),
		invalidEvent("trailing: garbage", append(slices.Clone(good), ` x`...)),
		invalidEvent("trailing: comma", append(slices.Clone(good), `,`...)),
		invalidEvent("trailing: bracket", append(slices.Clone(good), `]`...)),
		invalidEvent("trailing: NUL byte", append(slices.Clone(good), 0)),
		deliver("trailing white space is allowed", append(slices.Clone(good), " \t\r\n"...), nil),
		deliver("leading white space is allowed", append([]byte(" \t\r\n"), good...), nil),

		// Invalid UTF-8 inside a string (JSON text must be UTF-8).
		invalidEvent("invalid UTF-8: 0xff in order_id", robustOrder(`"order_id":"ord-`+"\xff"+`1","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`)),
		invalidEvent("invalid UTF-8: overlong slash", robustOrder(`"order_id":"ord-`+"\xc0\xaf"+`","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`)),
		invalidEvent("invalid UTF-8: truncated sequence", robustOrder(`"order_id":"ord-`+"\xe2\x82"+`","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`)),
		invalidEvent("invalid UTF-8: encoded surrogate", robustOrder(`"order_id":"ord-`+"\xed\xa0\x80"+`","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`)),
		invalidEvent("invalid UTF-8: in event name", []byte(`{"event":"Order Completed`+"\xff"+`"}`)),
		invalidEvent("invalid UTF-8: in a key", robustOrder(robustGoodOrder+`,"k`+"\xfe"+`":1`)),
		invalidEvent("invalid UTF-8: Latin-1 text", robustOrder(robustGoodOrder+`,"name":"Caf`+"\xe9"+`"`)),

		// A lone surrogate escape is valid JSON grammar (RFC 8259 §8.2 leaves
		// its meaning open); it is read as U+FFFD, and the body passes it on
		// as written, so the request is still valid JSON.
		deliver("lone high surrogate escape in order_id", robustOrder(`"order_id":"\ud800","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`),
			func(res runtime.Result, p *robustProblems) {
				var b struct {
					OrderID string `json:"order_id"`
				}
				if err := json.Unmarshal(res.Requests[0].Body, &b); err != nil || b.OrderID != "\ufffd" {
					p.add("order_id decodes to %q (%v), want U+FFFD", b.OrderID, err)
				}
			}),
		deliver("lone low surrogate escape in product name", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"name":"a\udc00b"}]`), nil),
		notMapped("lone surrogate escape in event name", robustNamed(`"track"`, `"Order Completed\ud800"`)),
		invalidField("lone surrogate escape in currency", robustOrder(`"order_id":"o","total":1,"currency":"\ud800SD","products":[{"sku":"s","price":1}]`), "currency"),

		// A byte order mark is not JSON (RFC 8259 §8.1: parsers MAY ignore it;
		// the contract's "not a JSON object" applies).
		invalidEvent("BOM prefix", append([]byte("\xef\xbb\xbf"), good...)),
		invalidEvent("UTF-16 BOM prefix", append([]byte("\xfe\xff"), good...)),
		deliver("BOM inside a string is just text", robustOrder(`"order_id":"`+"\ufeff"+`ord-1","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`), nil),

		// Empty input and white space only.
		invalidEvent("empty input", []byte{}),
		invalidEvent("nil input", nil),
		invalidEvent("white space only", []byte(" \t\r\n ")),
		invalidEvent("one space", []byte(" ")),

		// Nesting: the outer object is level 1; 64 levels are allowed.
		deliver("nesting 64 deep is allowed", robustOrder(robustGoodOrder+`,"deep":`+robustNest(62)), nil),
		invalidEvent("nesting 65 deep", robustOrder(robustGoodOrder+`,"deep":`+robustNest(63))),
		deliver("nesting 64 deep through arrays is allowed", robustOrder(robustGoodOrder+`,"deep":`+strings.Repeat("[", 62)+strings.Repeat("]", 62)), nil),
		invalidEvent("nesting 65 deep through arrays", robustOrder(robustGoodOrder+`,"deep":`+strings.Repeat("[", 63)+strings.Repeat("]", 63))),
		invalidEvent("nesting 65 deep in an unread top-level key", []byte(`{"event":"Order Completed","x":`+robustNest(64)+`}`)),
		deliver("brackets inside strings do not nest", robustOrder(robustGoodOrder+`,"s":"`+strings.Repeat("{[", 100)+`","t":"\"`+strings.Repeat("{", 100)+`\\"`), nil),
		{name: "nesting 500 000 deep is refused quickly", event: []byte(`{"a":` + strings.Repeat("[", 500_000) + strings.Repeat("]", 500_000) + `}`),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent, within: 10 * time.Second},
		{name: "1 000 000 unclosed brackets are refused quickly", event: []byte(`{"a":` + strings.Repeat("[", 1_000_000)),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent, within: 10 * time.Second},
		{name: "custom depth limit 3", event: robustOrder(robustGoodOrder), opts: []runtime.Option{runtime.WithMaxDepth(3)},
			outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent},
		{name: "custom depth limit 4", event: robustOrder(robustGoodOrder), opts: []runtime.Option{runtime.WithMaxDepth(4)},
			outcome: runtime.Deliver},

		// Size: default limit 1 MiB.
		deliver("exactly 1 MiB", padded(runtime.DefaultMaxEventSize), nil),
		invalidEvent("1 MiB + 1 byte", padded(runtime.DefaultMaxEventSize+1)),
		invalidEvent("over 1 MiB", padded(3<<19)),
		invalidEvent("over 1 MiB of white space", append(slices.Clone(good), bytes.Repeat([]byte(" "), 1<<20)...)),
		{name: "over 1 MiB accepted with WithMaxEventSize(2 MiB)", event: padded(3 << 19),
			opts: []runtime.Option{runtime.WithMaxEventSize(2 << 20)}, outcome: runtime.Deliver},
		{name: "custom limit 300: 301 bytes", event: padded(301),
			opts: []runtime.Option{runtime.WithMaxEventSize(300)}, outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent},
		{name: "custom limit 300: 300 bytes", event: padded(300),
			opts: []runtime.Option{runtime.WithMaxEventSize(300)}, outcome: runtime.Deliver},
		{name: "custom limit 300: a not-object over the limit", event: []byte(`[` + strings.Repeat(`1,`, 200) + `1]`),
			opts: []runtime.Option{runtime.WithMaxEventSize(300)}, outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent},

		// Enormous numbers as money.
		invalidField("total 1e400", robustOrder(`"order_id":"o","total":1e400,"currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total -1e400", robustOrder(`"order_id":"o","total":-1e400,"currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total 99999999999999999999999", robustOrder(`"order_id":"o","total":99999999999999999999999,"currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total \"99999999999999999999999\" as text", robustOrder(`"order_id":"o","total":"99999999999999999999999","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total 92233720368547758.08 (one over int64 cents)", robustOrder(`"order_id":"o","total":92233720368547758.08,"currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		deliver("total 90000000000000000.00 (near the int64 limit in cents)", robustOrder(`"order_id":"o","total":90000000000000000.00,"currency":"USD","products":[{"sku":"s","price":1}]`),
			bodyHas("total", "9000000000000000000")),
		invalidField("total \"1e5\" as text", robustOrder(`"order_id":"o","total":"1e5","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		deliver("total 1e5 as a JSON number", robustOrder(`"order_id":"o","total":1e5,"currency":"USD","products":[{"sku":"s","price":1}]`),
			bodyHas("total", "10000000")),
		deliver("total 1e-400 rounds to 0", robustOrder(`"order_id":"o","total":1e-400,"currency":"USD","products":[{"sku":"s","price":1}]`),
			bodyHas("total", "0")),
		invalidField("price 1e400", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1e400}]`), "line_items[0].amount"),
		invalidField("price 99999999999999999999999", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":99999999999999999999999}]`), "line_items[0].amount"),
		retail(invalidField("add_to_cart price 1e400", robustProduct(`"sku":"s","price":1e400`), "value.amount")),
		retail(invalidField("add_to_cart price \"1e5\" as text", robustProduct(`"sku":"s","price":"1e5"`), "value.amount")),

		// NaN-like text as money.
		invalidField("total \"NaN\"", robustOrder(`"order_id":"o","total":"NaN","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total \"Infinity\"", robustOrder(`"order_id":"o","total":"Infinity","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total \"-Infinity\"", robustOrder(`"order_id":"o","total":"-Infinity","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total \"0x10\"", robustOrder(`"order_id":"o","total":"0x10","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("subtotal \"NaN\" wins over a good total", robustOrder(`"order_id":"o","subtotal":"NaN","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		deliver("total \"-0\" is zero, not negative", robustOrder(`"order_id":"o","total":"-0","currency":"USD","products":[{"sku":"s","price":1}]`),
			bodyHas("total", "0")),
		invalidField("total \"-1\" is negative", robustOrder(`"order_id":"o","total":"-1","currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("total -0.001 rounds to 0 but is negative", robustOrder(`"order_id":"o","total":-0.001,"currency":"USD","products":[{"sku":"s","price":1}]`), "total"),
		invalidField("price \"-0.004\" rounds to 0 but is negative", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":"-0.004"}]`), "line_items[0].amount"),
		invalidField("price \"NaN\"", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":"NaN"}]`), "line_items[0].amount"),
		invalidField("price \"Infinity\"", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":"Infinity"}]`), "line_items[0].amount"),
		invalidField("price \"0x10\"", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":"0x10"}]`), "line_items[0].amount"),
		deliver("price \"-0\" is zero", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":"-0"}]`),
			lineItem("total", "0")),
		invalidField("NaN everywhere names each source once", robustOrder(`"order_id":"o","total":"NaN","currency":"USD","products":[{"sku":"s","price":"NaN","quantity":"NaN"}]`),
			"total", "line_items[0].amount", "line_items[0].quantity"),
		retail(invalidField("add_to_cart price \"NaN\", quantity \"Infinity\"", robustProduct(`"sku":"s","price":"NaN","quantity":"Infinity"`), "value.amount", "value.quantity")),

		// NaN-like text and huge numbers as quantities.
		invalidField("quantity \"NaN\"", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":"NaN"}]`), "line_items[0].quantity"),
		invalidField("quantity \"Infinity\"", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":"Infinity"}]`), "line_items[0].quantity"),
		invalidField("quantity \"0x10\"", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":"0x10"}]`), "line_items[0].quantity"),
		invalidField("quantity \"-0\" is below 1", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":"-0"}]`), "line_items[0].quantity"),
		invalidField("quantity -0 is below 1", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":-0}]`), "line_items[0].quantity"),
		invalidField("quantity 1e300", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":1e300}]`), "line_items[0].quantity"),
		invalidField("quantity 9223372036854775808 (over int64)", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":9223372036854775808}]`), "line_items[0].quantity"),
		invalidField("quantity 2.5", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":2.5}]`), "line_items[0].quantity"),
		deliver("quantity 1e3 is the integer 1000", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":1e3}]`),
			lineItem("total", "100000")),
		retail(invalidField("add_to_cart quantity 1e300", robustProduct(`"sku":"s","price":1,"quantity":1e300`), "value.quantity")),
		retail(invalidField("add_to_cart quantity \"0x10\"", robustProduct(`"sku":"s","quantity":"0x10"`), "value.quantity")),
		{
			// amount × quantity overflows int64 and wraps: the total sent is
			// negative. The contract makes every amount a non-negative
			// integer of minor units; a total that cannot be represented
			// must not be delivered.
			name:    "line total overflow: price 1 × quantity 9223372036854775807",
			event:   robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":9223372036854775807}]`),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidField,
			check: robustOverflowFields,
		},
		{
			name:    "line total overflow: price 100 × quantity 1e17",
			event:   robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":100,"quantity":100000000000000000}]`),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidField,
			check: robustOverflowFields,
		},

		// 100 000 products: over the default size limit as written; within
		// a larger limit it delivers every line item, and a fault in the
		// last one is named with its index.
		{name: "100 000 products over the default size limit", variants: []string{"default"},
			event: products(100_000, okItem), outcome: runtime.Reject, reason: runtime.ReasonInvalidEvent},
		{name: "100 000 products within a 16 MiB limit", variants: []string{"default"},
			event: products(100_000, okItem), opts: []runtime.Option{runtime.WithMaxEventSize(big)},
			outcome: runtime.Deliver, within: 20 * time.Second,
			check: func(res runtime.Result, p *robustProblems) {
				items, _ := robustBody(res)["line_items"].([]any)
				if len(items) != 100_000 {
					p.add("%d line items, want 100000", len(items))
					return
				}
				last, _ := items[99_999].(map[string]any)
				if fmt.Sprint(last["identifier"]) != "s99999" || fmt.Sprint(last["total"]) != "100" {
					p.add("last line item = %v", last)
				}
			}},
		{name: "100 000 products, the last with a bad quantity", variants: []string{"default"},
			event: products(100_000, func(i int) string {
				if i == 99_999 {
					return `{"sku":"s","price":1,"quantity":0}`
				}
				return okItem(i)
			}), opts: []runtime.Option{runtime.WithMaxEventSize(big)},
			outcome: runtime.Reject, reason: runtime.ReasonInvalidField, fields: []string{"line_items[99999].quantity"}, within: 20 * time.Second},
		// A reject names the first 100 fields, then how many more (issue
		// #11: naming all 200 000 made a result of megabytes).
		{name: "100 000 empty products name the first 100 missing fields", variants: []string{"default"},
			event: products(100_000, func(int) string { return `{}` }), opts: []runtime.Option{runtime.WithMaxEventSize(big)},
			outcome: runtime.Reject, reason: runtime.ReasonMissingRequiredField, within: 20 * time.Second,
			check: func(res runtime.Result, p *robustProblems) {
				if len(res.Fields) != 101 || res.Fields[0] != "line_items[0].identifier" || res.Fields[99] != "line_items[49].total" || res.Fields[100] != "and 199900 more" {
					p.add("%d fields, first %q", len(res.Fields), res.Fields[:min(2, len(res.Fields))])
				}
			}},

		// Deeply nested properties within the limit.
		deliver("properties nested 60 deep", robustOrder(robustGoodOrder+`,"extra":`+robustNest(60)), nil),
		deliver("product nested 58 deep", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"extra":`+robustNest(58)+`}]`), nil),
		retail(deliver("add_to_cart properties nested 61 deep", robustProduct(`"sku":"s","extra":`+robustNest(61)), nil)),

		// Keys with dots, asterisks and question marks are names, never
		// paths or patterns.
		missing("dotted top-level key does not stand for properties.order_id",
			[]byte(`{"event":"Order Completed",`+robustEnvelope+`,"properties.order_id":"evil","properties":{"total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`), "order_id"),
		missing("keys order.id, order*, order_?d, order_i? do not match order_id",
			robustOrder(`"order.id":"a","order*":"b","order_?d":"c","order_i?":"d","*":"e","?":"f","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`), "order_id"),
		missing("product keys product_id*, sku? do not match",
			robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[{"product_id*":"a","sku?":"b","*":"c","price":1}]`), "line_items[0].identifier"),
		{name: "dotted consent keys do not grant consent",
			event:   []byte(`{"type":"track","event":"Order Completed","context.consent.advertising":true,"context":{"consent.advertising":true,"consent":{"adv*":true,"advertising?":true}},"properties":{` + robustGoodOrder + `}}`),
			outcome: runtime.Skip, reason: runtime.ReasonConsentDenied},
		deliver("keys with path characters are kept as they are in custom data", robustOrder(robustGoodOrder+`,"a.b":1,"c*":2,"d?":3,"#":4,"@this":5,"x|y":6,"\\.":7`), nil),

		// Duplicated keys: the contract is silent, and readers disagree
		// (gjson reads the first, encoding/json, JavaScript and Python the
		// last): an event with a key twice in one object is refused
		// (issue #11; TestIssue11DuplicateKeys names the paths).
		invalidEvent("duplicated order_id", robustOrder(`"order_id":"first","order_id":"second","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`)),
		invalidEvent("duplicated event name", []byte(`{"event":"Order Completed","event":"Nope",`+robustEnvelope+`,"properties":{`+robustGoodOrder+`}}`)),
		invalidEvent("duplicated event name (unmapped first)", []byte(`{"event":"Nope","event":"Order Completed",`+robustEnvelope+`,"properties":{`+robustGoodOrder+`}}`)),
		invalidEvent("duplicated consent", []byte(`{"event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":false,"advertising":true}},"properties":{`+robustGoodOrder+`}}`)),
		invalidEvent("duplicated properties object", []byte(`{"event":"Order Completed",`+robustEnvelope+`,"properties":{`+robustGoodOrder+`},"properties":{}}`)),

		// Very long strings.
		deliver("500 KB order_id", robustOrder(`"order_id":"`+strings.Repeat("x", 500_000)+`","total":1,"currency":"USD","products":[{"sku":"s","price":1}]`),
			func(res runtime.Result, p *robustProblems) {
				if s, _ := robustBody(res)["order_id"].(string); len(s) != 500_000 {
					p.add("order_id has %d bytes, want 500000", len(s))
				}
			}),
		invalidField("500 KB currency: message stays short", robustOrder(`"order_id":"o","total":1,"currency":"`+strings.Repeat("U", 500_000)+`","products":[{"sku":"s","price":1}]`), "currency"),
		notMapped("500 KB event name", robustNamed(`"track"`, `"`+strings.Repeat("Order Completed ", 30_000)+`"`)),
		deliver("500 KB escaped string", robustOrder(robustGoodOrder+`,"note":"`+strings.Repeat(`\u00e9\n\"`, 50_000)+`"`), nil),

		// Unicode event names: normalisation folds ASCII spaces, '-' and '_'
		// (after trimming white space); other characters are kept.
		notMapped("ORDER COMPLETED with a non-breaking space", robustNamed(`"track"`, `"ORDER`+"\u00a0"+`COMPLETED"`)),
		notMapped("ORDER COMPLETED with an escaped non-breaking space", robustNamed(`"track"`, `"ORDER\u00a0COMPLETED"`)),
		notMapped("Order Completed with an ideographic space", robustNamed(`"track"`, `"Order`+"\u3000"+`Completed"`)),
		notMapped("Order Completed with a zero-width space", robustNamed(`"track"`, `"Order Completed`+"\u200b"+`"`)),
		notMapped("Order Completed with an em dash", robustNamed(`"track"`, `"Order`+"\u2014"+`Completed"`)),
		notMapped("full-width ORDER COMPLETED", robustNamed(`"track"`, `"ＯＲＤＥＲ ＣＯＭＰＬＥＴＥＤ"`)),
		notMapped("Order Completed with a combining accent", robustNamed(`"track"`, `"Orde\u0301r Completed"`)),
		deliver("non-breaking spaces around the name are trimmed", robustNamed(`"track"`, `"`+"\u00a0"+`ORDER COMPLETED`+"\u00a0"+`"`), nil),
		deliver("ORDER--__  COMPLETED is one separator run", robustNamed(`"track"`, `"  ORDER--__  COMPLETED\t"`), nil),
		notMapped("Order Completed with a NUL escape", robustNamed(`"track"`, `"Order\u0000Completed"`)),
		notMapped("event name as a number", robustNamed(`"track"`, `42`)),
		notMapped("event name as an object", robustNamed(`"track"`, `{"name":"Order Completed"}`)),
		notMapped("event name as a list", robustNamed(`"track"`, `["Order Completed"]`)),
		notMapped("event name null", robustNamed(`"track"`, `null`)),
		notMapped("event name empty", robustNamed(`"track"`, `""`)),
		notMapped("event name only spaces", robustNamed(`"track"`, `"   "`)),

		// Event type.
		deliver("type TRACK", robustNamed(`"TRACK"`, `"Order Completed"`), nil),
		deliver("type Track with spaces", robustNamed(`" Track "`, `"Order Completed"`), nil),
		deliver("type absent", robustNamed("", `"Order Completed"`), nil),
		deliver("type null counts as absent", robustNamed(`null`, `"Order Completed"`), nil),
		notMapped("type as a number", robustNamed(`1`, `"Order Completed"`)),
		notMapped("type as true", robustNamed(`true`, `"Order Completed"`)),
		notMapped("type as an object", robustNamed(`{"type":"track"}`, `"Order Completed"`)),
		notMapped("type as a list", robustNamed(`["track"]`, `"Order Completed"`)),
		notMapped("type identify", robustNamed(`"identify"`, `"Order Completed"`)),
		notMapped("type track with a non-breaking space inside", robustNamed(`"tr`+"\u00a0"+`ack"`, `"Order Completed"`)),

		// Shapes that are objects but not what the blueprint reads.
		{name: "consent as text \"true\" is not a boolean", event: []byte(`{"event":"Order Completed","context":{"consent":{"advertising":"true"}},"properties":{` + robustGoodOrder + `}}`),
			outcome: runtime.Skip, reason: runtime.ReasonConsentDenied},
		{name: "consent as 1 is not a boolean", event: []byte(`{"event":"Order Completed","context":{"consent":{"advertising":1}},"properties":{` + robustGoodOrder + `}}`),
			outcome: runtime.Skip, reason: runtime.ReasonConsentDenied},
		missing("properties as a list", []byte(`{"event":"Order Completed",`+robustEnvelope+`,"properties":[1,2]}`), "order_id", "total", "currency", "line_items"),
		missing("properties as text", []byte(`{"event":"Order Completed",`+robustEnvelope+`,"properties":"order_id"}`), "order_id", "total", "currency", "line_items"),
		invalidField("products as an object", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":{"sku":"s","price":1}`), "line_items"),
		invalidField("products holding null and a number", robustOrder(`"order_id":"o","total":1,"currency":"USD","products":[null,3,{"sku":"s","price":1}]`), "line_items[0]", "line_items[1]"),
		invalidField("order_id as an object", robustOrder(`"order_id":{"$gt":""},"total":1,"currency":"USD","products":[{"sku":"s","price":1}]`), "order_id"),
		invalidField("order_id as 1e400", robustOrder(`"order_id":1e400,"total":1,"currency":"USD","products":[{"sku":"s","price":1}]`), "order_id"),
		invalidField("timestamp as a number", []byte(`{"event":"Order Completed","timestamp":1732443330,"context":{"consent":{"advertising":true}},"properties":{`+robustGoodOrder+`}}`), "purchase_date"),
		invalidField("timestamp in year 10000", []byte(`{"event":"Order Completed","timestamp":"10000-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{`+robustGoodOrder+`}}`), "purchase_date"),
		// Times at the edge of what RFC 3339 can write.
		deliver("timestamp with 13 fractional digits", robustTimed("2026-11-24T10:15:30.1234567891234Z"), bodyHas("purchase_date", "2026-11-24T10:15:30Z")),
		deliver("timestamp with offset -00:00", robustTimed("2026-11-24T10:15:30-00:00"), bodyHas("purchase_date", "2026-11-24T10:15:30Z")),
		invalidField("timestamp February 30", robustTimed("2026-02-30T10:15:30Z"), "purchase_date"),
		{
			// UTC of 0000-01-01T00:00:00+01:00 is in year -1: the runtime
			// writes "-0001-12-31T23:00:00Z", which is not the contract's
			// 2006-01-02T15:04:05Z form (nor RFC 3339).
			name: "timestamp whose UTC falls before year 0", event: robustTimed("0000-01-01T00:00:00+01:00"),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidField, fields: []string{"purchase_date"},
		},
		{
			name: "timestamp whose UTC falls after year 9999", event: robustTimed("9999-12-31T23:59:59-01:00"),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidField, fields: []string{"purchase_date"},
		},
		retail(hostileCase{
			name: "add_to_cart timestamp whose UTC falls before year 0", event: []byte(`{"event":"Product Added","timestamp":"0000-01-01T00:00:00+01:00","context":{"consent":{"advertising":true}},"properties":{"sku":"s"}}`),
			outcome: runtime.Reject, reason: runtime.ReasonInvalidField, fields: []string{"time"},
		}),
		{
			// RFC 3339 §5.6: "T" and "Z" may alternatively be lower case.
			name: "timestamp with lower-case t and z", event: robustTimed("2026-11-24t10:15:30z"),
			outcome: runtime.Deliver, check: bodyHas("purchase_date", "2026-11-24T10:15:30Z"),
		},

		// Product Added is only mapped in retail.
		defaultOnly(notMapped("Product Added in the default variant", robustProduct(`"sku":"s","price":1`))),
	}
	for i := range cases {
		if cases[i].variants == nil {
			cases[i].variants = bothVariants
		}
	}
	return cases
}

// robustOverflowFields accepts a line-total overflow named by the line
// item's total or by the quantity that makes it overflow.
func robustOverflowFields(res runtime.Result, p *robustProblems) {
	ok := len(res.Fields) == 1 && (res.Fields[0] == "line_items[0].total" || res.Fields[0] == "line_items[0].quantity")
	if !ok {
		p.add("fields %q, want [line_items[0].total] or [line_items[0].quantity]", res.Fields)
	}
	if res.Outcome == runtime.Deliver {
		p.add("delivered body %s", res.Requests[0].Body)
	}
}

func TestHostileEvents(t *testing.T) {
	integrations := map[string]*runtime.Integration{}
	for _, c := range hostileCases() {
		for _, variant := range c.variants {
			t.Run(variant+"/"+c.name, func(t *testing.T) {
				var in *runtime.Integration
				if len(c.opts) == 0 {
					if integrations[variant] == nil {
						integrations[variant] = robustBind(t, variant, robustAPIKey)
					}
					in = integrations[variant]
				} else {
					in = robustBind(t, variant, robustAPIKey, c.opts...)
				}
				within := c.within
				if within == 0 {
					within = 2 * time.Second
				}
				res, text, took, p := robustEvaluateTimed(in, c.event)
				if took > within {
					p.add("took %v, more than %v", took, within)
				}
				if len(p) == 0 {
					robustInvariants(res, text, &p)
					if res.Outcome != c.outcome || res.Reason != c.reason {
						p.add("got %s %s %q (%.300s), want %s %s", res.Outcome, res.Reason, res.Fields, res.Message, c.outcome, c.reason)
						if len(res.Requests) > 0 {
							p.add("delivered body: %.400s", res.Requests[0].Body)
						}
					}
					if c.fields != nil && !robustSameSet(res.Fields, c.fields) {
						p.add("fields %q, want %q", res.Fields, c.fields)
					}
					if c.fields == nil && c.check == nil && res.Outcome != runtime.Reject && len(res.Fields) > 0 {
						p.add("unexpected fields %q", res.Fields)
					}
					if len(res.Message) > 2000 && res.Reason != runtime.ReasonMissingRequiredField && res.Reason != runtime.ReasonEventNotMapped {
						p.add("message is %d bytes long", len(res.Message))
					}
					if c.check != nil && res.Outcome == c.outcome {
						c.check(res, &p)
					}
				}
				robustFinish(t, p)
			})
		}
	}
}

func robustSameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestHostileTruncated cuts valid events at every byte: every proper prefix
// is invalid_event (a prefix of an object never closes it).
func TestHostileTruncated(t *testing.T) {
	events := [][]byte{
		robustOrder(`"order_id":"ord-1","total":"25.50","currency":"USD","user_id":12,"products":[{"product_id":"p-1","price":25.5,"quantity":1,"name":"Caf\u00e9 \"au\" lait","category":"é"}]`),
		robustProduct(`"sku":"s","price":1.5,"quantity":"2","url":"https://x/?a=1&b=[2]"`),
	}
	for _, variant := range bothVariants {
		in := robustBind(t, variant, robustAPIKey)
		for _, ev := range events {
			if res := in.Evaluate(ev); res.Outcome == runtime.Reject && res.Reason == runtime.ReasonInvalidEvent {
				t.Fatalf("%s: the whole event is refused: %s", variant, res.Message)
			}
			for n := 0; n < len(ev); n++ {
				res, text, p := robustEvaluate(in, ev[:n])
				if len(p) == 0 {
					robustInvariants(res, text, &p)
					if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent {
						p.add("got %s %s", res.Outcome, res.Reason)
					}
				}
				if len(p) > 0 {
					t.Errorf("%s: prefix %q: %s", variant, ev[:n], strings.Join(p, "; "))
				}
			}
		}
	}
}

// An expression giving a number JSON cannot hold (1/0, 0/0) makes the
// field invalid, named, rather than silently absent.
func TestExpressionNonFiniteIsInvalid(t *testing.T) {
	src := demoHead + `      ratio: {expr: 'event.properties.a / event.properties.b'}
      big: {expr: 'event.properties.a * 1e308 * 10'}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":1,"b":0}}`))
	if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || len(res.Fields) != 2 ||
		!strings.Contains(res.Message, "+Inf, which is not a number JSON can hold") {
		t.Errorf("got %s %s %v %q", res.Outcome, res.Reason, res.Fields, res.Message)
	}
	if res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":0,"b":2}}`)); res.Outcome != runtime.Deliver {
		t.Errorf("a finite ratio: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
}

// The text form of a result quotes an event name holding control
// characters: it cannot drive a terminal or forge a line of output.
func TestResultStringQuotesControlCharacters(t *testing.T) {
	in := robustBind(t, "retail", "sk-term-key")
	res := in.Evaluate([]byte(`{"type":"track","event":"Evil\u001b[2J\nline2"}`))
	s := res.String()
	if strings.ContainsAny(s, "\x1b\n") {
		t.Errorf("raw control characters in %q", s)
	}
	if !strings.Contains(s, `("Evil\x1b[2J\nline2")`) {
		t.Errorf("the name is not quoted: %q", s)
	}
}

// Result.LogValue: one structured line, no body, secrets redacted.
func TestResultLogValue(t *testing.T) {
	in := robustBind(t, "retail", "sk-log-secret")
	res := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","timestamp":"2026-01-01T00:00:00Z","user_id":"u-private","context":{"consent":{"advertising":true}},"properties":{"order_id":"o-1","total":5,"currency":"USD","products":[{"sku":"s","price":5}]}}`))
	var b strings.Builder
	slog.New(slog.NewJSONHandler(&b, nil)).Info("evaluated", "result", res)
	line := b.String()
	for _, want := range []string{`"outcome":"deliver"`, `"vendor_event":"purchase"`, `"requests":1`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line lacks %s: %s", want, line)
		}
	}
	if strings.Contains(line, "u-private") || strings.Contains(line, "o-1") || strings.Count(line, "\n") != 1 {
		t.Errorf("log line holds event data or several lines: %s", line)
	}
	unmapped := in.Evaluate([]byte(`{"type":"track","event":"sk-log-secret"}`))
	b.Reset()
	slog.New(slog.NewJSONHandler(&b, nil)).Info("evaluated", "result", unmapped)
	if strings.Contains(b.String(), "sk-log-secret") || !strings.Contains(b.String(), `"reason":"event_not_mapped"`) {
		t.Errorf("skip log line: %s", b.String())
	}
}

// A bound integration does not follow later changes to its blueprint's
// host list, and the default response rules cannot be changed from
// outside.
func TestBindSnapshotsHostsAndRules(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	in, err := runtime.Bind(bp, "retail", map[string]any{"application_id": "app-abc123", "api_key": "sk-snap-key"})
	if err != nil {
		t.Fatal(err)
	}
	cbp := compiler.Of(bp)
	hosts := cbp.Hosts
	cbp.Hosts = append(slices.Clone(hosts), "evil.example.com")
	defer func() { cbp.Hosts = hosts }()
	if in.HostAllowed("evil.example.com") || !in.HostAllowed("api.usebutton.com") {
		t.Error("the allow-list followed a change to the compiled blueprint")
	}
	compiler.DefaultResponseRules()[0].Outcome = compiler.OutcomeFailed
	if compiler.DefaultResponseRules()[0].Outcome != compiler.OutcomeDelivered {
		t.Error("the default response rules were changed from outside")
	}
	if _, err := runtime.Bind(nil, "", nil); err == nil {
		t.Error("Bind(nil) did not fail")
	}
}

// A filter that cannot be evaluated does not let the event through; an
// expression failing on a bad value is invalid even when another input,
// absent, is handled with ??.
func TestFilterFailsClosedAndHandledAbsence(t *testing.T) {
	src := demoHead + `      amount: {expr: 'minor_units(event.properties.price, "USD") * (event.properties.quantity ?? 1)'}
events:
  E:
    vendor_event: e
    request: r
    filter: 'event.properties.value > 0'
`
	in := bindInline(t, src)
	for _, tt := range []struct {
		event, outcome, reason string
		fields                 []string
	}{
		{`{"type":"track","event":"E","properties":{"price":"2.50"}}`, "skip", "filtered", nil},             // value absent
		{`{"type":"track","event":"E","properties":{"value":"0","price":"2.50"}}`, "skip", "filtered", nil}, // text compared to a number
		{`{"type":"track","event":"E","properties":{"value":0,"price":"2.50"}}`, "skip", "filtered", nil},   // false
		{`{"type":"track","event":"E","properties":{"value":1,"price":"2.50"}}`, "deliver", "", nil},        // true
		{`{"type":"track","event":"E","properties":{"value":1,"price":"abc"}}`, "reject", "invalid_field", []string{"amount"}},
		{`{"type":"track","event":"E","properties":{"value":1,"price":"abc","quantity":2}}`, "reject", "invalid_field", []string{"amount"}},
	} {
		res := in.Evaluate([]byte(tt.event))
		if string(res.Outcome) != tt.outcome || res.Reason != tt.reason || !slices.Equal(res.Fields, tt.fields) {
			t.Errorf("%s: got %s %s %v %q", tt.event, res.Outcome, res.Reason, res.Fields, res.Message)
		}
	}
}

// Helpers and builtins called on an absent optional input give an absent
// field, not a reject (a regression the final review caught).
func TestHelpersOnAbsentInputs(t *testing.T) {
	src := demoHead + `      a: {from: properties.a}
      h: {expr: 'sha256_hex(event.properties.email)'}
      e: {expr: 'email_sha256(event.properties.email)'}
      t: {expr: 'utc_time(event.properties.ts)'}
      m: {expr: 'minor_units(event.properties.amt, "USD")'}
      u: {expr: 'upper(event.properties.name)'}
      s: {expr: 'event.properties.q * 2'}
      p: {expr: 'parse_time(event.properties.ts).Year()'}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":"x"}}`))
	if res.Outcome != runtime.Deliver || string(res.Requests[0].Body) != `{"a":"x"}` {
		t.Errorf("got %s %s %v %q", res.Outcome, res.Reason, res.Fields, res.Message)
	}
}

// demoHead starts the small blueprints of these tests: one request r whose
// body fields follow.
const demoHead = `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
`

// bindInline compiles a blueprint given as text and binds it with no
// config.
func bindInline(t *testing.T, src string) *runtime.Integration {
	t.Helper()
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return in
}
