package runtime_test

import (
	"net/http"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Response rules read bodies that are not JSON (text, with regex_find) and
// report a message computed from the answer (message_expr): Rakuten's XML
// and CJ's two error lists inside a 200.
func TestResponseTextAndMessageExpr(t *testing.T) {
	src := demoHead + `      a: {const: 1}
events:
  E: {vendor_event: e, request: r}
responses:
  rules:
    - status: 200
      when: 'regex_find(text, "<error>([^<]*)</error>") != nil'
      outcome: failed
      message_expr: '"Rakuten: " + regex_find(text, "<error>([^<]*)</error>")'
    - status: 200
      when: 'int(regex_find(text, "<bad>([0-9]+)</bad>") ?? "0") > 0'
      outcome: failed
      message_expr: '"Rakuten refused " + regex_find(text, "<bad>([0-9]+)</bad>") + " item(s)"'
    - status: 200
      when: 'body.errors[0] != nil || body.data.createOrders.errors[0] != nil'
      outcome: failed
      message_expr: 'body.errors[0].message ?? body.data.createOrders.errors[0].message'
`
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"event":"E"}`))
	if res.Outcome != runtime.Deliver {
		t.Fatal(res.Message)
	}
	req := res.Requests[0]
	for _, c := range []struct {
		body    string
		outcome runtime.Outcome
		msg     string
	}{
		{`<response><error>Access denied</error></response>`, runtime.Failed, "Rakuten: Access denied"},
		{`<response><good>1</good><bad>2</bad></response>`, runtime.Failed, "Rakuten refused 2 item(s)"},
		{`<response><good>3</good><bad>0</bad></response>`, runtime.Delivered, ""},
		{`{"data":{"createOrders":{"orders":[],"errors":[{"message":"bad cjEvent","fields":["cjEvent"]}]}}}`, runtime.Failed, "bad cjEvent"},
		{`{"errors":[{"message":"unauthorized"}]}`, runtime.Failed, "unauthorized"},
		{`{"data":{"createOrders":{"orders":[{"orderId":"o-1"}],"errors":[]}}}`, runtime.Delivered, ""},
	} {
		v := in.Classify(req, 200, http.Header{}, []byte(c.body))
		if v.Outcome != c.outcome || v.Message != c.msg {
			t.Errorf("%s: %s %q, want %s %q", c.body, v.Outcome, v.Message, c.outcome, c.msg)
		}
	}
}
