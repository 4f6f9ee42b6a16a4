package runtime_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Finding 6: an event with the same key twice in one object is refused,
// naming the path: JavaScript, Python and Go's encoding/json read the last
// one, gjson and this scanner the first; the engine must never read a
// different value than the platform, nor two values for one key.
func TestIssue11DuplicateKeys(t *testing.T) {
	in := robustBind(t, "retail", robustAPIKey)
	props := `"properties":{` + robustGoodOrder + `}`
	head := `{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z",`
	var wide, wideDup strings.Builder
	for i := range 40 {
		fmt.Fprintf(&wide, `"key_%03d":%d,`, i, i)
	}
	wideDup.WriteString(wide.String())
	wideDup.WriteString(`"key_017":0,`)
	for _, tt := range []struct {
		name, event, path string
	}{
		{"consent granted then denied", head + `"context":{"consent":{"advertising":true,"advertising":false}},` + props + `}`, "context.consent.advertising"},
		{"consent denied then granted", head + `"context":{"consent":{"advertising":false,"advertising":true}},` + props + `}`, "context.consent.advertising"},
		{"the same key written with an escape", head + `"context":{"consent":{"advertising":true,"advertis\u0069ng":false}},` + props + `}`, "context.consent.advertising"},
		{"both written with escapes", head + `"context":{"consent":{"\u0061dvertising":true,"advertis\u0069ng":false}},` + props + `}`, "context.consent.advertising"},
		{"two consent objects", head + `"context":{"consent":{"advertising":true},"consent":{"advertising":false}},` + props + `}`, "context.consent"},
		{"two event names", `{"type":"track","event":"Order Completed","event":"Product Added","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},` + props + `}`, "event"},
		{"in an array element", head + `"context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":1,"currency":"USD","products":[{"sku":"a","price":1},{"sku":"b","price":1,"price":2}]}}`, "properties.products.1.price"},
		{"in an object nobody reads", head + `"context":{"consent":{"advertising":true}},"properties":{` + robustGoodOrder + `,"extra":{"x":[{"a":1,"b":2,"a":3}]}}}`, "properties.extra.x.0.a"},
		{"in a wide object", head + `"context":{"consent":{"advertising":true}},"properties":{` + wideDup.String() + robustGoodOrder + `}}`, "properties.key_017"},
		{"top level of an event that is not mapped", `{"type":"track","event":"Page Viewed","context":{"x":1},"context":{}}`, "context"},
		{"the name of an event that is not mapped", `{"type":"track","event":"Page Viewed","event":"Order Completed"}`, "event"},
		{"type", `{"type":"track","type":"identify","event":"Order Completed","context":{"consent":{"advertising":true}},` + props + `}`, "type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := in.Evaluate([]byte(tt.event))
			if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent || !strings.Contains(res.Message, tt.path) {
				t.Errorf("got %s %s %q, want reject invalid_event naming %s", res.Outcome, res.Reason, res.Message, tt.path)
			}
		})
	}
	// An event the variant does not map is skipped whatever it holds
	// below its top level (nothing of it is read): the cost of the check
	// is not paid by the commonest events, whichever order their keys
	// come in.
	for _, ev := range []string{
		`{"type":"track","event":"Page Viewed","context":{"x":1,"x":2}}`,
		`{"context":{"x":1,"x":2},"type":"track","event":"Page Viewed"}`,
		`{"type":"identify","context":{"x":1,"x":2},"event":"Order Completed"}`,
	} {
		if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Skip || res.Reason != runtime.ReasonEventNotMapped {
			t.Errorf("%s: %s %s %s", ev, res.Outcome, res.Reason, res.Message)
		}
	}
	// Keys alike but not the same are not duplicates.
	for _, ev := range []string{
		head + `"context":{"consent":{"advertising":true,"advertisinG":false,"advertisin":1,"advertising_":2}},` + props + `}`,
		head + `"context":{"consent":{"advertising":true}},"properties":{` + wide.String() + robustGoodOrder + `}}`,
		head + `"context":{"consent":{"advertising":true}},"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":1}],` + props + `}`,
		head + `"context":{"consent":{"advertising":true}},"s":"\"k\":1,\"k\":2",` + props + `}`,
	} {
		if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Deliver {
			t.Errorf("%s: %s %s %s", ev, res.Outcome, res.Reason, res.Message)
		}
	}
}

// Finding 6, every reader: a path (scanner slot), a wildcard path (gjson)
// and an expression reading the whole object (encoding/json semantics)
// never see a duplicated key.
func TestIssue11DuplicateKeysEveryReader(t *testing.T) {
	src := demoHead + `      slot: {from: properties.a}
      wild: {from: properties.a*}
      whole: {expr: 'event.properties'}
      item: {from: properties.list, items: {v: {from: a}, all: {expr: 'item'}}}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	ok := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":1,"list":[{"a":2}]}}`))
	if ok.Outcome != runtime.Deliver {
		t.Fatalf("%s %s %s", ok.Outcome, ok.Reason, ok.Message)
	}
	for _, ev := range []string{
		`{"type":"track","event":"E","properties":{"a":1,"a":2,"list":[{"a":2}]}}`,
		`{"type":"track","event":"E","properties":{"a":1,"list":[{"a":2,"a":3}]}}`,
		`{"type":"track","event":"E","properties":{"a":1,"list":[{"a":2}],"list":[]}}`,
	} {
		if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent {
			t.Errorf("%s: %s %s %s", ev, res.Outcome, res.Reason, res.Message)
		}
	}
}
