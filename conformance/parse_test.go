package conformance_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/conformance"
)

// A vector file in error is reported with positions and coded messages,
// and none of its cases runs (Parse returns no file).
func TestParseErrors(t *testing.T) {
	head := "blueprint: button\nconfig: {application_id: app-abc123def456, api_key: sk-test-123}\ncases:\n"
	ok := "- name: ok\n  event: {type: track}\n  expect: {outcome: skip, reason: event_not_mapped}\n"
	for _, tt := range []struct {
		name, src, want string
	}{
		{"unknown case key", head + ok + "- name: x\n  evnt: {}\n  expect: {outcome: deliver}\n", "8:3: error unknown_key"},
		{"event and event_json", head + ok + "- name: x\n  event_json: '{\"type\":'\n  event: {type: track}\n  expect: {outcome: skip, reason: event_not_mapped}\n", `8:3: error invalid_value: case "x" has both event and event_json (line 9)`},
		{"version with blueprint_file", "blueprint_file: ./x.yaml\nversion: 9.9.9\ncases:\n" + ok, "2:1: error invalid_value: version applies to a catalog blueprint"},
		{"blueprint and blueprint_file", "blueprint: button\nblueprint_file: ./x.yaml\ncases:\n" + ok, "error"},
		{"no event", head + ok + "- name: x\n  expect: {outcome: deliver}\n", `missing_key: case "x" needs event or event_json`},
		{"skip without reason", head + ok + "- name: x\n  event: {}\n  expect: {outcome: skip}\n", `case "x" expects skip and needs a reason`},
		{"requests on a skip", head + ok + "- name: x\n  event: {}\n  expect: {outcome: skip, reason: filtered, requests: []}\n", "requests apply to deliver only"},
		{"duplicate case", head + ok + ok, `duplicate_case: case "ok" is already defined`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f, ds := conformance.Parse("v.yaml", []byte(tt.src), nil)
			if !ds.HasErrors() || !strings.Contains(ds.Error(), tt.want) {
				t.Errorf("diagnostics:\n%s\nwant %q", ds, tt.want)
			}
			if f != nil {
				t.Errorf("a file in error was returned: its %d cases would run", len(f.Cases))
			}
		})
	}
	if f, ds := conformance.Parse("v.yaml", []byte(head+ok), nil); f == nil || ds.HasErrors() {
		t.Fatalf("a good file: %v", ds)
	}
}

// DESIGN §4 writes header values unquoted (Content-Type: application/json):
// an unquoted number or boolean is a header value too, compared as written.
func TestParseUnquotedHeaderValues(t *testing.T) {
	src := `blueprint: webhook
config: {url: 'https://hooks.example.com/events', authentication: none}
cases:
- name: x
  event: {type: track, event: X}
  expect:
    outcome: deliver
    requests:
    - method: POST
      url: https://hooks.example.com/events
      headers: {Content-Type: application/json, X-Timestamp: 1772029800123, X-Rate: 1.50, X-On: true, X-Gone: null, X-Also-Gone: ~}
`
	f, ds := conformance.Parse("v.yaml", []byte(src), nil)
	if f == nil || ds.HasErrors() {
		t.Fatalf("unquoted header values refused: %v", ds)
	}
	got := map[string]string{}
	for _, h := range f.Cases[0].Expect.Requests[0].Headers {
		v := h.Value
		if h.Absent {
			v = "<absent>"
		}
		got[h.Name] = v
	}
	want := map[string]string{"Content-Type": "application/json", "X-Timestamp": "1772029800123", "X-Rate": "1.50", "X-On": "true", "X-Gone": "<absent>", "X-Also-Gone": "<absent>"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
}

// A case's name and event_json may be written unquoted too: a number or
// boolean there is its text as written.
func TestParseUnquotedNameAndEventJSON(t *testing.T) {
	src := "blueprint: button\ncases:\n- name: 42\n  event_json: 1.50\n  expect: {outcome: reject, reason: invalid_event}\n"
	f, ds := conformance.Parse("v.yaml", []byte(src), nil)
	if f == nil || ds.HasErrors() {
		t.Fatalf("refused: %v", ds)
	}
	if c := f.Cases[0]; c.Name != "42" || string(c.Event) != "1.50" {
		t.Errorf("name %q, event %q", c.Name, c.Event)
	}
}
