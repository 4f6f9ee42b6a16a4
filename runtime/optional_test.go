package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// An optional placeholder ({values.NAME?}) that is absent leaves out what
// holds it: its query parameter, its header, nothing in a path. A plain
// one absent is a missing field; an optional one that is invalid is still
// invalid.
func TestOptionalPlaceholders(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  key: {type: secret, required: true}
  region: {type: string}
hosts: [api.example.com]
values:
  ord: {from: properties.order_id, type: id}
  coupon: {from: properties.coupon, type: string}
  sub: {from: properties.sub, type: string}
  ip: {from: context.ip, type: string}
  n: {from: properties.n, type: integer}
requests:
  r:
    method: GET
    url: "https://api.example.com/ep/{values.sub?}?ord={values.ord}&cpn={values.coupon?}&n={values.n?}&r={config.region?}"
    auth: {type: query, name: k, value: "{config.key}"}
    headers:
      X-Forwarded-For: "{values.ip?}"
      X-Region: "r-{config.region?}"
events:
  E: {vendor_event: e, request: r}
`
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	bind := func(cfg map[string]any) *runtime.Integration {
		in, err := runtime.Bind(bp, "", cfg)
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	noRegion := bind(map[string]any{"key": "sk-opt-1"})
	region := bind(map[string]any{"key": "sk-opt-1", "region": "eu"})
	for _, c := range []struct {
		name, event string
		in          *runtime.Integration
		url         string
		headers     map[string]string // "" means absent
		reason      string
	}{
		{"every optional absent", `{"event":"E","properties":{"order_id":"o-1"}}`, noRegion,
			"https://api.example.com/ep/?ord=o-1&k=sk-opt-1", map[string]string{"X-Forwarded-For": "", "X-Region": ""}, ""},
		{"every optional present", `{"event":"E","context":{"ip":"1.2.3.4"},"properties":{"order_id":"o-1","coupon":"A B","sub":"x","n":"3"}}`, region,
			"https://api.example.com/ep/x?ord=o-1&cpn=A+B&n=3&r=eu&k=sk-opt-1", map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Region": "r-eu"}, ""},
		{"a plain placeholder absent is missing", `{"event":"E","properties":{"coupon":"A"}}`, noRegion, "", nil, runtime.ReasonMissingRequiredField},
		{"an optional placeholder invalid is invalid", `{"event":"E","properties":{"order_id":"o-1","n":"x"}}`, noRegion, "", nil, runtime.ReasonInvalidField},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := c.in.Evaluate([]byte(c.event))
			if c.reason != "" {
				if res.Outcome != runtime.Reject || res.Reason != c.reason {
					t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
				}
				return
			}
			if res.Outcome != runtime.Deliver {
				t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
			}
			req := res.Requests[0]
			if req.URL != c.url {
				t.Errorf("URL %s\nwant %s", req.URL, c.url)
			}
			for name, want := range c.headers {
				got, ok := req.Header(name)
				if want == "" && ok || want != "" && got != want {
					t.Errorf("header %s = %q (%t), want %q", name, got, ok, want)
				}
			}
		})
	}
}
