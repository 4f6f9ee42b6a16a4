package engine_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/syntax"
)

// A blueprint nesting 64 levels is read (whatever else is wrong with it);
// 65 is too_deep, at the [ that opens level 65 (testdata/errors/too_deep
// is the golden form). The size limit: TestGoldenFileTooLarge.
func TestCompileDepthLimit(t *testing.T) {
	src := func(depth int) []byte {
		return []byte("key: demo\nconst: " + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "\n")
	}
	_, ds := engine.Compile("at.yaml", src(syntax.MaxDepth))
	if !ds.HasErrors() {
		t.Fatal("an incomplete blueprint compiled")
	}
	for _, d := range ds {
		if d.Code == "too_deep" {
			t.Errorf("64 levels refused: %v", d)
		}
	}
	_, ds = engine.Compile("past.yaml", src(syntax.MaxDepth+1))
	if len(ds) != 1 || ds[0].Code != "too_deep" || ds[0].Line != 2 || ds[0].Col != len("const: ")+syntax.MaxDepth {
		t.Errorf("65 levels: %v", ds)
	}
}
