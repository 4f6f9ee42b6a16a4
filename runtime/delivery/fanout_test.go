package delivery_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// TestEvaluateEachAsEvaluate: what the pipeline and the Kafka processor
// record for each integration of an event, evaluated all at once, is what
// that integration's Evaluate decides alone, for events Valid accepts and
// for those it refuses (malformed, empty, too deep or too large for
// Valid's defaults but not for an integration bound with larger limits,
// too large for one bound with a smaller one), with tenants sharing a
// variant interleaved with others.
func TestEvaluateEachAsEvaluate(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	var ins []*runtime.Integration
	for _, c := range []struct {
		variant, key string
		opts         []runtime.Option
	}{
		{"retail", "sk-one", nil},
		{"default", "sk-two", nil},
		{"retail", "sk-three", nil},
		{"retail", "sk-four", []runtime.Option{runtime.WithMaxDepth(200), runtime.WithMaxEventSize(4 << 20)}},
		{"retail", "sk-five", []runtime.Option{runtime.WithMaxDepth(3), runtime.WithMaxEventSize(300)}},
		{"retail", "sk-one", nil},
	} {
		in, err := runtime.Bind(bp, c.variant, map[string]any{"application_id": "app-abc123", "api_key": c.key}, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	order := `{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},` +
		`"properties":{"order_id":"sk-one","total":25.5,"currency":"USD","products":[{"product_id":"p-1","price":25.5,"quantity":1}]}}`
	for _, ev := range []string{
		order,
		`{"type":"track","event":"Product Added","context":{"consent":{"advertising":true}},"properties":{"sku":"s"}}`,
		`{"type":"track","event":"sk-three"}`,
		`{"event":"Order Completed","context":{"consent":{"advertising":true,"advertising":false}}}`,
		`{"event":"Order Completed"`,
		``,
		`[]`,
		"{\"event\":\"\xff\"}",
		`{"event":"Order Completed","a":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		`{"event":"Order Completed","pad":"` + strings.Repeat("x", runtime.DefaultMaxEventSize) + `"}`,
	} {
		got := delivery.EvaluateEach(nil, []byte(ev), ins)
		for i, in := range ins {
			want := in.Evaluate([]byte(ev))
			if !reflect.DeepEqual(want, got[i]) {
				t.Errorf("integration %d, event %.100q:\nEvaluate:     %v %s %q\nEvaluateEach: %v %s %q", i, ev, want.Outcome, want.Reason, want.Message, got[i].Outcome, got[i].Reason, got[i].Message)
			}
		}
	}
}
