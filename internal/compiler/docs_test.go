package compiler_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// Every helper function is documented, with its example, in the authoring
// guide.
func TestFunctionsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/authoring.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range compiler.Functions() {
		if !strings.Contains(string(doc), "`"+f.Signature+"`") {
			t.Errorf("docs/authoring.md lacks %s", f.Signature)
		}
		if !strings.Contains(string(doc), "`"+f.Example+"`") {
			t.Errorf("docs/authoring.md lacks the example of %s: %s", f.Name, f.Example)
		}
	}
}

var codeCall = regexp.MustCompile(`(?:Errorf|Warnf)\([^\n]*?"([a-z][a-z0-9_]*)", "`)

// Every diagnostic code the compiler and the vector loader can report is
// listed in docs/diagnostics.md.
func TestDiagnosticCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/diagnostics.md")
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, dir := range []string{".", "../syntax", "../schemacheck", "../../engine", "../../engine/diag", "../../conformance", "../blueprintdiff"} {
		m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		files = append(files, m...)
	}
	codes := map[string]bool{"yaml_syntax": true, "tab_indentation": true, "too_many_diagnostics": true,
		"unknown_key": true, "missing_key": true, "wrong_type": true, "invalid_value": true, "unknown_function": true}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, _ := os.ReadFile(f)
		for _, m := range codeCall.FindAllStringSubmatch(string(src), -1) {
			codes[m[1]] = true
		}
	}
	if len(codes) < 40 {
		t.Fatalf("found only %d codes; the scan is broken", len(codes))
	}
	for c := range codes {
		if !strings.Contains(string(doc), "`"+c+"`") {
			t.Errorf("docs/diagnostics.md lacks code %s", c)
		}
	}
}
