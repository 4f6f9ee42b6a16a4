package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// TestExactNameLookup: an event name written as the blueprint writes it
// (found without normalising, see Integration.exactNames) and the same
// name spelt otherwise decide alike, and a name of a mapped name's length
// that is not mapped is still skipped.
func TestExactNameLookup(t *testing.T) {
	in := robustBind(t, "retail", "sk-test")
	ev := func(name string) []byte {
		return []byte(`{` + robustEnvelope + `,"event":"` + name + `","properties":{` + robustGoodOrder + `}}`)
	}
	exact := in.Evaluate(ev("Order Completed"))
	if exact.Outcome != runtime.Deliver {
		t.Fatalf("Order Completed: %s %s %s", exact.Outcome, exact.Reason, exact.Message)
	}
	for _, name := range []string{"order completed", " Order_Completed ", "ORDER-COMPLETED"} {
		got := in.Evaluate(ev(name))
		if got.Outcome != exact.Outcome || string(got.Requests[0].Body) != string(exact.Requests[0].Body) {
			t.Errorf("%q: %s %s, want the exact name's decision", name, got.Outcome, got.Reason)
		}
	}
	if got := in.Evaluate(ev("Order Complete?")); got.Outcome != runtime.Skip {
		t.Errorf("Order Complete?: %s, want skip", got.Outcome)
	}
}
