package runtime_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// The decimal type and time formats, field by field, as the vendors that
// take major units and Unix times need them (docs/vendors-common.md).
func TestDecimalAndTimeFormats(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
values:
  currency: {from: properties.currency, type: currency}
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      amount: {from: properties.amount, type: decimal, currency: currency}
      amount_text: {from: properties.amount, type: decimal, currency: currency, text: true}
      exact: {from: properties.amount, type: decimal}
      scaled: {from: properties.amount, type: decimal, scale: 1, min: 0, max: 1000}
      line_total: {expr: 'decimal_mul(event.properties.price, event.properties.quantity ?? 1)', type: decimal, currency: currency}
      line_minor: {expr: 'decimal_mul(event.properties.price, event.properties.quantity ?? 1)', type: money, currency: currency}
      seconds: {from: timestamp, type: time, format: unix_seconds}
      millis: {from: timestamp, type: time, format: unix_millis, text: true}
      micros: {from: timestamp, type: time, format: unix_micros}
      ymd_hm: {from: timestamp, type: time, format: "20060102_1504"}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	body := func(props, ts string) (map[string]json.RawMessage, runtime.Result) {
		ev := `{"type":"track","event":"E","timestamp":` + ts + `,"properties":` + props + `}`
		res := in.Evaluate([]byte(ev))
		if res.Outcome != runtime.Deliver {
			return nil, res
		}
		m := map[string]json.RawMessage{}
		if err := json.Unmarshal(res.Requests[0].Body, &m); err != nil {
			t.Fatal(err)
		}
		return m, res
	}
	for _, c := range []struct {
		props, field, want string
	}{
		{`{"amount":25.5,"currency":"usd"}`, "amount", `25.50`},
		{`{"amount":"25.50","currency":"USD"}`, "amount", `25.50`},
		{`{"amount":1e3,"currency":"USD"}`, "amount", `1000.00`},
		{`{"amount":1.005,"currency":"USD"}`, "amount", `1.01`},
		{`{"amount":0.125,"currency":"USD"}`, "amount", `0.13`},
		{`{"amount":2.5,"currency":"JPY"}`, "amount", `3`},
		{`{"amount":1.0005,"currency":"KWD"}`, "amount", `1.001`},
		{`{"amount":"-0.00","currency":"USD"}`, "amount", `0.00`},
		{`{"amount":25.5}`, "amount", `25.50`},
		{`{"amount":25.5,"currency":"USD"}`, "amount_text", `"25.50"`},
		{`{"amount":"25.50"}`, "exact", `25.50`},
		{`{"amount":1.5e2}`, "exact", `150`},
		{`{"amount":"0.125"}`, "exact", `0.125`},
		{`{"amount":"0.25"}`, "scaled", `0.3`},
		{`{"price":"0.125","quantity":3,"currency":"USD"}`, "line_total", `0.38`},
		{`{"price":12.75,"quantity":2,"currency":"USD"}`, "line_total", `25.50`},
		{`{"price":12.75,"currency":"JPY"}`, "line_total", `13`},
		{`{"price":"0.125","quantity":3,"currency":"USD"}`, "line_minor", `38`},
	} {
		m, res := body(c.props, `"2026-02-25T14:30:00.000Z"`)
		if m == nil {
			t.Errorf("%s: %s %s: %s", c.props, res.Outcome, res.Reason, res.Message)
			continue
		}
		if got := string(m[c.field]); got != c.want {
			t.Errorf("%s: %s = %s, want %s", c.props, c.field, got, c.want)
		}
	}
	m, _ := body(`{}`, `"2026-02-25T16:30:00.999+02:00"`)
	for field, want := range map[string]string{"seconds": "1772029800", "millis": `"1772029800999"`, "micros": "1772029800999000", "ymd_hm": `"20260225_1430"`} {
		if got := string(m[field]); got != want {
			t.Errorf("%s = %s, want %s", field, got, want)
		}
	}
	for _, c := range []struct{ props, ts, field, msg string }{
		{`{"amount":"1e3"}`, `"2026-02-25T14:30:00Z"`, "amount", "is not a decimal amount"},
		{`{"amount":-1,"currency":"USD"}`, `"2026-02-25T14:30:00Z"`, "amount", "is negative"},
		{`{"amount":"abc"}`, `"2026-02-25T14:30:00Z"`, "amount", "is not a decimal amount"},
		{`{"amount":true}`, `"2026-02-25T14:30:00Z"`, "amount", "expected an amount"},
		{`{"amount":"1001"}`, `"2026-02-25T14:30:00Z"`, "scaled", "above the maximum 1000"},
		{`{"amount":"99999999999999999999"}`, `"2026-02-25T14:30:00Z"`, "amount", "too large"},
		{`{}`, `"1969-12-31T23:59:59Z"`, "seconds", "before 1970"},
	} {
		_, res := body(c.props, c.ts)
		if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || !contains(res.Fields, c.field) || !strings.Contains(res.Message, c.msg) {
			t.Errorf("%s %s: %s %s %v: %s", c.props, c.ts, res.Outcome, res.Reason, res.Fields, res.Message)
		}
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// min and max bound a time in Unix seconds (vendors-common.md: a time
// before 1970 or after 9999 is invalid_field, in every written form).
func TestTimeBounds(t *testing.T) {
	src := `key: demo
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
      at: {from: timestamp, type: time, min: 0}
      ymd_hm: {from: properties.t, type: time, format: "20060102_1504", min: 0, max: 1772029800}
      plain: {from: properties.p, type: time}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	eval := func(ts, props string) runtime.Result {
		return in.Evaluate([]byte(`{"type":"track","event":"E","timestamp":"` + ts + `","properties":` + props + `}`))
	}
	for _, c := range []struct{ ts, props, field, msg string }{
		{"1969-12-31T23:59:59Z", `{}`, "at", "is before 1970-01-01T00:00:00Z"},
		{"1969-12-31T23:59:59.999Z", `{}`, "at", "is before 1970-01-01T00:00:00Z"},
		{"1970-01-01T00:30:00+01:00", `{}`, "at", "is before 1970-01-01T00:00:00Z"},
		{"2026-02-25T14:30:00Z", `{"t":"1969-07-20T20:17:00Z"}`, "ymd_hm", "is before 1970-01-01T00:00:00Z"},
		{"2026-02-25T14:30:00Z", `{"t":"2026-02-25T14:31:00Z"}`, "ymd_hm", "is after 2026-02-25T14:30:00Z"},
	} {
		res := eval(c.ts, c.props)
		if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || !contains(res.Fields, c.field) || !strings.Contains(res.Message, c.msg) {
			t.Errorf("%s %s: %s %s %v: %s", c.ts, c.props, res.Outcome, res.Reason, res.Fields, res.Message)
		}
	}
	// On the bounds, and without bounds, a time is accepted.
	res := eval("1970-01-01T00:00:00Z", `{"t":"2026-02-25T14:30:00.999Z","p":"1969-07-20T20:17:00Z"}`)
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	if got, want := string(res.Requests[0].Body), `{"at":"1970-01-01T00:00:00Z","ymd_hm":"20260225_1430","plain":"1969-07-20T20:17:00Z"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

// min and max bound a list's number of elements, mapped (items) or not;
// the fault names the list, and a list over the bound is not mapped.
func TestArrayLengthBounds(t *testing.T) {
	src := `key: demo
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
      items:
        from: properties.products
        type: array
        max: 2
        items:
          sku: {from: sku, type: string, required: true}
      tags: {from: properties.tags, type: array, min: 1, max: 2}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	eval := func(props string) runtime.Result {
		return in.Evaluate([]byte(`{"type":"track","event":"E","properties":` + props + `}`))
	}
	for _, c := range []struct{ props, field, msg string }{
		{`{"products":[{"sku":"a"},{"sku":"b"},{}]}`, "items", "has 3 elements, more than the maximum 2"},
		{`{"tags":["a","b","c"]}`, "tags", "has 3 elements, more than the maximum 2"},
	} {
		res := eval(c.props)
		if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || len(res.Fields) != 1 || res.Fields[0] != c.field || !strings.Contains(res.Message, c.msg) {
			t.Errorf("%s: %s %s %v: %s", c.props, res.Outcome, res.Reason, res.Fields, res.Message)
		}
	}
	res := eval(`{"products":[{"sku":"a"},{"sku":"b"}],"tags":["x"]}`)
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	if got, want := string(res.Requests[0].Body), `{"items":[{"sku":"a"},{"sku":"b"}],"tags":["x"]}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}
