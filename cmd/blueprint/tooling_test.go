package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// init's scaffold validates and passes its vectors as written, and its
// "next" commands are the ones that prove it.
func TestInitValidateTest(t *testing.T) {
	dir := t.TempDir()
	out, errs, code := cli(t, "", "init", "acme_ads", "--dir", dir, "--category", "analytics")
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, errs)
	}
	bp := filepath.Join(dir, "acme_ads", "0.1.0.yaml")
	vec := filepath.Join(dir, "acme_ads", "0.1.0.vectors.yaml")
	for _, want := range []string{"wrote " + bp, "wrote " + vec, "blueprint validate " + bp, "blueprint test " + vec} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	src, _ := os.ReadFile(bp)
	for _, want := range []string{"key: acme_ads\n", `name: "Acme Ads"`, "category: analytics\n", "category: analytics\n  from:", "api.example.com", "docs/authoring.md#config"} {
		if !strings.Contains(string(src), want) {
			t.Errorf("scaffold lacks %q", want)
		}
	}
	out, errs, code = cli(t, "", "validate", bp)
	if code != 0 || out != "" || !strings.Contains(errs, "1 file: 0 errors, 0 warnings") {
		t.Errorf("validate: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = cli(t, "", "test", vec)
	if code != 0 || lastLine(out) != "6 passed, 0 failed" {
		t.Errorf("test: exit %d\n%s%s", code, out, errs)
	}
	// The vectors hold a case of each outcome.
	vsrc, _ := os.ReadFile(vec)
	for _, want := range []string{"outcome: deliver", "reason: event_not_mapped", "reason: missing_required_field", "reason: consent_denied"} {
		if !strings.Contains(string(vsrc), want) {
			t.Errorf("vectors lack %q", want)
		}
	}
	// The eval command it prints delivers.
	initOut, _, _ := cli(t, "", "init", "other", "--dir", dir)
	m := regexp.MustCompile(`echo '([^']*)' \| \\\n +blueprint eval `).FindStringSubmatch(initOut)
	if m == nil {
		t.Fatalf("no eval example in\n%s", initOut)
	}
	out, errs, code = cli(t, m[1], "eval", "--blueprint", filepath.Join(dir, "other", "0.1.0.yaml"), "--config", "account_id=acc-123", "--config", "api_key=sk-test-123", "-")
	if code != 0 || !strings.HasPrefix(out, "deliver (Order Completed -> purchase)") {
		t.Errorf("eval: exit %d\n%s%s", code, out, errs)
	}
}

// Without --dir, init writes into ./blueprints when it exists, else into
// the current folder.
func TestInitDefaultDir(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if _, errs, code := cli(t, "", "init", "acme"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme", "0.1.0.yaml")); err != nil {
		t.Error(err)
	}
	os.Mkdir(filepath.Join(dir, "blueprints"), 0o755)
	if _, errs, code := cli(t, "", "init", "acme"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "blueprints", "acme", "0.1.0.vectors.yaml")); err != nil {
		t.Error(err)
	}
}

func TestInitRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, errs, code := cli(t, "", "init", "acme", "--dir", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	bp := filepath.Join(dir, "acme", "0.1.0.yaml")
	os.WriteFile(bp, []byte("mine\n"), 0o644)
	_, errs, code := cli(t, "", "init", "acme", "--dir", dir)
	if code != 1 || !strings.Contains(errs, bp+" already exists (--force overwrites it)") {
		t.Errorf("existing file: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(bp); string(b) != "mine\n" {
		t.Errorf("the existing file was changed: %q", b)
	}
	// The vectors alone existing refuses too, and nothing is written.
	os.Remove(bp)
	if _, _, code := cli(t, "", "init", "acme", "--dir", dir); code != 1 {
		t.Errorf("existing vectors: exit %d", code)
	}
	if _, err := os.Stat(bp); err == nil {
		t.Error("the blueprint was written beside existing vectors")
	}
	if _, errs, code := cli(t, "", "init", "acme", "--dir", dir, "--force"); code != 0 {
		t.Errorf("--force: exit %d: %s", code, errs)
	}
	if b, _ := os.ReadFile(bp); !strings.Contains(string(b), "key: acme") {
		t.Errorf("--force did not write the scaffold")
	}
	for _, args := range [][]string{{"Acme"}, {"1acme"}, {"acme-ads"}, {"_acme"}, {""}, {"acme", "--category", "retail"}, {}, {"a", "b"}} {
		if _, _, code := cli(t, "", append(append([]string{"init"}, args...), "--dir", dir)...); code != 2 {
			t.Errorf("init %q: exit %d, want 2", args, code)
		}
	}
}

// A copy of Button 0.1.0 changed as named, at version v.
func buttonCopy(t *testing.T, v string, edits ...string) string {
	t.Helper()
	src, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), "version: 0.1.0", "version: "+v, 1)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("button 0.1.0 has no %q", edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	f := filepath.Join(t.TempDir(), "button.yaml")
	os.WriteFile(f, []byte(s), 0o644)
	return f
}

// Button without api_key (and the auth that reads it).
var removeAPIKey = []string{
	"  api_key:\n    type: secret\n    label: API Key\n    required: true\n    placeholder: sk-...\n    help_text: From Settings > API Keys.\n", "",
	"    auth:\n      type: basic\n      username: \"{config.api_key}\"\n      password: \"\"\n", "",
}

var addOptionalConfig = []string{"\nhosts:", "  region:\n    type: select\n    label: Region\n    default: us\n    options: [{value: us}, {value: eu}]\n\nhosts:"}

var descriptionOnly = []string{"Report purchases to Button's Order API", "Report completed purchases to Button's Order API"}

func TestDiff(t *testing.T) {
	cases := []struct {
		name    string
		version string
		edits   []string
		lines   []string
		code    int
	}{
		{"config key removed, patch bump", "0.1.1", removeAPIKey,
			[]string{"major: config key api_key removed", "minor: request order: auth changed (Order Completed in default, retail)", "needs: major; 0.1.0 -> 0.1.1 is a PATCH bump"}, 1},
		{"config key removed, minor bump", "0.2.0", removeAPIKey,
			[]string{"major: config key api_key removed", "minor: request order: auth changed (Order Completed in default, retail)", "needs: major; 0.1.0 -> 0.2.0 is a MINOR bump"}, 1},
		{"config key removed, major bump", "1.0.0", removeAPIKey,
			[]string{"major: config key api_key removed", "minor: request order: auth changed (Order Completed in default, retail)", "needs: major; 0.1.0 -> 1.0.0 is a MAJOR bump"}, 0},
		{"optional config added, patch bump", "0.1.1", addOptionalConfig,
			[]string{"minor: config key region added (optional)", "needs: minor; 0.1.0 -> 0.1.1 is a PATCH bump"}, 1},
		{"optional config added, minor bump", "0.2.0", addOptionalConfig,
			[]string{"minor: config key region added (optional)", "needs: minor; 0.1.0 -> 0.2.0 is a MINOR bump"}, 0},
		{"description only, patch bump", "0.1.1", descriptionOnly,
			[]string{"patch: description changed", "needs: patch; 0.1.0 -> 0.1.1 is a PATCH bump"}, 0},
		{"description only, no bump", "0.1.0", descriptionOnly,
			[]string{"patch: description changed", "needs: patch; 0.1.0 -> 0.1.0 is not a bump"}, 1},
		{"nothing, no bump", "0.1.0", nil,
			[]string{"needs: none; 0.1.0 -> 0.1.0 is not a bump"}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := buttonCopy(t, c.version, c.edits...)
			out, errs, code := cli(t, "", "diff", "button@0.1.0", f)
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", code, c.code, out, errs)
			}
			if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(c.lines, "\n") {
				t.Errorf("output:\n%s\nwant:\n%s", out, strings.Join(c.lines, "\n"))
			}
			if c.code == 1 && !strings.Contains(errs, "the changes need a") {
				t.Errorf("stderr: %s", errs)
			}
			// The same in JSON.
			out, _, jcode := cli(t, "", "diff", "--format", "json", "button@0.1.0", f)
			var r struct {
				Old, New struct{ Ref, Version string }
				Changes  []struct{ Level, Message string }
				Needs    string
				Bump     string
				OK       bool
			}
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatalf("json: %v\n%s", err, out)
			}
			if jcode != c.code || r.OK != (c.code == 0) || r.Old.Ref != "button@0.1.0" || r.New.Version != c.version || len(r.Changes) != len(c.lines)-1 {
				t.Errorf("json: exit %d %+v", jcode, r)
			}
			last := c.lines[len(c.lines)-1]
			if !strings.HasPrefix(last, "needs: "+r.Needs+";") {
				t.Errorf("json needs %q, text %q", r.Needs, last)
			}
			for i, ch := range r.Changes {
				if !strings.HasPrefix(c.lines[i], ch.Level+": "+ch.Message) {
					t.Errorf("json change %d: %s: %s; text %s", i, ch.Level, ch.Message, c.lines[i])
				}
			}
		})
	}
}

func TestDiffUsage(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(broken, []byte("key: button\n"), 0o644)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"diff", "button@0.1.0"}, 2},
		{[]string{"diff", "button@0.1.0", "nosuch"}, 2},
		{[]string{"diff", "button@9.9.9", "button"}, 2},
		{[]string{"diff", "button", "./nosuch.yaml"}, 2},
		{[]string{"diff", "--format", "xml", "button", "button"}, 2},
		{[]string{"diff", "button", broken}, 1},
	} {
		if _, errs, code := cli(t, "", c.args...); code != c.code {
			t.Errorf("%q: exit %d, want %d: %s", c.args, code, c.code, errs)
		}
	}
}

// validate compares a catalog file with the version before it in its
// folder: the embedded catalog's layout, --catalog DIR, or paths.
func TestValidateVersionBump(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "button"), 0o755)
	src, _ := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	os.WriteFile(filepath.Join(dir, "button", "0.1.0.yaml"), src, 0o644)
	patch, _ := os.ReadFile(buttonCopy(t, "0.1.1", removeAPIKey...))
	os.WriteFile(filepath.Join(dir, "button", "0.1.1.yaml"), patch, 0o644)
	// A pre-release is not what a release follows.
	pre, _ := os.ReadFile(buttonCopy(t, "0.1.1-rc.1", descriptionOnly...))
	os.WriteFile(filepath.Join(dir, "button", "0.1.1-rc.1.yaml"), pre, 0o644)
	line := ":8:10: warning version_bump_too_small: version 0.1.1 is a patch bump from 0.1.0, but its changes need a major bump (1.0.0 or later): config key api_key removed, and 1 more; see: blueprint "
	out, errs, code := cli(t, "", "--catalog", dir, "validate")
	if code != 0 || out != "button/0.1.1.yaml"+line+"--catalog "+dir+" diff button@0.1.0 button@0.1.1\n" || !strings.Contains(errs, "3 files: 0 errors, 1 warning") {
		t.Errorf("--catalog: exit %d\n%s%s", code, out, errs)
	}
	f := filepath.Join(dir, "button", "0.1.1.yaml")
	out, errs, code = cli(t, "", "validate", f)
	if code != 0 || out != f+line+"diff "+filepath.Join(dir, "button", "0.1.0.yaml")+" "+f+"\n" {
		t.Errorf("path: exit %d\n%s%s", code, out, errs)
	}
	// Given in its own folder.
	t.Chdir(filepath.Join(dir, "button"))
	out, errs, code = cli(t, "", "validate", "0.1.1.yaml")
	if code != 0 || out != "0.1.1.yaml"+line+"diff 0.1.0.yaml 0.1.1.yaml\n" {
		t.Errorf("in its folder: exit %d\n%s%s", code, out, errs)
	}
	out, _, _ = cli(t, "", "validate", "--format", "json", dir)
	var doc struct {
		Diagnostics []struct{ File, Severity, Code string }
		Warnings    int
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Warnings != 1 || len(doc.Diagnostics) != 1 ||
		doc.Diagnostics[0].Code != "version_bump_too_small" || doc.Diagnostics[0].Severity != "warning" || doc.Diagnostics[0].File != f {
		t.Errorf("json: %v %s", err, out)
	}
	// Bumped enough: no warning.
	os.Remove(f)
	os.WriteFile(filepath.Join(dir, "button", "1.0.0.yaml"), []byte(strings.Replace(string(patch), "version: 0.1.1", "version: 1.0.0", 1)), 0o644)
	if out, errs, code := cli(t, "", "--catalog", dir, "validate"); code != 0 || out != "" {
		t.Errorf("major bump: exit %d\n%s%s", code, out, errs)
	}
}
