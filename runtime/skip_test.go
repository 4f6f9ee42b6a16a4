package runtime_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Skipping an event the variant does not map, or one without consent, is
// the commonest outcome on a busy source: it must not allocate.
func TestSkipAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	in := robustBind(t, "default", "sk-test-key")
	for _, ev := range []string{
		`{"type":"track","event":"Product Viewed","properties":{"products":[{"sku":"a"},{"sku":"b"}]}}`,
		`{"type":"track","event":"Order Completed","context":{"consent":{"advertising":false}},"properties":{"order_id":"1"}}`,
		`{"type":"track","event":"Order Completed","properties":{"order_id":"1"}}`,
	} {
		b := []byte(ev)
		in.Evaluate(b) // first sight of a name fills the cache
		if n := testing.AllocsPerRun(100, func() { in.Evaluate(b) }); n != 0 {
			t.Errorf("%s: %v allocations per skip, want 0", ev, n)
		}
	}
}

// The unmapped-name cache gives the same result as the first rendering,
// scrubbed of secrets, and stays correct past its bound.
func TestUnmappedNameCache(t *testing.T) {
	in := robustBind(t, "default", secretKey)
	for i := range 300 {
		name := fmt.Sprintf("Event %d %s", i, secretKey)
		ev := []byte(`{"type":"track","event":"` + name + `"}`)
		for pass := range 2 {
			res := in.Evaluate(ev)
			if res.Outcome != runtime.Skip || res.Reason != runtime.ReasonEventNotMapped {
				t.Fatalf("%s: %s %s", name, res.Outcome, res.Reason)
			}
			want := fmt.Sprintf("Event %d %s", i, runtime.Mask)
			if res.Event != want || strings.Contains(res.Message, secretKey) || !strings.Contains(res.Message, `"`+want+`"`) {
				t.Fatalf("pass %d: Event %q, Message %q; want Event %q, masked in Message", pass, res.Event, res.Message, want)
			}
		}
	}
}
