package conformance_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/engine"
)

// TestShippedVectors runs every vector file of the embedded catalog, one
// subtest per case.
func TestShippedVectors(t *testing.T) { testShippedVectors(t, false) }

// TestShippedVectorsValidated runs them again, each event checked once by
// runtime.Valid and evaluated with EvaluateValid, as a service validating
// at ingestion does: every case must pass the same way.
func TestShippedVectorsValidated(t *testing.T) { testShippedVectors(t, true) }

func testShippedVectors(t *testing.T, validated bool) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	files, ds := conformance.LoadAllFS(blueprints.FS)
	if ds.HasErrors() {
		t.Fatalf("vectors do not load:\n%s", ds.Error())
	}
	if len(files) == 0 {
		t.Fatal("no vector files shipped")
	}
	r := &conformance.Runner{Catalog: cat, Validated: validated}
	total := 0
	for _, f := range files {
		t.Run(f.Path, func(t *testing.T) {
			bp, err := r.Blueprint(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range f.Cases {
				total++
				t.Run(c.Name, func(t *testing.T) {
					res := r.RunCase(bp, f, c)
					if !res.Passed() {
						t.Errorf("%s:%d: %s\n  %s", f.Path, c.Line, c.Name, strings.Join(res.Problems, "\n  "))
					}
				})
			}
		})
	}
	if total < 60 {
		t.Errorf("only %d shipped cases; the catalog promises at least 60", total)
	}
}
