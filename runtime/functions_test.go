package runtime_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Every helper's documented example holds: each runs as a filter, and
// the event is delivered only when it is true.
func TestFunctionExamplesHold(t *testing.T) {
	for _, f := range compiler.Functions() {
		t.Run(f.Name, func(t *testing.T) {
			src := demoHead + "      a: {const: 1}\nevents:\n  E:\n    vendor_event: e\n    request: r\n    filter: '" + strings.ReplaceAll(f.Example, "'", "''") + "'\n"
			in := bindInline(t, src)
			if res := in.Evaluate([]byte(`{"type":"track","event":"E"}`)); res.Outcome != runtime.Deliver {
				t.Errorf("%s: %s %s: %s", f.Example, res.Outcome, res.Reason, res.Message)
			}
		})
	}
}
