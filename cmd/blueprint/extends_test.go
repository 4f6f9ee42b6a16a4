package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// selfCatalog writes a catalog folder holding Button 0.1.0 and a 0.2.0
// whose text is v2.
func selfCatalog(t *testing.T, v2 string) string {
	t.Helper()
	dir := t.TempDir()
	button, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "button"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"0.1.0.yaml": string(button), "0.2.0.yaml": v2} {
		if err := os.WriteFile(filepath.Join(dir, "button", name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Finding 13 of issue #11: button/0.2.0.yaml holding "extends: button"
// (itself) passed validate with exit 0 and ok: true, and eval, docs,
// catalog and list then said "does not compile" without a diagnostic.
// Now validate reports extends_self (exit 1), and every verb that says
// "does not compile" prints the diagnostic that says why.
func TestExtendsSelfCLI(t *testing.T) {
	dir := selfCatalog(t, "extends: button\nname: Self\n")
	const diag = "button/0.2.0.yaml:1:10: error extends_self: button@0.2.0 extends button, which is itself: a version can extend only an older version of its key; name an older version: extends: button@0.1.0"

	out, errs, code := cli(t, "", "--catalog", dir, "validate")
	if code != 1 || !strings.Contains(out, diag) || !strings.Contains(errs, "2 files: 1 error, 0 warnings") {
		t.Errorf("validate: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	out, _, code = cli(t, "", "--catalog", dir, "validate", "--format", "json")
	var res struct {
		Files []struct {
			File string `json:"file"`
			OK   bool   `json:"ok"`
		} `json:"files"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("validate --format json: %v\n%s", err, out)
	}
	for _, f := range res.Files {
		if f.File == "button/0.2.0.yaml" && f.OK {
			t.Errorf("validate --format json: %s is ok", f.File)
		}
	}
	if code != 1 {
		t.Errorf("validate --format json: exit %d", code)
	}

	vectors := filepath.Join(t.TempDir(), "v.vectors.yaml")
	if err := os.WriteFile(vectors, []byte("blueprint: button\nconfig: {application_id: app-abc123def456, api_key: sk-test-123}\ncases:\n- name: a page view\n  event: {type: page}\n  expect: {outcome: skip, reason: event_not_mapped}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"list"},
		{"docs", "button"},
		{"catalog", "button", "--format", "json"},
		{"catalog", "--format", "json"},
		{"eval", "--blueprint", "button", "--config", "application_id=app-abc123def456", "--config", "api_key=sk-test-123", "-"},
		{"send", "--blueprint", "button", "--config", "application_id=app-abc123def456", "--config", "api_key=sk-test-123", "--state", t.TempDir(), "-"},
		{"test", vectors},
	} {
		out, errs, code := cli(t, "", append([]string{"--catalog", dir}, args...)...)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", args[0], code, out, errs)
		}
		if !strings.Contains(out+errs, diag) {
			t.Errorf("%s does not say why it does not compile:\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errs)
		}
	}
}

// A version built on an older one, named with its version, is fine.
func TestExtendsOlderVersionCLI(t *testing.T) {
	dir := selfCatalog(t, "extends: button@0.1.0\nversion: 0.2.0\nname: Button Two\n")
	if out, errs, code := cli(t, "", "--catalog", dir, "validate"); code != 0 {
		t.Errorf("validate: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code := cli(t, "", "--catalog", dir, "list")
	if code != 0 || !strings.Contains(out, "Button Two") {
		t.Errorf("list: exit %d\n%s%s", code, out, errs)
	}
}
