package runtime_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// selectorsBlueprint maps events by name and by selector: page and screen
// events by name or any, identify events, a track catch-all whose vendor
// event is computed, and every other type.
const selectorsBlueprint = `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      name: {value: vendor_event, required: true}
      type: {value: event_type}
      source: {value: source_event}
      order: {from: properties.order_id}
events:
  Order Completed: {vendor_event: purchase, request: r}
variants:
  default:
    name: Default
    events:
      page:Home: {vendor_event: home_view, request: r}
      page:*: {vendor_event: page_view, request: r}
      screen:*: {vendor_event: screen_view, request: r}
      identify:*: {vendor_event: identify, request: r}
      "*":
        vendor_event: {expr: 'values.source_event == nil ? nil : lower(replace(values.source_event, " ", "_"))'}
        request: r
  everything:
    name: Everything
    events:
      "*:*": {vendor_event: anything, request: r}
      "*":
        vendor_event: {expr: 'values.source_event == nil ? nil : lower(replace(values.source_event, " ", "_"))'}
        request: r
  names:
    name: Names only
`

func TestEventSelectors(t *testing.T) {
	in := bindInline(t, selectorsBlueprint)
	everything, err := runtime.Bind(in.Blueprint(), "everything", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, event string
		in          *runtime.Integration
		outcome     runtime.Outcome
		reason      string
		body        string // the expected body, or ""
		vendor      string // Result.VendorEvent
		resEvent    string // Result.Event
	}{
		{"track by name", `{"type":"track","event":"order_completed","properties":{"order_id":"o-1"}}`, in, runtime.Deliver, "",
			`{"name":"purchase","type":"track","source":"order_completed","order":"o-1"}`, "purchase", "order_completed"},
		{"no type is track", `{"event":"Order Completed"}`, in, runtime.Deliver, "", `{"name":"purchase","type":"track","source":"Order Completed"}`, "purchase", "Order Completed"},
		{"catch-all computes the vendor event", `{"type":"track","event":"Signed Up","properties":{"order_id":"x"}}`, in, runtime.Deliver, "",
			`{"name":"signed_up","type":"track","source":"Signed Up","order":"x"}`, "signed_up", "Signed Up"},
		{"catch-all without a name: the computed vendor event is missing", `{"type":"track"}`, in, runtime.Reject, runtime.ReasonMissingRequiredField, "", "", ""},
		{"page by name", `{"type":"page","name":" home "}`, in, runtime.Deliver, "", `{"name":"home_view","type":"page","source":" home "}`, "home_view", " home "},
		{"page by type", `{"type":"Page","name":"About"}`, in, runtime.Deliver, "", `{"name":"page_view","type":"page","source":"About"}`, "page_view", "About"},
		{"page without a name", `{"type":"page","properties":{"order_id":"p"}}`, in, runtime.Deliver, "", `{"name":"page_view","type":"page","order":"p"}`, "page_view", "page"},
		{"page whose event key names nothing mapped is still read", `{"event":"Nope","type":"page","properties":{"order_id":"p"}}`, in, runtime.Deliver, "", `{"name":"page_view","type":"page","order":"p"}`, "page_view", "page"},
		{"screen", `{"type":"screen","name":"Cart"}`, in, runtime.Deliver, "", `{"name":"screen_view","type":"screen","source":"Cart"}`, "screen_view", "Cart"},
		{"identify", `{"type":"identify","userId":"u"}`, in, runtime.Deliver, "", `{"name":"identify","type":"identify"}`, "identify", "identify"},
		{"group is not mapped", `{"type":"group"}`, in, runtime.Skip, runtime.ReasonEventNotMapped, "", "", ""},
		{"a type that is not text is not mapped", `{"type":5}`, in, runtime.Skip, runtime.ReasonEventNotMapped, "", "", ""},
		{"every type: group", `{"type":"group"}`, everything, runtime.Deliver, "", `{"name":"anything","type":"group"}`, "anything", "group"},
		{"every type: alias", `{"type":"alias"}`, everything, runtime.Deliver, "", `{"name":"anything","type":"alias"}`, "anything", "alias"},
		{"every type: a type that is not text", `{"type":[1]}`, everything, runtime.Deliver, "", `{"name":"anything"}`, "anything", ""},
		{"every type: the track catch-all comes first", `{"type":"track","event":"X Y"}`, everything, runtime.Deliver, "", `{"name":"x_y","type":"track","source":"X Y"}`, "x_y", "X Y"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := c.in.Evaluate([]byte(c.event))
			if res.Outcome != c.outcome || res.Reason != c.reason {
				t.Fatalf("%s %s (%s), want %s %s", res.Outcome, res.Reason, res.Message, c.outcome, c.reason)
			}
			if res.VendorEvent != c.vendor || res.Event != c.resEvent {
				t.Errorf("Event %q VendorEvent %q, want %q %q", res.Event, res.VendorEvent, c.resEvent, c.vendor)
			}
			if c.body == "" {
				return
			}
			var got, want any
			if err := json.Unmarshal(res.Requests[0].Body, &got); err != nil {
				t.Fatal(err)
			}
			json.Unmarshal([]byte(c.body), &want)
			if g, _ := json.Marshal(got); string(g) != func() string { w, _ := json.Marshal(want); return string(w) }() {
				t.Errorf("body %s, want %s", res.Requests[0].Body, c.body)
			}
		})
	}
	// A variant that maps track names only skips other types as before.
	names, err := runtime.Bind(in.Blueprint(), "names", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := names.Evaluate([]byte(`{"type":"page","name":"About"}`)); res.Outcome != runtime.Skip || !strings.Contains(res.Message, `"page" event`) {
		t.Errorf("names-only variant: %s %s", res.Outcome, res.Message)
	}
}

// A computed vendor event is a string when its spec names no type, so a
// pattern applies to it as written in docs/authoring.md#events
// ({expr: ..., pattern: ...}, without "type: string"); a name the pattern
// refuses is invalid, named by the field that carries it.
func TestComputedVendorEventPattern(t *testing.T) {
	src := strings.Replace(selectorsBlueprint, `        vendor_event: {expr: 'values.source_event == nil ? nil : lower(replace(values.source_event, " ", "_"))'}
        request: r
  everything:`, `        vendor_event: {expr: 'snake_case(values.source_event)', pattern: '^[a-z][a-z0-9_]{0,39}$'}
        request: r
  everything:`, 1)
	if src == selectorsBlueprint {
		t.Fatal("the catch-all of selectorsBlueprint changed: update this test")
	}
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"type":"track","event":"Checkout Step-2 Viewed"}`))
	if res.Outcome != runtime.Deliver || res.VendorEvent != "checkout_step_2_viewed" {
		t.Errorf("a name the pattern takes: %v", res)
	}
	res = in.Evaluate([]byte(`{"type":"track","event":"2 Checkout"}`))
	if res.Outcome != runtime.Reject || res.Reason != "invalid_field" || strings.Join(res.Fields, ",") != "name" {
		t.Errorf("a name the pattern refuses: %v", res)
	}
}
