package engine_test

import (
	"io/fs"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
)

// BenchmarkCompile compiles the whole Button catalog file, cold: parse,
// schema validation, every expression, every reference.
func BenchmarkCompile(b *testing.B) {
	src, err := fs.ReadFile(blueprints.FS, "button/0.1.0.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("button", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if bp, ds := engine.Compile("button/0.1.0.yaml", src); bp == nil {
				b.Fatal(ds)
			}
		}
	})
}
