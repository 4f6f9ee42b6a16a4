package runtime_test

// Regression tests for issue #11 (findings 2, 6, 9 and 11): each failed on
// the code before its fix.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/runtime"
)

// compileOverlay compiles a blueprint (usually an overlay of button@0.1.0)
// against the embedded catalog; it returns nil and the diagnostics when it
// does not compile.
func compileOverlay(t *testing.T, src string) (*engine.Blueprint, string) {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds := engine.Compile("overlay.yaml", []byte(src), engine.WithCatalog(cat))
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String() + "\n")
	}
	return bp, b.String()
}

func bindOverlay(t *testing.T, bp *engine.Blueprint) *runtime.Integration {
	t.Helper()
	in, err := runtime.Bind(bp, "default", map[string]any{"application_id": robustAppID, "api_key": robustAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// orderWith is a valid Order Completed whose context holds region (raw
// JSON, or "" for none) and whose message_id is messageID (raw JSON, or ""
// for none).
func orderWith(region, messageID string) []byte {
	ctx := `"consent":{"advertising":true}`
	if region != "" {
		ctx = `"region":` + region + `,` + ctx
	}
	mid := ""
	if messageID != "" {
		mid = `"message_id":` + messageID + `,`
	}
	return []byte(`{"type":"track","event":"Order Completed",` + mid + `"timestamp":"2026-11-24T10:15:30Z","context":{` + ctx + `},"properties":{` + robustGoodOrder + `}}`)
}

// The overlay of the issue: event data picks the host label.
const regionOverlay = `extends: button@0.1.0
hosts: [api.usebutton.com, "*.api.usebutton.com", "*.mobileapi.usebutton.com"]
values:
  region: {from: context.region%s}
requests:
  order:
    url: https://{values.region}.api.usebutton.com/v1/order
`

// Finding 2 (b): event data in a URL host is refused when the blueprint is
// compiled, unless its value declares what it may be.
func TestIssue11HostFromEventRefusedAtCompile(t *testing.T) {
	bp, ds := compileOverlay(t, fmt.Sprintf(regionOverlay, ""))
	if bp != nil || !strings.Contains(ds, "error host_from_event") {
		t.Fatalf("the issue's overlay compiles (or not with host_from_event):\n%s", ds)
	}
	// A pattern that lets other characters than a DNS label's is no
	// declaration.
	bp, ds = compileOverlay(t, fmt.Sprintf(regionOverlay, ", type: string, pattern: '[a-z.]+'"))
	if bp != nil || !strings.Contains(ds, "error host_from_event") {
		t.Fatalf("a loose pattern is accepted:\n%s", ds)
	}
	// A value from config (no event data) needs no declaration.
	bp, ds = compileOverlay(t, `extends: button@0.1.0
hosts: [api.usebutton.com, "*.api.usebutton.com", "*.mobileapi.usebutton.com"]
values:
  region: {config: application_id}
requests:
  order:
    url: https://{values.region}.api.usebutton.com/v1/order
`)
	if bp == nil {
		t.Fatalf("a config value in the host is refused:\n%s", ds)
	}
}

// Finding 2 (a): at run time, the text of a host placeholder must be one
// DNS label, whatever the blueprint declared; else invalid_field naming
// the value, and no request.
func TestIssue11HostLabelFromEvent(t *testing.T) {
	bp, ds := compileOverlay(t, fmt.Sprintf(regionOverlay, ", type: string, pattern: '[a-zA-Z0-9-]+'"))
	if bp == nil {
		t.Fatalf("a declared host value does not compile:\n%s", ds)
	}
	in := bindOverlay(t, bp)
	check := func(t *testing.T, in *runtime.Integration, region string, wantHost string) {
		t.Helper()
		raw, _ := json.Marshal(region)
		res := in.Evaluate(orderWith(string(raw), ""))
		if wantHost != "" {
			if res.Outcome != runtime.Deliver {
				t.Fatalf("region %q: %s %s %v %s", region, res.Outcome, res.Reason, res.Fields, res.Message)
			}
			u, err := url.Parse(res.Requests[0].URL)
			if err != nil || u.Hostname() != wantHost {
				t.Fatalf("region %q: URL %s, want host %s", region, res.Requests[0].URL, wantHost)
			}
			return
		}
		if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || strings.Join(res.Fields, ",") != "region" {
			var to string
			if len(res.Requests) > 0 {
				to = " to " + res.Requests[0].URL
			}
			t.Errorf("region %q: %s %s %v%s, want reject invalid_field [region]", region, res.Outcome, res.Reason, res.Fields, to)
		}
	}
	check(t, in, "eu-west", "eu-west.api.usebutton.com")
	check(t, in, "EU", "EU.api.usebutton.com")
	check(t, in, strings.Repeat("a", 63), strings.Repeat("a", 63)+".api.usebutton.com")
	// The pattern lets these through; a DNS label does not.
	for _, r := range []string{"-evil", "evil-", "-", strings.Repeat("a", 64)} {
		check(t, in, r, "")
	}

	// The same overlay with its declaration taken away after compiling:
	// the runtime alone stands between event data and the host.
	bp, _ = compileOverlay(t, fmt.Sprintf(regionOverlay, ", type: string, pattern: '[a-zA-Z0-9-]+'"))
	stripPatterns(bp)
	in = bindOverlay(t, bp)
	check(t, in, "eu-west", "eu-west.api.usebutton.com")
	for _, r := range []string{"evil.example#", "evil.example/", "a b", "a@evil.com", "evil.example?", `evil.example\`,
		"evil%2eexample", "evil.example:443", "80", "bücher", "..", ".", "a.b", "\u0430pi", "api\u3002evil"} {
		if r == "80" {
			check(t, in, r, "80.api.usebutton.com") // a label of digits is a label
			continue
		}
		check(t, in, r, "")
	}
	if res := in.Evaluate(orderWith(`""`, "")); res.Outcome != runtime.Reject || res.Reason != runtime.ReasonMissingRequiredField || strings.Join(res.Fields, ",") != "region" {
		t.Errorf("empty region: %s %s %v", res.Outcome, res.Reason, res.Fields)
	}
}

// stripPatterns removes the type rule (pattern) of every value of a
// compiled blueprint: what the compiler asked for is gone, and only the
// runtime's checks remain.
func stripPatterns(bp *engine.Blueprint) {
	for _, v := range compiler.Of(bp).Values {
		v.Type.Pattern = nil
	}
}

// Finding 2, the last line of defence: whatever a template wrote, the
// final URL's host is checked against the bound allow-list before a
// result is returned. Here the host placeholder is made to escape nothing
// (as a bug in assigning escapes would), so only that check remains.
func TestIssue11FinalHostChecked(t *testing.T) {
	bp, ds := compileOverlay(t, fmt.Sprintf(regionOverlay, ", type: string, pattern: '[a-zA-Z0-9-]+'"))
	if bp == nil {
		t.Fatal(ds)
	}
	stripPatterns(bp)
	for _, r := range compiler.Of(bp).Requests {
		for i := range r.URL.Parts {
			if r.URL.Parts[i].Escape == compiler.EscapeHost {
				r.URL.Parts[i].Escape = compiler.EscapeNone
			}
		}
	}
	in := bindOverlay(t, bp)
	for _, r := range []string{`"evil.example#"`, `"evil.example/"`, `"a@evil.com"`, `"evil.example?"`, `"evil.example:1"`} {
		res := in.Evaluate(orderWith(r, ""))
		if res.Outcome == runtime.Deliver {
			t.Errorf("region %s: delivered to %s", r, res.Requests[0].URL)
			continue
		}
		if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || strings.Join(res.Fields, ",") != "region" {
			t.Errorf("region %s: %s %s %v, want reject invalid_field [region]", r, res.Outcome, res.Reason, res.Fields)
		}
	}
	if res := in.Evaluate(orderWith(`"eu"`, "")); res.Outcome != runtime.Deliver {
		t.Errorf("a good region: %s %s %v %s", res.Outcome, res.Reason, res.Fields, res.Message)
	}
}

// Finding 9: a reject names at most 100 fields (then "and N more"), in
// Fields and in the message, and costs little more than the scan: a 1 MiB
// event of 524 000 products that are not objects used to give a 39 MB
// result.
func TestIssue11RejectFieldsCapped(t *testing.T) {
	in := robustBind(t, "retail", robustAPIKey)
	head := `{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":1,"currency":"USD","products":[`
	n := (runtime.DefaultMaxEventSize - len(head) - 4) / 2
	ev := head + strings.Repeat("1,", n) + `1]}}`
	if len(ev) > runtime.DefaultMaxEventSize {
		t.Fatalf("event of %d bytes", len(ev))
	}
	res := in.Evaluate([]byte(ev))
	if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField {
		t.Fatalf("%s %s", res.Outcome, res.Reason)
	}
	total := n + 1
	if len(res.Fields) != 101 || res.Fields[0] != "line_items[0]" || res.Fields[99] != "line_items[99]" ||
		res.Fields[100] != "and "+strconv.Itoa(total-100)+" more" {
		t.Errorf("%d fields: %.200q ... %q", len(res.Fields), res.Fields[:min(3, len(res.Fields))], res.Fields[len(res.Fields)-1])
	}
	if !strings.HasSuffix(res.Message, "; and "+strconv.Itoa(total-100)+" more") {
		t.Errorf("message ends %q", res.Message[max(0, len(res.Message)-100):])
	}
	js := res.AppendJSON(nil)
	if len(js) > 16<<10 || len(res.Message) > 16<<10 || len(res.String()) > 32<<10 {
		t.Errorf("result: %d bytes of JSON, message %d bytes, text %d bytes", len(js), len(res.Message), len(res.String()))
	}
	// Missing fields are capped the same way, and still win over invalid
	// ones found later.
	one := in.Evaluate([]byte(head + `{}]}}`))
	k := len(one.Fields) // missing fields per empty item
	if one.Reason != runtime.ReasonMissingRequiredField || k == 0 {
		t.Fatalf("one empty item: %s %v", one.Reason, one.Fields)
	}
	mixed := head + strings.Repeat(`{},`, 300) + strings.Repeat(`1,`, 300) + `1]}}`
	res = in.Evaluate([]byte(mixed))
	if res.Reason != runtime.ReasonMissingRequiredField || len(res.Fields) != 101 || res.Fields[100] != "and "+strconv.Itoa(300*k-100)+" more" {
		t.Errorf("mixed: %s %d fields, last %q", res.Reason, len(res.Fields), res.Fields[len(res.Fields)-1])
	}
	late := head + strings.Repeat(`1,`, 300) + `{}]}}`
	res = in.Evaluate([]byte(late))
	if res.Reason != runtime.ReasonMissingRequiredField || len(res.Fields) != k || !strings.HasPrefix(res.Fields[0], "line_items[300].") {
		t.Errorf("a missing field after 300 invalid items: %s %v", res.Reason, res.Fields)
	}
}

// The overlay of finding 11: event data in a path segment.
const messageIDOverlay = `extends: button@0.1.0
requests:
  order:
    url: https://api.usebutton.com/v1/order/{values.message_id}/confirm
`

// Finding 11: event data never makes a dot segment (. or ..) in a URL
// path, also once a server decodes percent-escapes or reads \ as /; such
// an event is invalid_field naming the value. A / in data is escaped.
func TestIssue11PathDotSegments(t *testing.T) {
	bp, ds := compileOverlay(t, messageIDOverlay)
	if bp == nil {
		t.Fatal(ds)
	}
	in := bindOverlay(t, bp)
	for _, tt := range []struct {
		id   string
		path string // "" for a reject
	}{
		{"m-1", "/v1/order/m-1/confirm"},
		{"a/b", "/v1/order/a%2Fb/confirm"},
		{"a?b#c", "/v1/order/a%3Fb%23c/confirm"},
		{"...", "/v1/order/.../confirm"},
		{".a", "/v1/order/.a/confirm"},
		{"%2e%2e", "/v1/order/%252e%252e/confirm"},
		{".%2e", "/v1/order/.%252e/confirm"},
		{"..", ""},
		{".", ""},
		{"../admin", ""},
		{"x/../../admin", ""},
		{`..\admin`, ""},
		{`x\..`, ""},
		{"./x", ""},
		{"..;x", ""},
		{"a;b", "/v1/order/a%3Bb/confirm"},
		{";..", "/v1/order/%3B../confirm"},
	} {
		raw, _ := json.Marshal(tt.id)
		res := in.Evaluate(orderWith("", string(raw)))
		if tt.path == "" {
			if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || strings.Join(res.Fields, ",") != "message_id" {
				var to string
				if len(res.Requests) > 0 {
					to = " to " + res.Requests[0].URL
				}
				t.Errorf("message_id %q: %s %s %v%s, want reject invalid_field [message_id]", tt.id, res.Outcome, res.Reason, res.Fields, to)
			}
			continue
		}
		if res.Outcome != runtime.Deliver {
			t.Errorf("message_id %q: %s %s %v %s", tt.id, res.Outcome, res.Reason, res.Fields, res.Message)
			continue
		}
		u, err := url.Parse(res.Requests[0].URL)
		if err != nil || u.EscapedPath() != tt.path {
			t.Errorf("message_id %q: URL %s, want path %s", tt.id, res.Requests[0].URL, tt.path)
		}
	}
}

// Config values are checked where they sit in a URL once, at Bind: a
// host label, a port number, no dot segment in a path.
func TestBindChecksConfigInURL(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  tenant: {type: string, required: true}
  port: {type: string, required: true}
  dir: {type: string, required: true}
hosts: ["*.example.com"]
requests:
  r:
    method: POST
    url: https://{config.tenant}.example.com:{config.port}/v1/{config.dir}/x
    body:
      a: {from: properties.a}
events:
  E: {vendor_event: e, request: r}
`
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"tenant": "t-1", "port": "8443", "dir": "a.b"})
	if err != nil {
		t.Fatal(err)
	}
	if res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":1}}`)); res.Outcome != runtime.Deliver || res.Requests[0].URL != "https://t-1.example.com:8443/v1/a.b/x" {
		t.Fatalf("%s %s %s", res.Outcome, res.Reason, res.Message)
	}
	for _, tt := range []struct{ tenant, port, dir, key string }{
		{"t.evil", "8443", "d", "tenant"},
		{"t", "0", "d", "port"},
		{"t", "http", "d", "port"},
		{"t", "65536", "d", "port"},
		{"t", "443", "..", "dir"},
		{"t", "443", ".", "dir"},
		{"t", "443", `..\x`, "dir"},
	} {
		_, err := runtime.Bind(bp, "", map[string]any{"tenant": tt.tenant, "port": tt.port, "dir": tt.dir})
		var ce *runtime.ConfigError
		if !errors.As(err, &ce) || strings.Join(ce.Keys, ",") != tt.key {
			t.Errorf("%+v: %v, want invalid_config [%s]", tt, err, tt.key)
		}
	}
}
