package blueprintdiff_test

import (
	"os"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/blueprintdiff"
	"github.com/blueprint-engine/blueprint/internal/compiler"
)

func compile(t *testing.T, name, src string) *compiler.Blueprint {
	t.Helper()
	bp, ds := engine.Compile(name, []byte(src))
	if bp == nil {
		t.Fatalf("%s does not compile:\n%s\n%s", name, ds.Error(), src)
	}
	return compiler.Of(bp)
}

func TestButtonAgainstItself(t *testing.T) {
	src, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := blueprintdiff.Compare(compile(t, "a.yaml", string(src)), compile(t, "b.yaml", string(src)))
	for _, c := range r.Changes {
		t.Errorf("unexpected change: %s", c)
	}
	if r.Needs != blueprintdiff.None || !r.OK || r.Verdict() != "needs: none; 0.1.0 -> 0.1.0 is not a bump" {
		t.Errorf("verdict %q ok %v", r.Verdict(), r.OK)
	}
}
