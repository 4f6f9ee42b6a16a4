package runtime_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// An event whose name the variant does not map stops resolving paths as
// soon as its name is read, but it is still validated to the end (a
// malformed event is invalid_event before it is skipped), its type is
// still read, and a duplicate key the blueprint reads refuses it when it
// is in the top-level object (type and event decide everything else);
// below, only a mapped event is refused for one.
func TestUnmappedEventGate(t *testing.T) {
	in := robustBind(t, "default", "sk-test-key")
	cases := []struct {
		name, event     string
		outcome         runtime.Outcome
		reason, message string
	}{
		{"unmapped then malformed", `{"event":"Product Viewed","properties":{"a":[1,2,}}`, runtime.Reject, runtime.ReasonInvalidEvent, "not well-formed"},
		{"unmapped then too deep", `{"event":"Product Viewed","properties":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, runtime.Reject, runtime.ReasonInvalidEvent, "deeper than 64"},
		{"unmapped then trailing data", `{"event":"Product Viewed"} {}`, runtime.Reject, runtime.ReasonInvalidEvent, "not well-formed"},
		{"unmapped then bad UTF-8", "{\"event\":\"Product Viewed\",\"x\":\"\xff\"}", runtime.Reject, runtime.ReasonInvalidEvent, "UTF-8"},
		{"type after an unmapped name", `{"event":"Product Viewed","type":"page"}`, runtime.Skip, runtime.ReasonEventNotMapped, `"page" event`},
		{"type after a mapped name", `{"event":"Order Completed","type":"identify"}`, runtime.Skip, runtime.ReasonEventNotMapped, `"identify" event`},
		{"duplicate names: unmapped first", `{"event":"Product Viewed","event":"Order Completed",` + robustEnvelope + `,"properties":{` + robustGoodOrder + `}}`, runtime.Reject, runtime.ReasonInvalidEvent, `the key "event" twice`},
		{"duplicate names: mapped first", `{"event":"Order Completed","event":"Product Viewed",` + robustEnvelope + `,"properties":{` + robustGoodOrder + `}}`, runtime.Reject, runtime.ReasonInvalidEvent, `the key "event" twice`},
		{"unmapped then a duplicate key below the top level", `{"event":"Product Viewed","properties":{"a":1,"b":{"c":1,"c":2}}}`, runtime.Skip, runtime.ReasonEventNotMapped, `"Product Viewed"`},
		{"mapped then a duplicate key below the top level", `{"event":"Order Completed","properties":{"a":1,"order_id":"a","order_id":"b"}}`, runtime.Reject, runtime.ReasonInvalidEvent, `the key "properties.order_id" twice`},
		{"a duplicate key below the top level, then a mapped name", `{"properties":{"a":1,"order_id":"a","order_id":"b"},"event":"Order Completed"}`, runtime.Reject, runtime.ReasonInvalidEvent, `the key "properties.order_id" twice`},
		{"escaped mapped name", `{"event":"Order\u0020Completed",` + robustEnvelope + `,"properties":{` + robustGoodOrder + `}}`, runtime.Deliver, "", ""},
		{"name not text", `{"event":{"name":"Order Completed"},` + robustEnvelope + `,"properties":{` + robustGoodOrder + `}}`, runtime.Skip, runtime.ReasonEventNotMapped, "no event name"},
		{"name in a nested object only", `{"properties":{"event":"Order Completed"},` + robustEnvelope + `}`, runtime.Skip, runtime.ReasonEventNotMapped, "no event name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := in.Evaluate([]byte(c.event))
			if res.Outcome != c.outcome || res.Reason != c.reason || !strings.Contains(res.Message, c.message) {
				t.Errorf("got %s %s %q, want %s %s containing %q", res.Outcome, res.Reason, res.Message, c.outcome, c.reason, c.message)
			}
		})
	}
}
