package runtime_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/runtime"
)

// evalBothRoutes evaluates an event with the fields' compiled routes off
// (every field on writeField's general route, the reference) and on, and
// returns both results as text.
func evalBothRoutes(in *runtime.Integration, event []byte) (general, routed string) {
	restore := runtime.SetFastRoutes(false)
	general = runtime.DumpResult(in.Evaluate(event))
	restore()
	return general, runtime.DumpResult(in.Evaluate(event))
}

// TestRoutesMatchGeneral: every shipped vector (whose bodies use every
// feature of the language), every seed and benchmark event, evaluated
// with the routes off and on, gives the same result, byte for byte:
// decision, faults, messages, warnings, bodies and their secret ranges.
func TestRoutesMatchGeneral(t *testing.T) {
	r, files := shippedVectors(t)
	cases := 0
	for _, f := range files {
		bp, err := r.Blueprint(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range f.Cases {
			variant, config := f.Variant, f.Config
			if c.Variant != "" {
				variant = c.Variant
			}
			if c.HasConfig {
				config = c.Config
			}
			// A fixed clock: signatures and timestamps may read it.
			in, err := runtime.Bind(bp, variant, config, runtime.WithClock(func() time.Time { return conformance.DefaultNow }))
			if err != nil {
				continue // a config the case expects refused
			}
			cases++
			if g, r := evalBothRoutes(in, c.Event); g != r {
				t.Errorf("%s:%d %s:\ngeneral: %s\nrouted:  %s", f.Path, c.Line, c.Name, g, r)
			}
			// Items scanned again element by element (no window budget).
			restore := runtime.SetWindowBudget(0)
			g, r := evalBothRoutes(in, c.Event)
			restore()
			if g != r {
				t.Errorf("%s:%d %s, items scanned again:\ngeneral: %s\nrouted:  %s", f.Path, c.Line, c.Name, g, r)
			}
		}
	}
	if cases < 1000 {
		t.Errorf("only %d cases compared", cases)
	}
	events := evaluateSeeds(t)
	bench, err := filepath.Glob(filepath.Join("testdata", "bench", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range bench {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, b)
	}
	for _, variant := range []string{"default", "retail"} {
		in := robustBind(t, variant, robustAPIKey, runtime.WithClock(func() time.Time { return conformance.DefaultNow }))
		for _, ev := range events {
			if g, r := evalBothRoutes(in, ev); g != r {
				t.Errorf("%s %.300q:\ngeneral: %s\nrouted:  %s", variant, ev, g, r)
			}
			restore := runtime.SetWindowBudget(0)
			g, r := evalBothRoutes(in, ev)
			restore()
			if g != r {
				t.Errorf("%s %.300q, items scanned again:\ngeneral: %s\nrouted:  %s", variant, ev, g, r)
			}
		}
	}
}

// FuzzRoutes: whatever the event, the Button blueprint's fields give the
// same result on their compiled routes as on the general route.
//
//	go test ./runtime -run '^$' -fuzz FuzzRoutes -fuzztime 60s
func FuzzRoutes(f *testing.F) {
	for _, b := range evaluateSeeds(f) {
		f.Add(b)
	}
	in := robustBind(f, "retail", robustAPIKey, runtime.WithClock(func() time.Time { return conformance.DefaultNow }))
	f.Fuzz(func(t *testing.T, event []byte) {
		if g, r := evalBothRoutes(in, event); g != r {
			t.Errorf("event %.500q:\ngeneral: %s\nrouted:  %s", event, g, r)
		}
	})
}
