package runtime_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// A header value built from event data or config that holds a control
// character (CR, LF, NUL...) is refused where it is made, naming the
// field: Go's HTTP client would refuse to send it at every attempt, and a
// server that took it would read a second header (header injection).
func TestHeaderValueControlCharacters(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  key: {type: secret, required: true}
  tenant: {type: string}
hosts: [api.example.com]
values:
  ord: {from: properties.order_id, type: id}
  ip: {from: context.ip, type: string}
requests:
  r:
    method: GET
    url: "https://api.example.com/ep?ord={values.ord}"
    auth: {type: bearer, token: "{config.key}"}
    headers:
      X-Forwarded-For: "{values.ip?}"
      X-Tenant: "t-{config.tenant?}"
events:
  E: {vendor_event: e, request: r}
`
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"key": "sk-hdr-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{`1.2.3.4\r\nX-Evil: 1`, `a\nb`, `a\u0000b`, `a\u007fb`} {
		res := in.Evaluate([]byte(`{"event":"E","context":{"ip":"` + ip + `"},"properties":{"order_id":"o-1"}}`))
		if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || len(res.Fields) != 1 || res.Fields[0] != "ip" {
			t.Errorf("ip %q: %s %s %v: %s; want invalid_field naming ip", ip, res.Outcome, res.Reason, res.Fields, res.Message)
		} else if !strings.Contains(res.Message, "header") {
			t.Errorf("ip %q: message %q does not say it is about a header", ip, res.Message)
		}
	}
	// A tab, and text beyond ASCII, are allowed in a header value.
	res := in.Evaluate([]byte(`{"event":"E","context":{"ip":"a\tb é"},"properties":{"order_id":"o-1"}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("tab and UTF-8: %s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	if v, _ := res.Requests[0].Header("X-Forwarded-For"); v != "a\tb é" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	// Config: refused at Bind, naming the key.
	for _, cfg := range []map[string]any{
		{"key": "sk-hdr-1", "tenant": "acme\r\nX-Evil: 1"},
		{"key": "sk-hdr-1\n"},
	} {
		_, err := runtime.Bind(bp, "", cfg)
		if err == nil {
			t.Errorf("Bind %q: no error", cfg)
			continue
		}
		if strings.Contains(err.Error(), "sk-hdr-1") {
			t.Errorf("Bind's error shows the secret: %v", err)
		}
		if !strings.Contains(err.Error(), "header") {
			t.Errorf("Bind %v: %v; want it to say a header value cannot hold it", cfg["tenant"], err)
		}
	}
}
