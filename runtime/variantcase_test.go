package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Integration pages spell variants as people do ("Retail"): Bind matches
// the catalog key and the variant key case-insensitively, and the bound
// integration names the variant by its canonical lower-case key (the name
// the CLI stores requests under).
func TestBindVariantAnyCase(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"Button@0.1.0", "BUTTON"} {
		bp, _, err := cat.Compile(ref)
		if err != nil {
			t.Fatalf("Compile(%q): %v", ref, err)
		}
		if bp.Ref() != "button@0.1.0" || bp.Key() != "button" {
			t.Errorf("Compile(%q): ref %s, key %s; want the canonical button@0.1.0", ref, bp.Ref(), bp.Key())
		}
		for _, variant := range []string{"Retail", "RETAIL", "retail"} {
			in, err := runtime.Bind(bp, variant, map[string]any{"application_id": "app-abc123", "api_key": "sk-case-1"})
			if err != nil {
				t.Fatalf("Bind(%s, %q): %v", ref, variant, err)
			}
			if in.Variant() != "retail" {
				t.Errorf("Bind(%s, %q).Variant() = %q, want retail", ref, variant, in.Variant())
			}
			// Product Added is mapped in the retail variant only.
			res := in.Evaluate([]byte(`{"type":"track","event":"Product Added","context":{"consent":{"advertising":true}},"properties":{"sku":"SKU-1"}}`))
			if res.Outcome == runtime.Skip && res.Reason == "event_not_mapped" {
				t.Errorf("Bind(%s, %q): Product Added not mapped: bound to the wrong variant", ref, variant)
			}
		}
	}
	bp, _, err := cat.Compile("button")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.Bind(bp, "Retai", map[string]any{"application_id": "app-abc123", "api_key": "sk-case-1"}); err == nil {
		t.Error(`Bind(button, "Retai") succeeded; an unknown variant must be refused`)
	}
}
