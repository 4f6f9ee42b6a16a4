package runtime_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// TestAuthConfigRequired: an auth reads {config.KEY} plainly (never
// optional), but a key it read that the install left out was rendered as
// "": a signature keyed with nothing (anyone can forge it), "Bearer " with
// no token. Bind now refuses the config, naming the key; an alternative
// that is not chosen needs nothing.
func TestAuthConfigRequired(t *testing.T) {
	bp, ds := engine.Compile("sigempty.yaml", []byte(`key: sigempty
version: 0.1.0
name: Signature without a secret
category: other
status: alpha
config:
  mode: {type: select, default: sig, options: [{value: sig}, {value: bearer}, {value: none}]}
  secret: {type: secret}
  token: {type: secret}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    body_from: event
    auth:
      - when: config.mode == "sig"
        type: signature
        secret: "{config.secret}"
        header: X-Sig
      - when: config.mode == "bearer"
        type: bearer
        token: "{config.token}"
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	for _, c := range []struct {
		config map[string]any
		fault  string
	}{
		{map[string]any{}, "secret"},
		{map[string]any{"secret": ""}, "secret"},
		{map[string]any{"mode": "bearer", "secret": "s3cret-key"}, "token"},
		{map[string]any{"secret": "s3cret-key"}, ""},
		{map[string]any{"mode": "none"}, ""},
	} {
		_, err := runtime.Bind(bp, "", c.config)
		var ce *runtime.ConfigError
		switch {
		case c.fault == "" && err != nil:
			t.Errorf("%v: %v", c.config, err)
		case c.fault != "" && (!errors.As(err, &ce) || !slices.Equal(ce.Keys, []string{c.fault})):
			t.Errorf("%v: %v, want invalid_config [%s]", c.config, err, c.fault)
		}
	}
}

// TestMethodConfigRequired: a method read from a select that the install
// left out (no default, not required) was "", which net/http sends as
// GET. Bind now refuses the config, naming the key.
func TestMethodConfigRequired(t *testing.T) {
	bp, ds := engine.Compile("methodcfg.yaml", []byte(`key: methodcfg
version: 0.1.0
name: Method from config
category: other
status: alpha
config:
  m: {type: select, options: [{value: POST}, {value: PUT}]}
hosts: [api.example.com]
requests:
  r:
    method: "{config.m}"
    url: https://api.example.com/v1/ingest
    body_from: event
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	_, err := runtime.Bind(bp, "", nil)
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) || !slices.Equal(ce.Keys, []string{"m"}) {
		t.Fatalf("Bind without the method: %v, want invalid_config [m]", err)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"m": "PUT"})
	if err != nil {
		t.Fatal(err)
	}
	if res := in.Evaluate([]byte(`{"type":"track","event":"x"}`)); res.Outcome != runtime.Deliver || res.Requests[0].Method != "PUT" {
		t.Fatalf("%v %s", res.Outcome, res.Message)
	}
}
