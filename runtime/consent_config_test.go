package runtime_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// TestConsentCategoryFromConfigRequired: a consent category chosen by a
// config select with no default and not required was, when the install
// left it out, no gate at all: an event whose consent denies the category
// was delivered. The config is now refused without it (fail closed).
func TestConsentCategoryFromConfigRequired(t *testing.T) {
	bp, ds := engine.Compile("consentcfg.yaml", []byte(`key: consentcfg
version: 0.1.0
name: Consent from config
category: other
status: alpha
config:
  cat:
    type: select
    options: [{value: none}, {value: advertising}]
hosts: [api.example.com]
consent:
  category: "{config.cat}"
  none: none
  from: ["context.consent.{category}"]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    body_from: event
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	denied := []byte(`{"type":"track","event":"x","context":{"consent":{"advertising":false}}}`)
	_, err := runtime.Bind(bp, "", nil)
	var ce *runtime.ConfigError
	if !errors.As(err, &ce) || !slices.Equal(ce.Keys, []string{"cat"}) {
		t.Fatalf("Bind without the category: %v, want invalid_config [cat]", err)
	}
	for cat, want := range map[string]runtime.Outcome{"advertising": runtime.Skip, "none": runtime.Deliver} {
		in, err := runtime.Bind(bp, "", map[string]any{"cat": cat})
		if err != nil {
			t.Fatal(err)
		}
		if res := in.Evaluate(denied); res.Outcome != want {
			t.Errorf("cat %s: %v %s, want %v", cat, res.Outcome, res.Message, want)
		}
	}
}
