package runtime_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// An event mapping or a variant changes nested fields of a request's body
// by dotted name, and removes fields with null; a variant may require
// config keys of its own.
func TestNestedOverrides(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  region: {type: string}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      id: {from: properties.id}
      customer:
        fields:
          id: {from: userId}
          email: {from: traits.email}
      items:
        from: properties.products
        items:
          sku: {from: sku}
          price: {from: price}
events:
  A: {vendor_event: a, request: r}
  B:
    vendor_event: b
    request: r
    body:
      customer.email: null
      items.sku: {from: product_id}
      extra: {const: 1}
variants:
  default: {name: Default}
  lean:
    name: Lean
    required_config: [region]
    requests:
      r:
        body:
          customer: null
          items.price: null
`
	bp := compileInline(t, src)
	def, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ce *runtime.ConfigError
	if _, err := runtime.Bind(bp, "lean", nil); !errors.As(err, &ce) || ce.Problems["region"] != "is required by variant lean" {
		t.Fatalf("lean without region: %v", err)
	}
	lean, err := runtime.Bind(bp, "lean", map[string]any{"region": "eu"})
	if err != nil {
		t.Fatal(err)
	}
	ev := func(name string) string {
		return `{"event":"` + name + `","userId":"u","traits":{"email":"e@x"},"properties":{"id":"1","products":[{"sku":"s","product_id":"p","price":2}]}}`
	}
	for _, c := range []struct {
		in         *runtime.Integration
		event, out string
	}{
		{def, "A", `{"id":"1","customer":{"id":"u","email":"e@x"},"items":[{"sku":"s","price":2}]}`},
		{def, "B", `{"id":"1","customer":{"id":"u"},"items":[{"sku":"p","price":2}],"extra":1}`},
		{lean, "A", `{"id":"1","items":[{"sku":"s"}]}`},
		{lean, "B", `{"id":"1","items":[{"sku":"p"}],"extra":1}`},
	} {
		res := c.in.Evaluate([]byte(ev(c.event)))
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%s: %s %s", c.event, res.Outcome, res.Message)
		}
		var got, want any
		json.Unmarshal(res.Requests[0].Body, &got)
		json.Unmarshal([]byte(c.out), &want)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s %s: %s, want %s", c.in.Variant(), c.event, res.Requests[0].Body, c.out)
		}
	}
}
