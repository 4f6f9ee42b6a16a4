package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// TestJoinedListFromPath: a list field with join is written as one text
// whether its value comes from a path or from an expression. A path to a
// single string with list: true and join wrote ["v"] (the direct route
// ran before join was looked at), while the same value from an
// expression wrote "v".
func TestJoinedListFromPath(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/c
    body:
      from_path: {from: properties.sku, type: string, list: true, join: "|"}
      from_expr: {expr: event.properties.sku, type: string, list: true, join: "|"}
events:
  Order Completed: {vendor_event: c, request: r}
`
	in, err := runtime.Bind(compileInline(t, src), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := []byte(`{"type":"track","event":"Order Completed","properties":{"sku":"S-1"}}`)
	for _, res := range []runtime.Result{in.Evaluate(ev), evaluateValid(t, in, ev)} {
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
		}
		if got, want := string(res.Requests[0].Body), `{"from_path":"S-1","from_expr":"S-1"}`; got != want {
			t.Errorf("body\n%s\nwant\n%s", got, want)
		}
	}
}

func evaluateValid(t *testing.T, in *runtime.Integration, ev []byte) runtime.Result {
	t.Helper()
	v, err := runtime.Valid(ev)
	if err != nil {
		t.Fatal(err)
	}
	return in.EvaluateValid(v)
}
