package runtime_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Finding 6: an event holding a key the blueprint reads twice in one
// object is refused, naming the path: JavaScript, Python and Go's
// encoding/json read the last one, gjson and this scanner the first; the
// engine must never read another value than the platform, nor two values
// for one key.
func TestIssue11DuplicateKeys(t *testing.T) {
	in := robustBind(t, "retail", robustAPIKey)
	props := `"properties":{` + robustGoodOrder + `}`
	head := `{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z",`
	var wide strings.Builder
	for i := range 40 {
		fmt.Fprintf(&wide, `"key_%03d":%d,`, i, i)
	}
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
		{"in a wide object", head + `"context":{"consent":{"advertising":true}},"properties":{` + wide.String() + robustGoodOrder + `,"order_id":"other"}}`, "properties.order_id"},
		{"top level of an event that is not mapped", `{"type":"track","event":"Page Viewed","context":{"x":1},"context":{}}`, "context"},
		{"the name of an event that is not mapped", `{"type":"track","event":"Page Viewed","event":"Order Completed"}`, "event"},
		{"type", `{"type":"track","type":"identify","event":"Order Completed","context":{"consent":{"advertising":true}},` + props + `}`, "type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := in.Evaluate([]byte(tt.event))
			if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent || !strings.Contains(res.Message, `"`+tt.path+`"`) {
				t.Errorf("got %s %s %q, want reject invalid_event naming %s", res.Outcome, res.Reason, res.Message, tt.path)
			}
		})
	}
	// An event the variant does not map is skipped whatever it holds
	// below its top level (nothing of it is read), whichever order its
	// keys come in.
	for _, ev := range []string{
		`{"type":"track","event":"Page Viewed","context":{"consent":{"advertising":true,"advertising":false}}}`,
		`{"context":{"consent":{"advertising":true,"advertising":false}},"type":"track","event":"Page Viewed"}`,
		`{"type":"identify","context":{"consent":{"advertising":true,"advertising":false}},"event":"Order Completed"}`,
	} {
		if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Skip || res.Reason != runtime.ReasonEventNotMapped {
			t.Errorf("%s: %s %s %s", ev, res.Outcome, res.Reason, res.Message)
		}
	}
	// Not duplicates: keys alike but not the same, the same key in two
	// objects, and keys nothing here reads (the platform and the vendor
	// read them alike; Button reads no object whole).
	for _, ev := range []string{
		head + `"context":{"consent":{"advertising":true,"advertisinG":false,"advertisin":1,"advertising_":2}},` + props + `}`,
		head + `"context":{"consent":{"advertising":true}},"properties":{` + wide.String() + robustGoodOrder + `}}`,
		head + `"context":{"consent":{"advertising":true}},"a":{"k":1},"b":{"k":1},"c":[{"k":1},{"k":1}],` + props + `}`,
		head + `"context":{"consent":{"advertising":true}},"s":"\"k\":1,\"k\":2",` + props + `}`,
		head + `"context":{"consent":{"advertising":true,"functional":true,"functional":false}},` + props + `}`,
		head + `"context":{"consent":{"advertising":true}},"properties":{` + robustGoodOrder + `,"extra":{"x":[{"a":1,"b":2,"a":3}]},"extra2":1,"extra2":2}}`,
	} {
		if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Deliver {
			t.Errorf("%s: %s %s %s", ev, res.Outcome, res.Reason, res.Message)
		}
	}
}

// Finding 6, every reader: whatever reads a key here, a path (the scan),
// a wildcard path (gjson), an expression reading an object or the event
// whole (gjson's Value: first key wins), items scanned again, a value
// passed on as it is, the event is refused when the key is twice; keys
// nothing reads are left alone.
func TestIssue11DuplicateKeysEveryReader(t *testing.T) {
	var wide strings.Builder
	for i := range 40 {
		fmt.Fprintf(&wide, `"w%02d":%d,`, i, i)
	}
	var many strings.Builder // 40 paths below properties: more than a frame has bits for
	for i := range 40 {
		fmt.Fprintf(&many, "      f%02d: {from: properties.k%02d}\n", i, i)
	}
	for _, tt := range []struct {
		name, fields string
		refused      []string // events refused (the properties object)
		kept         []string // events delivered
	}{
		{"paths below a node of 40 keys", strings.TrimSuffix(many.String(), "\n"),
			[]string{`{"k07":1,"k07":2}`, `{"k39":1,"x":1,"k39":2}`, `{"x":1,"x":2}`},
			[]string{`{"k07":1,"k08":2}`}},
		{"a path", `      a: {from: properties.a}`,
			[]string{`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`},
			[]string{`{"a":1,"b":1,"b":2}`, `{"a":1,"o":{"a":1,"a":2}}`}},
		{"a wildcard path", `      a: {from: properties.a*}`,
			[]string{`{"ab":1,"ab":2}`, `{"x":{"y":1,"y":2}}`},
			[]string{`{"ab":1}`}},
		{"an expression reading an object", `      a: {expr: 'event.properties.o'}`,
			[]string{`{"o":{"k":1,"k":2}}`, `{"o":{"k":{"j":1,"j":2}}}`, `{"o":{` + wide.String() + `"w07":0}}`, `{"o":1,"o":2}`},
			[]string{`{"o":{"k":1},"x":{"y":1,"y":2}}`, `{"o":{` + wide.String() + `"k":0}}`}},
		{"an expression reading the event", `      a: {expr: 'len(event)'}`,
			[]string{`{"x":{"y":1,"y":2}}`},
			[]string{`{"x":{"y":1}}`}},
		// Passed on as it is: the vendor reads it as the platform does.
		{"an any field nothing reads", `      a: {from: properties.o, type: any}`,
			nil,
			[]string{`{"o":{"k":1,"k":2}}`, `{"o":[{"k":1,"k":2}]}`}},
		{"an any field an expression reads", "      a: {from: properties.o, type: any}\n      b: {expr: 'fields.a'}",
			[]string{`{"o":{"k":1,"k":2}}`, `{"o":[{"k":1,"k":2}]}`},
			[]string{`{"o":{"k":1},"p":{"k":1,"k":2}}`}},
		{"a value an expression reads", "      a: {expr: 'values.v'}",
			[]string{`{"o":{"k":1,"k":2}}`},
			[]string{`{"o":{"k":1},"p":{"k":1,"k":2}}`}},
		{"items and an expression reading each item", `      a: {from: properties.list, items: {v: {from: a}, all: {expr: 'item'}}}`,
			[]string{`{"list":[{"a":1},{"b":1,"b":2}]}`, `{"list":[{"a":1,"a":2}]}`, `{"list":[],"list":[{"a":1}]}`},
			[]string{`{"list":[{"a":1}],"x":{"y":1,"y":2}}`}},
		{"items of two objects (scanned again)", "      a: {from: properties.list, items: {v: {from: a}}}\n      b: {from: properties.list, items: {w: {from: b}}}",
			[]string{`{"list":[{"a":1,"a":2}]}`, `{"list":[{"c":1,"c":2}]}`},
			[]string{`{"list":[{"a":1}],"x":{"y":1,"y":2}}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(demoHead, "requests:", "values:\n  v: {from: properties.o}\nrequests:", 1)
			in := bindInline(t, src+tt.fields+"\nevents:\n  E: {vendor_event: e, request: r}\n")
			for _, props := range tt.refused {
				ev := `{"type":"track","event":"E","properties":` + props + `}`
				if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent || !strings.Contains(res.Message, "twice") {
					t.Errorf("%s: %s %s %s, want it refused", ev, res.Outcome, res.Reason, res.Message)
				}
			}
			for _, props := range tt.kept {
				ev := `{"type":"track","event":"E","properties":` + props + `}`
				if res := in.Evaluate([]byte(ev)); res.Outcome == runtime.Reject && res.Reason == runtime.ReasonInvalidEvent {
					t.Errorf("%s: %s %s %s, want it read", ev, res.Outcome, res.Reason, res.Message)
				}
			}
		})
	}
}

// Finding 6: items past the scan's recording budget are scanned again, by
// key: their keys are all checked.
func TestIssue11DuplicateKeysPastTheBudget(t *testing.T) {
	defer runtime.SetWindowBudget(64)()
	in := robustBind(t, "retail", robustAPIKey)
	items := strings.Repeat(`{"sku":"s","price":1},`, 50)
	ev := `{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":1,"currency":"USD","products":[` + items + `{"sku":"s","price":1,"price":2}]}}`
	if res := in.Evaluate([]byte(ev)); res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent || !strings.Contains(res.Message, `"properties.products.50.price"`) {
		t.Errorf("%s %s %s", res.Outcome, res.Reason, res.Message)
	}
	ok := strings.Replace(ev, `"price":1,"price":2`, `"price":1`, 1)
	if res := in.Evaluate([]byte(ok)); res.Outcome != runtime.Deliver {
		t.Errorf("without the duplicate: %s %s %s", res.Outcome, res.Reason, res.Message)
	}
}
