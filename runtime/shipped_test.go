package runtime_test

import (
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/engine"
)

// shippedVectors loads every catalog blueprint's shipped vector files and
// a runner that binds them (the differential tests' common start).
func shippedVectors(tb testing.TB) (*conformance.Runner, []*conformance.File) {
	tb.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		tb.Fatal(err)
	}
	files, ds := conformance.LoadAllFS(blueprints.FS)
	if ds.HasErrors() {
		tb.Fatalf("vectors do not load:\n%s", ds.Error())
	}
	return &conformance.Runner{Catalog: cat}, files
}
