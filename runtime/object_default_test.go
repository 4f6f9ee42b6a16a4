package runtime_test

import (
	"encoding/json"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// An object built from fields with none of them present is left out, also
// when it is evaluated aside (a when, a sibling reading it): never written
// as a key without a value. With a default, the default stands in for it
// (GA4's params are always an object, possibly {}).
func TestObjectLeftOutAndDefault(t *testing.T) {
	src := `key: demo
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
      a: {const: 1}
      plain:
        type: object
        fields:
          x: {from: properties.x}
      aside:
        type: object
        when: 'true'
        fields:
          x: {from: properties.x}
      dflt:
        type: object
        default: {}
        fields:
          x: {from: properties.x}
      dflt_aside:
        type: object
        default: {none: true}
        when: 'true'
        fields:
          x: {from: properties.x}
      omitted:
        type: object
        default: {}
        omit_unless: [id]
        fields:
          id: {from: properties.id}
          x: {from: properties.x}
      copy:
        expr: 'fields.dflt'
        type: any
      list:
        type: array
        expr: '[{}]'
        items:
          params:
            type: object
            default: {}
            fields:
              x: {from: x}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	for _, c := range []struct{ event, body string }{
		{`{"event":"E"}`, `{"a":1,"dflt":{},"dflt_aside":{"none":true},"omitted":{},"copy":{},"list":[{"params":{}}]}`},
		{`{"event":"E","properties":{"x":2}}`, `{"a":1,"plain":{"x":2},"aside":{"x":2},"dflt":{"x":2},"dflt_aside":{"x":2},"omitted":{},"copy":{"x":2},"list":[{"params":{}}]}`},
		{`{"event":"E","properties":{"x":2,"id":"i"}}`, `{"a":1,"plain":{"x":2},"aside":{"x":2},"dflt":{"x":2},"dflt_aside":{"x":2},"omitted":{"id":"i","x":2},"copy":{"x":2},"list":[{"params":{}}]}`},
	} {
		res := in.Evaluate([]byte(c.event))
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%s: %s %s: %s", c.event, res.Outcome, res.Reason, res.Message)
		}
		body := res.Requests[0].Body
		if !json.Valid(body) {
			t.Fatalf("%s: body is not JSON: %s", c.event, body)
		}
		if string(body) != c.body {
			t.Errorf("%s: body %s, want %s", c.event, body, c.body)
		}
	}
}
