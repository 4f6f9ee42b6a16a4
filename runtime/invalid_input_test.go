package runtime_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// TestInvalidSharedValuePropagates: a field computed from a shared value
// whose input is invalid is invalid_field, saying which value and why:
// never dropped when optional, never "missing" when required (issue #12).
func TestInvalidSharedValuePropagates(t *testing.T) {
	bp, ds := engine.Compile("inv.yaml", []byte(`key: inv
version: 1.0.0
name: Inv
category: other
status: alpha
hosts: [api.example.com]
values:
  price: {from: properties.price, type: number}
  uid: {from: userId, type: id}
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      double: {expr: 'values.price * 2', type: number}
      need: {expr: 'values.price * 3', type: number, required: true}
      hashed: {expr: 'sha256_hex(values.uid)'}
      q: {from: properties.q, type: integer}
      qq: {expr: 'fields.q + 1', type: integer}
events:
  Order Completed: {vendor_event: purchase, request: track}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","userId":{"a":1},"properties":{"price":"abc","q":1}}`))
	want := []string{"double", "need", "hashed"}
	if res.Reason != runtime.ReasonInvalidField || !slices.Equal(res.Fields, want) {
		t.Fatalf("got %s %v (%s), want invalid_field %v", res.Reason, res.Fields, res.Message, want)
	}
	if !strings.Contains(res.Message, `need: reads values.price, which is invalid: expected a number, got "abc"`) {
		t.Fatalf("message does not say why: %s", res.Message)
	}
	// A fault named at its source: the fields derived from an invalid
	// value are not named besides it (qq reads q; double reads price,
	// which nothing else names, but the event is refused anyway).
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Completed","userId":"u-1","properties":{"price":"abc","q":"zz"}}`))
	if res.Reason != runtime.ReasonInvalidField || !slices.Equal(res.Fields, []string{"q"}) {
		t.Fatalf("got %s %v (%s), want invalid_field [q]", res.Reason, res.Fields, res.Message)
	}
	// Good inputs: delivered.
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Completed","userId":"u-1","properties":{"price":2,"q":1}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s", res.Outcome, res.Message)
	}
}
