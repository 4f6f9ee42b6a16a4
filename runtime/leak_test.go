package runtime_test

import (
	goruntime "runtime"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// A long-running service compiles and binds again on every config change.
// Nothing the runtime derives per blueprint may outlive the blueprint:
// 2,000 compile-bind-evaluate cycles with every reference dropped must not
// grow the heap by more than 5 MB (a global cache keyed by blueprint kept
// about 85 MB).
func TestNoGrowthAcrossRecompiles(t *testing.T) {
	src, err := blueprints.FS.ReadFile("button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	event := []byte(`{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z",
		"context":{"consent":{"advertising":true}},"properties":{"order_id":"o-1","total":"25.50","currency":"USD",
		"products":[{"product_id":"p-1","price":12.75,"quantity":2}]}}`)
	cycles := 2000
	if raceEnabled || testing.Short() {
		// Enough to see a leak of ~40 KB per cycle well above the bound,
		// at a cost the race detector can afford.
		cycles = 400
	}
	cycle := func() {
		bp, ds := engine.Compile("button.yaml", src)
		if bp == nil {
			t.Fatalf("button does not compile: %v", ds)
		}
		in, err := runtime.Bind(bp, "retail", map[string]any{"application_id": "app-abc123", "api_key": "sk-leak-1"})
		if err != nil {
			t.Fatal(err)
		}
		if res := in.Evaluate(event); res.Outcome != runtime.Deliver {
			t.Fatalf("outcome %s: %s", res.Outcome, res.Message)
		}
		in.Evaluate([]byte(`{"type":"track","event":"Some Other Event"}`))
	}
	cycle() // warm: pools, lazily built package state
	before := heapAfterGC()
	for range cycles {
		cycle()
	}
	after := heapAfterGC()
	grew := int64(after) - int64(before)
	t.Logf("heap %d -> %d bytes over %d cycles (%+d)", before, after, cycles, grew)
	if grew > 5<<20 {
		t.Errorf("the heap grew by %.1f MB over %d compile-and-bind cycles; the bound is 5 MB", float64(grew)/(1<<20), cycles)
	}
}

func heapAfterGC() uint64 {
	var ms goruntime.MemStats
	for range 3 {
		goruntime.GC()
	}
	goruntime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
