package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Maps that expr-lang builds with keys of any type (fromPairs:
// map[any]any; groupBy: map[any][]any) are written as JSON objects, not
// dropped as absent because encoding/json cannot write them.
func TestExprMapsWithAnyKeys(t *testing.T) {
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
      picked:
        expr: 'fromPairs(filter(toPairs(event.properties), type(#[1]) in ["string", "int", "float"]))'
        type: object
        required: true
      pairs: {expr: 'fromPairs([["a", 1], [2, "b"]])'}
      nested: {expr: '[fromPairs([["k", fromPairs([["x", true]])]])]'}
      groups: {expr: 'groupBy([1, 2, 3], # > 1)'}
      empty: {expr: 'fromPairs([])', type: object}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"event":"E","properties":{"s":"v","n":2.5,"b":true,"o":{"a":1}}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	want := `{"picked":{"n":2.5,"s":"v"},"pairs":{"2":"b","a":1},"nested":[{"k":{"x":true}}],"groups":{"false":[1],"true":[2,3]},"empty":{}}`
	if got := string(res.Requests[0].Body); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

// Lists and maps built by expressions are written as the body writer
// writes text: <, > and & as they are, not as encoding/json's HTML escapes
// (\u003c, \u003e, \u0026).
func TestExprListsKeepAngleBracketsAndAmpersands(t *testing.T) {
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
      text: {from: properties.id, type: string}
      ids: {expr: 'map(event.properties.products, #.id)'}
      obj: {expr: '{"a&b": event.properties.id}'}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"event":"E","properties":{"id":"<a&b>","products":[{"id":"x&y"},{"id":"<z>"}]}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	want := `{"text":"<a&b>","ids":["x&y","<z>"],"obj":{"a&b":"<a&b>"}}`
	if got := string(res.Requests[0].Body); got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}
