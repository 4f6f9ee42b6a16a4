package runtime_test

import (
	"fmt"
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
		if c.name != "button_purchase_3_items" && c.name != "skip_event_not_mapped" {
			continue
		}
		// The same event checked once beforehand by runtime.Valid (as
		// the service does at ingestion), evaluated with EvaluateValid.
		v, err := runtime.Valid(ev)
		if err != nil {
			b.Fatal(err)
		}
		if res := in.EvaluateValid(v); res.Outcome != c.outcome {
			b.Fatalf("%s pre-validated: %s %s", c.name, res.Outcome, res.Reason)
		}
		b.Run(c.name+"_prevalidated", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(ev)))
			for b.Loop() {
				in.EvaluateValid(v)
			}
		})
	}
}

// BenchmarkValid is runtime.Valid alone on the 3-item purchase: what the
// service pays once per event at ingestion.
func BenchmarkValid(b *testing.B) {
	ev, err := os.ReadFile(filepath.Join("testdata", "bench", "button_purchase_3_items.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(ev)))
	for b.Loop() {
		if _, err := runtime.Valid(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFanOut8 is one event (the 3-item purchase) sent to 8 bound
// Button integrations (8 tenants sharing one compiled blueprint), per
// event: validated_once is runtime.Valid once then EvaluateValid for each
// integration, evaluate_each is Evaluate for each (every integration
// validating the bytes again), shared_scan is runtime.Valid once then
// EvaluateEach (the 8 share a blueprint, variant and limits: one scan);
// unmapped_* are the same for an event none of them maps
// (skip_event_not_mapped).
func BenchmarkFanOut8(b *testing.B) {
	ev, err := os.ReadFile(filepath.Join("testdata", "bench", "button_purchase_3_items.json"))
	if err != nil {
		b.Fatal(err)
	}
	ins := make([]*runtime.Integration, 8)
	for i := range ins {
		ins[i] = robustBind(b, "retail", fmt.Sprintf("sk-bench-key-%d", i))
		if res := ins[i].Evaluate(ev); res.Outcome != runtime.Deliver {
			b.Fatalf("%s %s %v", res.Outcome, res.Reason, res.Fields)
		}
	}
	skip, err := os.ReadFile(filepath.Join("testdata", "bench", "skip_event_not_mapped.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ev   []byte
	}{{"", ev}, {"unmapped_", skip}} {
		b.Run(c.name+"validated_once", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := runtime.Valid(c.ev)
				if err != nil {
					b.Fatal(err)
				}
				for _, in := range ins {
					in.EvaluateValid(v)
				}
			}
		})
		b.Run(c.name+"shared_scan", func(b *testing.B) {
			b.ReportAllocs()
			dst := make([]runtime.Result, 0, len(ins))
			for b.Loop() {
				v, err := runtime.Valid(c.ev)
				if err != nil {
					b.Fatal(err)
				}
				dst = runtime.EvaluateEach(dst[:0], v, ins)
			}
		})
		b.Run(c.name+"evaluate_each", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, in := range ins {
					in.Evaluate(c.ev)
				}
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
