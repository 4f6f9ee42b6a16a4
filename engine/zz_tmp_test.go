package engine_test

import (
	"os"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
)

func TestZZTmp(t *testing.T) {
	f := os.Getenv("ZZ_FILE")
	if f == "" {
		t.Skip()
	}
	src, _ := os.ReadFile(f)
	cat := testCatalog(t)
	bp, ds := engine.Compile("x.yaml", src, engine.WithCatalog(cat))
	for _, d := range ds {
		t.Log(d.String())
	}
	t.Logf("bp nil: %v", bp == nil)
}
