package engine_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/syntax"
)

var update = flag.Bool("update", false, "rewrite the .golden files of engine/testdata/errors")

// warningOnly lists the files of testdata/errors whose single fault is a
// warning: they compile, and their golden file holds warnings only.
var warningOnly = map[string]bool{
	"required_with_default.yaml": true,
}

func testCatalog(t *testing.T) *engine.Catalog {
	t.Helper()
	cat, err := engine.NewCatalog(os.DirFS(filepath.Join("testdata", "catalog")))
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return cat
}

// TestGoldenErrors compiles every broken blueprint of testdata/errors and
// compares its diagnostics with the sibling .golden file.
func TestGoldenErrors(t *testing.T) {
	dir := filepath.Join("testdata", "errors")
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test files in testdata/errors")
	}
	cat := testCatalog(t)
	seen := map[string]bool{}
	for _, path := range files {
		name, err := filepath.Rel(dir, path)
		if err != nil {
			t.Fatal(err)
		}
		name = filepath.ToSlash(name)
		seen[name] = true
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			bp, ds := engine.Compile(name, src, engine.WithCatalog(cat))
			var got bytes.Buffer
			for _, d := range ds {
				fmt.Fprintln(&got, d.String())
			}
			switch {
			case warningOnly[name]:
				if ds.HasErrors() {
					t.Errorf("%s is listed as warning-only but has errors", name)
				}
				if len(ds) == 0 {
					t.Errorf("%s is listed as warning-only but produced no diagnostic", name)
				}
				if bp == nil && !ds.HasErrors() {
					t.Errorf("%s has no error but Compile returned no blueprint", name)
				}
			case !ds.HasErrors():
				t.Errorf("%s compiled with no error diagnostic; every file in testdata/errors must fail", name)
			case bp != nil:
				t.Errorf("%s has errors but Compile returned a blueprint", name)
			}
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./engine -run Golden -update)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("diagnostics of %s differ from %s (-want +got):\n%s",
					name, filepath.Base(golden), lineDiff(string(want), got.String()))
			}
		})
	}
	for name := range warningOnly {
		if !seen[name] {
			t.Errorf("warningOnly names %s, which is not in testdata/errors", name)
		}
	}
	// Every golden file has its blueprint.
	goldens, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
	for _, g := range goldens {
		y := strings.TrimSuffix(filepath.Base(g), ".golden") + ".yaml"
		if !seen[y] {
			t.Errorf("%s has no %s beside it", filepath.Base(g), y)
		}
	}
}

// TestGoldenCatalogValid checks that the catalog the golden tests extend
// holds a valid base, so that extends faults come from the overlay alone.
func TestGoldenCatalogValid(t *testing.T) {
	cat := testCatalog(t)
	bp, ds, err := cat.Compile("base@1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if bp == nil || ds.HasErrors() {
		t.Fatalf("base@1.0.0 does not compile:\n%v", ds)
	}
	var keys []string
	for _, v := range bp.Variants() {
		keys = append(keys, v.Key)
	}
	if !slices.Equal(keys, []string{"default", "extra"}) {
		t.Errorf("base@1.0.0 variants = %v, want [default extra]", keys)
	}
}

// TestGoldenFileTooLarge builds a blueprint just over the size limit in
// memory, instead of committing a 1 MiB file.
func TestGoldenFileTooLarge(t *testing.T) {
	head := "key: big\nversion: 1.0.0\nname: Big\ncategory: analytics\nstatus: alpha\ndescription: >-\n"
	var b bytes.Buffer
	b.WriteString(head)
	line := "  " + strings.Repeat("x", 76) + "\n"
	for b.Len() <= syntax.MaxFileSize {
		b.WriteString(line)
	}
	src := b.Bytes()
	bp, ds := engine.Compile("big.yaml", src)
	if bp != nil {
		t.Fatal("a file over the size limit compiled")
	}
	want := fmt.Sprintf("big.yaml:1:1: error file_too_large: file is %d bytes; the limit is %d bytes (1 MiB)", len(src), syntax.MaxFileSize)
	if len(ds) != 1 || ds[0].String() != want {
		t.Errorf("diagnostics:\n%v\nwant:\n%s", ds, want)
	}

	// Exactly at the limit the size is accepted (the file is then read).
	exact := src[:syntax.MaxFileSize]
	exact = append(exact[:len(exact)-1:len(exact)-1], '\n')
	_, ds = engine.Compile("exact.yaml", exact)
	for _, d := range ds {
		if d.Code == "file_too_large" {
			t.Errorf("a file of exactly %d bytes is refused: %v", syntax.MaxFileSize, d)
		}
	}
}

// lineDiff renders a minimal line diff of want and got, marking removed
// lines with - and added lines with +.
func lineDiff(want, got string) string {
	a := strings.Split(strings.TrimSuffix(want, "\n"), "\n")
	b := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if want == "" {
		a = nil
	}
	if got == "" {
		b = nil
	}
	// Longest common subsequence table.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			fmt.Fprintf(&out, "  %s\n", a[i])
			i++
			j++
		case i < len(a) && (j == len(b) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&out, "- %s\n", a[i])
			i++
		default:
			fmt.Fprintf(&out, "+ %s\n", b[j])
			j++
		}
	}
	return out.String()
}
