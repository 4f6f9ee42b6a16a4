package engine_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
)

// A signature covers the body; a query request has none, so its
// signature would be HMAC(key, "") for every request, covering none of
// the data sent: the blueprint does not compile.
func TestAdvSignatureOnQueryRequestRefused(t *testing.T) {
	src := `key: hostile
version: 0.1.0
name: Hostile
description: test
category: other
status: alpha
config:
  key: {type: secret, label: Key, required: true}
hosts: [api.example.com]
requests:
  r:
    method: GET
    encoding: query
    url: https://api.example.com/x
    auth:
      type: signature
      secret: "{config.key}"
      header: X-Signature
    body:
      a: {from: properties.a, type: string}
events:
  E: {request: r, vendor_event: e}
`
	bp, ds := engine.Compile("q.yaml", []byte(src))
	if bp != nil || !strings.Contains(fmt.Sprint(ds), "invalid_auth") {
		t.Fatalf("compiled: %v", ds)
	}
	// The same request sending a form body compiles.
	if bp, ds := engine.Compile("f.yaml", []byte(strings.Replace(strings.Replace(src, "encoding: query", "encoding: form", 1), "GET", "POST", 1))); bp == nil {
		t.Fatalf("form: %v", ds)
	}
}
