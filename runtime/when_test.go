package runtime_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// when leaves a field out when its condition does not hold (no fault, no
// warning, even if required); internal fields are read by siblings and
// never written; warn_when attaches warnings on a condition.
func TestWhenInternalWarnWhen(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
warnings:
  customer_id_is_email: The user id looks like an email, so it was left out.
  big_order: A big order.
values:
  user_id: {from: [user_id, userId], type: string}
requests:
  r:
    method: POST
    url: https://api.example.com/e
    warn_when:
      customer_id_is_email: 'values.user_id != nil && values.user_id contains "@"'
    body:
      CustomerId: {value: user_id, when: 'values.user_id == nil || !(values.user_id contains "@")'}
      Amount:
        from: properties.total
        type: decimal
        scale: 2
        required: true
        when: 'event.properties.products == nil || len(event.properties.products) == 0'
      n: {from: properties.n, type: integer, internal: true}
      double: {expr: 'fields.n == nil ? nil : fields.n * 2', type: integer}
events:
  E:
    vendor_event: e
    request: r
    warn_when:
      big_order: '(event.properties.n ?? 0) > 100'
`
	in := bindInline(t, src)
	for _, c := range []struct {
		event, body string
		warnings    []string
		reason      string
	}{
		{`{"event":"E","userId":"u-1","properties":{"total":5,"n":3}}`, `{"CustomerId":"u-1","Amount":5.00,"double":6}`, nil, ""},
		{`{"event":"E","userId":"a@b.c","properties":{"products":[1],"n":300}}`, `{"double":600}`, []string{"customer_id_is_email", "big_order"}, ""},
		{`{"event":"E","properties":{}}`, ``, nil, runtime.ReasonMissingRequiredField},
		{`{"event":"E","properties":{"total":1,"n":"x"}}`, ``, nil, runtime.ReasonInvalidField},
	} {
		res := in.Evaluate([]byte(c.event))
		if c.reason != "" {
			if res.Outcome != runtime.Reject || res.Reason != c.reason {
				t.Errorf("%s: %s %s: %s", c.event, res.Outcome, res.Reason, res.Message)
			}
			continue
		}
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%s: %s %s: %s", c.event, res.Outcome, res.Reason, res.Message)
		}
		var got, want any
		json.Unmarshal(res.Requests[0].Body, &got)
		json.Unmarshal([]byte(c.body), &want)
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s: body %s, want %s", c.event, res.Requests[0].Body, c.body)
		}
		if !slices.Equal(res.Warnings, c.warnings) {
			t.Errorf("%s: warnings %v, want %v", c.event, res.Warnings, c.warnings)
		}
	}
}
