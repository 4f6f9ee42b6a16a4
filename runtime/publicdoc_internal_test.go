package runtime

import (
	"os/exec"
	"regexp"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// The public packages' documentation names no internal package's
// identifiers (issue 10: go doc ./runtime shows no engine internals), and
// the runtime's defaults, written as values so that go doc shows them,
// are the compiler's.
func TestPublicDocsHideInternals(t *testing.T) {
	if DefaultExprBytes != compiler.DefaultExprBytes || DefaultExprSteps != compiler.DefaultExprSteps {
		t.Errorf("runtime's expression budget defaults (%d bytes, %d steps) are not the compiler's (%d, %d)",
			DefaultExprBytes, DefaultExprSteps, compiler.DefaultExprBytes, compiler.DefaultExprSteps)
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	internal := regexp.MustCompile(`\b(compiler|syntax|schemacheck|docgen|encoding|conv|suggest|netguard|vm|ast)\.[A-Z]\w*`)
	for _, pkg := range []string{"../engine", "../engine/diag", ".", "./delivery", "./send", "./outbox", "../conformance"} {
		out, err := exec.Command("go", "doc", "-all", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go doc -all %s: %v\n%s", pkg, err, out)
		}
		for _, m := range internal.FindAll(out, -1) {
			t.Errorf("go doc -all %s shows %s, an internal package's name", pkg, m)
		}
	}
}
