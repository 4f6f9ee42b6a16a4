package runtime_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// BenchmarkEvaluate measures one goroutine evaluating realistic events
// against the Button blueprint (retail variant), from raw bytes to the
// built request. button_purchase_3_items is a verbatim copy of the event
// the peers are measured on.
func BenchmarkEvaluate(b *testing.B) {
	in := robustBind(b, "retail", "sk-bench-key")
	cases := []struct {
		name    string
		outcome runtime.Outcome
	}{
		{"button_purchase_3_items", runtime.Deliver},
		{"button_add_to_cart", runtime.Deliver},
		{"skip_event_not_mapped", runtime.Skip},
		{"skip_consent_denied", runtime.Skip},
		{"reject_missing_order_id", runtime.Reject},
		{"button_purchase_items_1", runtime.Deliver},
		{"button_purchase_items_10", runtime.Deliver},
		{"button_purchase_items_100", runtime.Deliver},
		{"button_purchase_items_1000", runtime.Deliver},
	}
	for _, c := range cases {
		ev, err := os.ReadFile(filepath.Join("testdata", "bench", c.name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		if res := in.Evaluate(ev); res.Outcome != c.outcome {
			b.Fatalf("%s: %s %s %v %s", c.name, res.Outcome, res.Reason, res.Fields, res.Message)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(ev)))
			for b.Loop() {
				in.Evaluate(ev)
			}
		})
	}
}

// BenchmarkEvaluateParallel is BenchmarkEvaluate's 3-item purchase on
// every core (GOMAXPROCS goroutines sharing one Integration), as the
// delivery platform runs it: the figure to compare with the serial one is
// events per second.
func BenchmarkEvaluateParallel(b *testing.B) {
	in := robustBind(b, "retail", "sk-bench-key")
	ev, err := os.ReadFile(filepath.Join("testdata", "bench", "button_purchase_3_items.json"))
	if err != nil {
		b.Fatal(err)
	}
	if res := in.Evaluate(ev); res.Outcome != runtime.Deliver {
		b.Fatalf("%s %s %v", res.Outcome, res.Reason, res.Fields)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			in.Evaluate(ev)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
