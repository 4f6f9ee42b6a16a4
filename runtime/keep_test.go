package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// TestKeepCopiesMembersAsWritten: keep filters an object's members by JSON
// type and copies the kept ones byte for byte, in the event's order.
func TestKeepCopiesMembersAsWritten(t *testing.T) {
	bp, ds := engine.Compile("keep.yaml", []byte(`key: keep
version: 1.0.0
name: Keep
category: other
status: alpha
hosts: [api.example.com]
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      params: {from: properties, type: object, keep: [string, number]}
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
	res := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"z":"1","b":2.50,"big":12345678901234567890,"flag":true,"n":null,"o":{"x":1},"l":[1],"a":"x\u00e9","e":1e3}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatal(res.Outcome, res.Message)
	}
	want := `{"params":{"z":"1","b":2.50,"big":12345678901234567890,"a":"x\u00e9","e":1e3}}`
	if got := string(res.Requests[0].Body); got != want {
		t.Fatalf("body %s\nwant %s", got, want)
	}
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":"text"}`))
	if res.Reason != runtime.ReasonInvalidField {
		t.Fatalf("a string is not an object: %s %s", res.Outcome, res.Reason)
	}
}
