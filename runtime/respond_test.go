package runtime_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

func TestClassifyButton(t *testing.T) {
	in := robustBind(t, "retail", "sk-live-abc")
	order := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`))
	activity := in.Evaluate([]byte(`{"type":"track","event":"Product Added","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"sku":"s"}}`))
	if order.Outcome != runtime.Deliver || activity.Outcome != runtime.Deliver {
		t.Fatal(order, activity)
	}
	errBody := `{"meta":{"status":"error"},"error":{"message":"total must be an integer"}}`
	cases := []struct {
		name    string
		req     *runtime.Request
		status  int
		body    string
		outcome runtime.Outcome
		message string
	}{
		{"order created", order.Requests[0], 200, `{"meta":{"status":"ok"}}`, runtime.Delivered, ""},
		{"order accepted", order.Requests[0], 202, ``, runtime.Delivered, ""},
		{"order exists", order.Requests[0], 409, `{"error":{"message":"Order already exists"}}`, runtime.Duplicate, ""},
		{"activity 409 is a plain 4xx", activity.Requests[0], 409, `{}`, runtime.Failed, "Conflict: {}"},
		{"bad api key", order.Requests[0], 401, `{"error":{"message":"Unauthorized"}}`, runtime.Failed, "bad api_key (Button answered 401 Unauthorized)"},
		{"validation error", order.Requests[0], 400, errBody, runtime.Failed, "total must be an integer"},
		{"throttled", order.Requests[0], 429, ``, runtime.Retry, "Too Many Requests"},
		{"timeout", order.Requests[0], 408, ``, runtime.Retry, "Request Timeout"},
		{"server error", order.Requests[0], 503, `<html>oops</html>`, runtime.Retry, "Service Unavailable: <html>oops</html>"},
		{"teapot", activity.Requests[0], 418, ``, runtime.Failed, "I'm a teapot"},
		{"a message echoing the key is redacted", order.Requests[0], 400, `{"error":{"message":"bad key sk-live-abc"}}`, runtime.Failed, "bad key ***"},
		{"a body echoing the key in \\u escapes is redacted", activity.Requests[0], 500, `{"detail":"key \u0073k-live-abc"}`, runtime.Retry, `Internal Server Error: {"detail":"key ***"}`},
		{"a long body cut in the key is redacted", activity.Requests[0], 500, strings.Repeat("x", 195) + "sk-live-abc", runtime.Retry, "Internal Server Error: " + strings.Repeat("x", 195) + "***..."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := in.Classify(c.req, c.status, http.Header{}, []byte(c.body))
			if v.Outcome != c.outcome || v.Status != c.status || c.message != "" && v.Message != c.message {
				t.Errorf("got %+v, want %s %q", v, c.outcome, c.message)
			}
		})
	}
}

// Rules may read the body: affiliate APIs answer 200 when they refused.
func TestClassifyBodyRules(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
responses:
  message: error
  rules:
    - status: 200
      when: body.meta.status == "error" || headers["x-refused"] == "yes"
      outcome: failed
      message: refused with 200
    - status: 503
      when: status == 503 && int(headers["retry-after"] ?? "0") > 3600
      outcome: failed
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      id: {from: id}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"event":"E","id":"1"}`))
	req := res.Requests[0]
	h := func(kv ...string) http.Header {
		x := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			x.Set(kv[i], kv[i+1])
		}
		return x
	}
	cases := []struct {
		status  int
		header  http.Header
		body    string
		outcome runtime.Outcome
	}{
		{200, h(), `{"meta":{"status":"ok"}}`, runtime.Delivered},
		{200, h(), `{"meta":{"status":"error"}}`, runtime.Failed},
		{200, h("X-Refused", "yes"), `not json`, runtime.Failed},
		{200, h(), `not json`, runtime.Delivered},
		{503, h("Retry-After", "7200"), ``, runtime.Failed},
		{503, h("Retry-After", "5"), ``, runtime.Retry},
		{503, h(), ``, runtime.Retry},
		{404, h(), `{"error":"no such thing"}`, runtime.Failed},
	}
	for _, c := range cases {
		v := in.Classify(req, c.status, c.header, []byte(c.body))
		if v.Outcome != c.outcome {
			t.Errorf("%d %v %s: got %+v, want %s", c.status, c.header, c.body, v, c.outcome)
		}
		if c.status == 404 && !strings.Contains(v.Message, "no such thing") {
			t.Errorf("message %q", v.Message)
		}
	}
}
