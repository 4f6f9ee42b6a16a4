package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The examples of README.md's quick start and of docs/conformance.md are
// run as written, so that a reader who pastes them gets what the docs say.
// (The authoring guide's walk-through has its own test: walkthrough_test.go.)

// fencedBlocks returns the fenced blocks of a Markdown file whose info
// string is info, with the line of each opening fence.
func fencedBlocks(t *testing.T, path, info string) (blocks []string, lines []int) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur *strings.Builder
	for i, l := range strings.Split(string(src), "\n") {
		switch {
		case cur == nil && l == "```"+info:
			cur = &strings.Builder{}
			lines = append(lines, i+1)
		case cur != nil && l == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(l + "\n")
		}
	}
	return blocks, lines
}

// The quick start's dry run prints what the README shows under it, and the
// two changes it suggests give the decisions it names.
func TestReadmeQuickStart(t *testing.T) {
	src, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	m := regexp.MustCompile("(?s)\necho '([^']*)' \\|\n  blueprint eval ([^\n]*) -\n```\n\nprints\n\n```\n(.*?)\n```\n").FindStringSubmatch(doc)
	if m == nil {
		t.Fatal("README.md: no quick start eval followed by what it prints")
	}
	event, args, want := m[1], append(shellFields(m[2]), "-"), m[3]
	out, errs, code := cli(t, event, append([]string{"eval"}, args...)...)
	if code != 0 || strings.TrimRight(out, "\n") != want {
		t.Errorf("README.md quick start: exit %d\n%s%s\nthe README shows:\n%s", code, out, errs, want)
	}
	for _, c := range []struct{ claim, from, to, want string }{
		{"change `\"advertising\":true` to `false`: `skip consent_denied`", `"advertising":true`, `"advertising":false`, "skip consent_denied "},
		{"remove `order_id`: `reject missing_required_field [order_id]`", `"order_id":"o-1",`, ``, "reject missing_required_field [order_id] "},
	} {
		if !strings.Contains(doc, c.claim) {
			t.Errorf("README.md no longer says %s: update this test", c.claim)
			continue
		}
		if !strings.Contains(event, c.from) {
			t.Fatalf("the quick start event has no %s", c.from)
		}
		out, errs, code := cli(t, strings.Replace(event, c.from, c.to, 1), append([]string{"eval"}, args...)...)
		if code != 0 || !strings.HasPrefix(out, c.want) {
			t.Errorf("README.md: %s: exit %d: %s%s", c.claim, code, out, errs)
		}
	}
}

// Every vector file shown in docs/conformance.md (a yaml block with a
// top-level cases key) passes as written.
func TestConformanceDocVectors(t *testing.T) {
	blocks, lines := fencedBlocks(t, "../../docs/conformance.md", "yaml")
	dir := t.TempDir()
	ran := 0
	for i, b := range blocks {
		if !regexp.MustCompile(`(?m)^cases:`).MatchString(b) {
			continue
		}
		f := filepath.Join(dir, "example.vectors.yaml")
		if err := os.WriteFile(f, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errs, code := cli(t, "", "test", f)
		if code != 0 || !strings.HasSuffix(lastLine(out), " passed, 0 failed") {
			t.Errorf("docs/conformance.md:%d: exit %d\n%s%s", lines[i], code, out, errs)
		}
		ran++
	}
	if ran < 3 {
		t.Errorf("ran %d vector files of docs/conformance.md; want 3 (the format and the two bodies that are not JSON)", ran)
	}
}
