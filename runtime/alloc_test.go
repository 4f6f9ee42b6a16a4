package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
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

// A long "name" is data, not a name: it is not cached (the cache is
// bounded in bytes, not only in names).
func TestLongUnmappedNameNotCached(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	in := robustBind(t, "default", "sk-test-key")
	ev := []byte(`{"type":"track","event":"` + strings.Repeat("x", 200) + `"}`)
	in.Evaluate(ev)
	if n := testing.AllocsPerRun(10, func() { in.Evaluate(ev) }); n == 0 {
		t.Error("a 200-byte event name was cached")
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

// Delivering allocates the same few objects (the request, its body)
// whatever the number of line items: per-item garbage would show here
// before it showed in a benchmark.
func TestDeliverAllocationsFlat(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	in := robustBind(t, "retail", "sk-test-key")
	allocs := map[string]float64{}
	for _, name := range []string{"button_purchase_items_1", "button_purchase_items_100", "button_add_to_cart"} {
		ev, err := os.ReadFile(filepath.Join("testdata", "bench", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		if res := in.Evaluate(ev); res.Outcome != runtime.Deliver {
			t.Fatalf("%s: %s %s %v", name, res.Outcome, res.Reason, res.Fields)
		}
		allocs[name] = testing.AllocsPerRun(50, func() { in.Evaluate(ev) })
		if allocs[name] > 2 {
			t.Errorf("%s: %v allocations per event, want at most 2 (the request and its body)", name, allocs[name])
		}
	}
	if allocs["button_purchase_items_1"] != allocs["button_purchase_items_100"] {
		t.Errorf("allocations grow with line items: %v", allocs)
	}
}

// A fan-out allocates what EvaluateValid would for each integration, and
// nothing per integration besides (into a kept dst): the request and body
// of each delivered event, none for skips.
func TestEvaluateEachAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ins := make([]*runtime.Integration, 8)
	for i := range ins {
		ins[i] = robustBind(t, "retail", fmt.Sprintf("sk-test-key-%d", i))
	}
	dst := make([]runtime.Result, 0, len(ins))
	for _, c := range []struct {
		name string
		want float64
	}{{"button_purchase_3_items", 2 * 8}, {"skip_event_not_mapped", 0}, {"skip_consent_denied", 0}} {
		ev, err := os.ReadFile(filepath.Join("testdata", "bench", c.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := runtime.Valid(ev)
		if err != nil {
			t.Fatal(err)
		}
		runtime.EvaluateEach(dst[:0], v, ins) // first sight of a name fills the cache
		if n := testing.AllocsPerRun(50, func() { runtime.EvaluateEach(dst[:0], v, ins) }); n > c.want {
			t.Errorf("%s: %v allocations for 8 integrations, want at most %v", c.name, n, c.want)
		}
	}
}
