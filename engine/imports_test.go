package engine_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Imports run one way, as the data does (README, Layout): the compiler
// never imports the runtime, nothing imports cmd, and neither engine nor
// runtime imports conformance. Checked on every package of the module,
// with the packages each one reaches (not only its direct imports).
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	const mod = "github.com/blueprint-engine/blueprint/"
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}} {{join .Deps " "}}`, mod+"...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	under := func(pkg, dir string) bool { return pkg == mod+dir || strings.HasPrefix(pkg, mod+dir+"/") }
	rules := []struct{ from, to string }{
		{"engine", "runtime"},
		{"internal/compiler", "runtime"},
		{"engine", "conformance"},
		{"runtime", "conformance"},
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, " ")
		checked++
		for _, d := range strings.Fields(deps) {
			if under(d, "cmd") {
				t.Errorf("%s imports %s: nothing imports cmd", pkg, d)
			}
			for _, r := range rules {
				if under(pkg, r.from) && under(d, r.to) {
					t.Errorf("%s imports %s: %s never imports %s", pkg, d, r.from, r.to)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("go list named only %d packages; the check is broken", checked)
	}
}

// The README's Layout table shows the module's shape: every package
// folder is named in it, by its own path or by a folder above it (the
// catch-all "internal/ (other)" row counts only for the packages it
// names by path).
func TestLayoutNamesEveryPackage(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	const mod = "github.com/blueprint-engine/blueprint"
	out, err := exec.Command("go", "list", mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, layout, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README has no Layout section")
	}
	layout, _, _ = strings.Cut(layout, "\n## ")
	var named []string
	for _, line := range strings.Split(layout, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		parts := strings.Split(line, "`")
		for i := 1; i < len(parts); i += 2 {
			if p := strings.TrimSuffix(parts[i], "/"); p != "" && p != "internal" {
				named = append(named, p)
			}
		}
	}
	if len(named) < 10 {
		t.Fatalf("found only %d folders in the Layout table; the check is broken", len(named))
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(strings.TrimPrefix(pkg, mod), "/")
		if rel == "" {
			continue
		}
		found := false
		for _, n := range named {
			if rel == n || strings.HasPrefix(rel, n+"/") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("README Layout does not name %s (nor a folder above it)", rel)
		}
	}
}
