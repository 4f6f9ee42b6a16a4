package main

import (
	"encoding/json"
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

// The canonical examples of the vendor contracts (docs/KEY-0.1.0.md, the
// section "Canonical example(s)") are what eval gives for the events they
// name, with the config they give: the method and URL, each header shown
// (secrets as ***), and the body, byte for byte.
func TestContractCanonicalExamples(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*-0.1.0.md")
	configRE := regexp.MustCompile("Config: (.*?)\\.(?: |\n|$)")
	pairRE := regexp.MustCompile("`([a-z_]+=[^`]*)`")
	variantRE := regexp.MustCompile("variant `([a-z_]+)`")
	eventRE := regexp.MustCompile("`(\\{\"[^`]*\\})`")
	requestRE := regexp.MustCompile(`^(GET|POST|PUT|PATCH|DELETE) (\S+)$`)
	common, err := os.ReadFile("../../docs/vendors-common.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []string{canonicalOrder, canonicalPage} {
		if !strings.Contains(string(common), "```json\n"+ev+"\n```\n") {
			t.Errorf("docs/vendors-common.md does not show the canonical event the tests use:\n%s", ev)
		}
	}
	checked := 0
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(src)
		start := regexp.MustCompile(`(?m)^## Canonical examples?\n`).FindStringIndex(doc)
		if start == nil {
			continue // Button's contract has its vectors instead
		}
		section := doc[start[1]:]
		if end := strings.Index(section, "\n## "); end >= 0 {
			section = section[:end]
		}
		name := filepath.Base(path)
		key := strings.TrimSuffix(name, "-0.1.0.md")
		cm := configRE.FindStringSubmatch(section)
		if cm == nil {
			t.Errorf("%s: the canonical examples give no Config:", name)
			continue
		}
		var config []string
		for _, p := range pairRE.FindAllStringSubmatch(cm[1], -1) {
			config = append(config, "--config", p[1])
		}
		parts := strings.Split(section, "```\n")
		for i := 1; i+1 < len(parts); i += 2 {
			lead, block := strings.TrimRight(parts[i-1], "\n"), strings.TrimSuffix(parts[i], "\n")
			if k := strings.LastIndex(lead, "\n\n"); k >= 0 && i > 1 {
				lead = lead[k:]
			}
			var event string
			switch {
			case strings.Contains(lead, "appended to `products`"):
				p := eventRE.FindStringSubmatch(lead)
				if p == nil {
					t.Fatalf("%s: no product in %q", name, lead)
				}
				event = strings.Replace(canonicalOrder, `"quantity":2}]`, `"quantity":2},`+p[1]+`]`, 1)
			case eventRE.MatchString(lead):
				event = eventRE.FindStringSubmatch(lead)[1]
			case strings.Contains(lead, "**The canonical event**"):
				event = canonicalOrder
			case strings.Contains(lead, "**The canonical page view**"):
				event = canonicalPage
			default:
				t.Errorf("%s: which event does the example after %q show?", name, lead)
				continue
			}
			args := append([]string{"eval", "--blueprint", key + "@0.1.0", "--format", "json"}, config...)
			if v := variantRE.FindStringSubmatch(lead); v != nil {
				args = append(args, "--variant", v[1])
			}
			out, errs, code := cli(t, event, append(args, "-")...)
			var res struct {
				Outcome  string
				Warnings []string
				Requests []struct {
					Method, URL string
					Headers     map[string]string
					Body        json.RawMessage
				}
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Outcome != "deliver" || len(res.Requests) != 1 {
				t.Errorf("%s: %q: exit %d, %v\n%s%s", name, args, code, err, out, errs)
				continue
			}
			if strings.Contains(lead, "warnings `[]`") && len(res.Warnings) != 0 {
				t.Errorf("%s: warnings %v, the contract says none", name, res.Warnings)
			}
			req := res.Requests[0]
			lines := strings.Split(block, "\n")
			body := lines[len(lines)-1]
			if m := requestRE.FindStringSubmatch(lines[0]); m != nil {
				if m[1] != req.Method || m[2] != req.URL {
					t.Errorf("%s: eval sends %s %s\nthe contract shows %s", name, req.Method, req.URL, lines[0])
				}
				for _, l := range lines[1:] {
					if l == "" {
						break
					}
					k, v, _ := strings.Cut(l, ": ")
					if req.Headers[k] != v {
						t.Errorf("%s: header %s is %q; the contract shows %q", name, k, req.Headers[k], v)
					}
				}
			} else if len(lines) != 1 {
				t.Errorf("%s: an example that is neither a request nor a body:\n%s", name, block)
				continue
			}
			got := string(req.Body)
			if s := ""; json.Unmarshal(req.Body, &s) == nil {
				got = s // a body that is not JSON
			}
			checked++
			if req.Method == "GET" {
				continue // the query is the body, checked with the URL
			}
			if got != body {
				t.Errorf("%s: eval's body\n%s\nthe contract shows\n%s", name, got, body)
			}
		}
	}
	if checked < 11 {
		t.Errorf("checked %d canonical examples; the contracts hold more", checked)
	}
}
