package engine_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
)

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// FuzzCompile: the compiler never panics or hangs, whatever the input, and
// what it reports is well formed. Seeds: the catalog and every golden case.
func FuzzCompile(f *testing.F) {
	_ = fs.WalkDir(blueprints.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(blueprints.FS, p); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	files, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		var bp *engine.Blueprint
		var ds engine.Diagnostics
		done := make(chan struct{})
		go func() {
			defer close(done)
			bp, ds = engine.Compile("fuzz.yaml", src, engine.WithCatalog(cat))
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("Compile hangs on %q", src)
		}
		if bp != nil && ds.HasErrors() {
			t.Fatalf("a blueprint and errors: %v", ds)
		}
		if bp == nil && !ds.HasErrors() {
			t.Fatalf("no blueprint and no error")
		}
		if len(ds) > 101 {
			t.Fatalf("%d diagnostics; the cap is 100 plus a summary", len(ds))
		}
		for i, d := range ds {
			if !codeRE.MatchString(d.Code) || d.Message == "" || d.Line < 0 || d.Col < 0 {
				t.Fatalf("malformed diagnostic %+v", d)
			}
			if i > 0 && ds[i-1].File == d.File && (ds[i-1].Line > d.Line || ds[i-1].Line == d.Line && ds[i-1].Col > d.Col) && d.Code != "too_many_diagnostics" {
				t.Fatalf("diagnostics not sorted: %v then %v", ds[i-1], d)
			}
		}
	})
}
