package schemas_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/schemas"
)

func TestSchemasCompile(t *testing.T) {
	for _, name := range []string{schemas.Blueprint, schemas.Conformance, schemas.Event} {
		if _, err := schemas.Compile(name); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		d := schemas.Doc(name)
		if d["$id"] != schemas.BaseURL+name || d["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $id %v, $schema %v", name, d["$id"], d["$schema"])
		}
	}
}

// Only embedded schemas load: a $ref elsewhere is refused, never fetched.
func TestNoRemoteLoads(t *testing.T) {
	if _, err := schemas.Compile("https://example.com/evil.json"); err == nil {
		t.Fatal("a remote schema was loaded")
	}
}

// Every key of the blueprint language is described, for editors.
func TestEveryKeyDescribed(t *testing.T) {
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok {
				for k, p := range props {
					pm, _ := p.(map[string]any)
					_, hasDesc := pm["description"]
					_, isRef := pm["$ref"]
					if !hasDesc && !isRef {
						t.Errorf("%s.properties.%s has no description", path, k)
					}
				}
			}
			for k, c := range v {
				walk(path+"."+k, c)
			}
		case []any:
			for _, c := range v {
				walk(path, c)
			}
		}
	}
	walk("blueprint", schemas.Doc(schemas.Blueprint))
}

func TestEventSchemaAcceptsBothSpellings(t *testing.T) {
	s := schemas.MustCompile(schemas.Event)
	for _, ev := range []string{
		`{"type":"track","event":"Order Completed","userId":42,"messageId":"m","context":{"userAgent":"x","consent":{"advertising":true}}}`,
		`{"type":"track","event":"order_completed","user_id":"u","message_id":"m","context":{"user_agent":"x","consent":{"canonical":{"marketing":true}}}}`,
	} {
		var v any
		json.Unmarshal([]byte(ev), &v)
		if err := s.Validate(v); err != nil {
			t.Errorf("%s: %v", ev, err)
		}
	}
	var v any
	json.Unmarshal([]byte(`{"type":"alias"}`), &v)
	if err := s.Validate(v); err == nil || !strings.Contains(err.Error(), "type") {
		t.Errorf("an unknown type passed: %v", err)
	}
}
