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
	// Its commands pass (from the repository root; the one without a path,
	// every shipped vector, is TestTestShipped).
	t.Chdir("../..")
	sh, lines := fencedBlocks(t, "docs/conformance.md", "sh")
	if len(sh) == 0 {
		t.Fatal("docs/conformance.md has no sh block")
	}
	for _, l := range strings.Split(strings.TrimSpace(sh[0]), "\n") {
		cmd, _, _ := strings.Cut(l, "  #")
		args, ok := strings.CutPrefix(strings.TrimSpace(cmd), "go run ./cmd/blueprint ")
		if !ok {
			t.Fatalf("docs/conformance.md:%d: the test cannot run %q", lines[0], l)
		}
		if args == "test" {
			continue
		}
		if out, errs, code := cli(t, "", shellFields(args)...); code != 0 {
			t.Errorf("docs/conformance.md:%d: %s: exit %d\n%s%s", lines[0], l, code, out, errs)
		}
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

// docSection returns the text of a Markdown section, from its heading to
// the next heading of the same level.
func docSection(t *testing.T, path, heading string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s has no %q", path, heading)
	}
	s := doc[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	return s
}

// sectionBlocks splits a section into its fenced blocks: the info string,
// the text, and the paragraph before each.
type sectionBlock struct{ info, text, lead string }

func sectionBlocks(s string) []sectionBlock {
	var out []sectionBlock
	parts := strings.Split(s, "\n```")
	for i := 1; i+1 < len(parts); i += 2 {
		info, text, _ := strings.Cut(parts[i], "\n")
		lead := strings.TrimRight(parts[i-1], "\n")
		if k := strings.LastIndex(lead, "\n\n"); k >= 0 {
			lead = lead[k+2:]
		}
		out = append(out, sectionBlock{info, text + "\n", lead})
	}
	return out
}

var goRunRE = regexp.MustCompile(`^(?:echo '([^']*)' \| )?go run \./cmd/blueprint (.*)$`)

// runConsole runs a block of "$ go run ./cmd/blueprint ..." commands (an
// echo piped into one too, continued with \) in-process and compares each
// one's output (stdout, then stderr) with the lines under it.
func runConsole(t *testing.T, where, block string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(block, "\n"), "\n")
	for i := 0; i < len(lines); {
		if !strings.HasPrefix(lines[i], "$ ") {
			t.Fatalf("%s: expected a command ($ ...), got %q", where, lines[i])
		}
		cmd := strings.TrimPrefix(lines[i], "$ ")
		for i++; strings.HasSuffix(cmd, `\`) && i < len(lines); i++ {
			cmd = strings.TrimSuffix(cmd, `\`) + strings.TrimLeft(lines[i], " ")
		}
		m := goRunRE.FindStringSubmatch(cmd)
		if m == nil {
			t.Fatalf("%s: the test cannot run %q", where, cmd)
		}
		var want []string
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "$ "); i++ {
			want = append(want, lines[i])
		}
		stdin := ""
		if m[1] != "" {
			stdin = m[1] + "\n"
		}
		out, errs, _ := cli(t, stdin, shellFields(m[2])...)
		got := strings.Split(strings.TrimRight(out+errs, "\n"), "\n")
		if !linesMatch(want, got) {
			t.Errorf("%s: %s\nprints:\n%s\nthe doc shows:\n%s", where, cmd, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// The authoring guide's overlay walk-through, step by step: the overlay,
// its validation (and the typo it quotes), the dry run, the override of
// step 4 and the vectors of step 5 (with the change step 5 asks for when
// step 4 is applied).
func TestOverlayWalkthrough(t *testing.T) {
	const doc = "../../docs/authoring.md"
	section := docSection(t, doc, "## Walk-through: a custom event in an overlay")
	blocks := sectionBlocks(section)
	t.Chdir(t.TempDir())
	var overlay, override, vectors string
	consoles := 0
	for _, b := range blocks {
		switch {
		case b.info == "yaml" && strings.Contains(b.lead, "**1. Write the overlay**"):
			overlay = b.text
			os.WriteFile("my-button.yaml", []byte(overlay), 0o644)
		case b.info == "yaml" && strings.Contains(b.lead, "**4. Change what you need.**"):
			override = b.text
		case b.info == "yaml" && strings.Contains(b.lead, "**5. Pin it with vectors**"):
			vectors = b.text
			os.WriteFile("my-button.vectors.yaml", []byte(vectors), 0o644)
		case b.info == "":
			runConsole(t, "docs/authoring.md, the overlay walk-through", b.text)
			consoles++
		default:
			t.Fatalf("docs/authoring.md: the overlay walk-through has a %q block after %q", b.info, b.lead)
		}
	}
	if overlay == "" || override == "" || vectors == "" || consoles != 3 {
		t.Fatalf("the walk-through's steps are not where the test looks (%d console blocks)", consoles)
	}
	// The typo it quotes.
	m := regexp.MustCompile("`request: activty` gives `([^`]*)`").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the walk-through no longer quotes the typo request: activty")
	}
	os.WriteFile("my-button.yaml", []byte(strings.Replace(overlay, "request: activity", "request: activty", 1)), 0o644)
	if out, _, code := cli(t, "", "validate", "my-button.yaml"); code != 1 || strings.TrimSpace(out) != m[1] {
		t.Errorf("the typo: exit %d\n%s\nthe doc says:\n%s", code, out, m[1])
	}
	// Step 4 replaces the overlay's events; step 5's vector then expects
	// value {id: S-1}.
	head, _, _ := strings.Cut(overlay, "events:\n")
	os.WriteFile("my-button.yaml", []byte(head+override), 0o644)
	os.WriteFile("my-button.vectors.yaml", []byte(strings.Replace(vectors, "value: {sku: S-1}", "value: {id: S-1}", 1)), 0o644)
	if out, errs, code := cli(t, "", "test", "my-button.vectors.yaml"); code != 0 || lastLine(out) != "1 passed, 0 failed" {
		t.Errorf("step 4 with step 5's vector changed as it says: exit %d\n%s%s", code, out, errs)
	}
}

// The diff example of the guide's Versions section (and the README's,
// the same command): the sed it runs, then diff's output, stderr and exit.
func TestVersionsDiffExample(t *testing.T) {
	blocks := sectionBlocks(docSection(t, "../../docs/authoring.md", "## Versions"))
	if len(blocks) < 2 || blocks[0].info != "sh" || blocks[1].info != "" {
		t.Fatal("docs/authoring.md#versions: no sh block followed by its output")
	}
	cmds := strings.Split(strings.TrimSpace(blocks[0].text), "\n")
	const sed = `sed -e 's/^version: 0.1.0/version: 0.1.1/' -e 's/^      purchase_date:$/      date:/' blueprints/button/0.1.0.yaml > /tmp/button-0.1.1.yaml`
	if len(cmds) != 2 || cmds[0] != sed || cmds[1] != "go run ./cmd/blueprint diff button@0.1.0 /tmp/button-0.1.1.yaml" {
		t.Fatalf("docs/authoring.md#versions runs other commands than this test does:\n%s", blocks[0].text)
	}
	src, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := regexp.MustCompile(`(?m)^version: 0\.1\.0`).ReplaceAllString(string(src), "version: 0.1.1")
	s = regexp.MustCompile(`(?m)^      purchase_date:$`).ReplaceAllString(s, "      date:")
	f := filepath.Join(t.TempDir(), "button-0.1.1.yaml")
	os.WriteFile(f, []byte(s), 0o644)
	out, errs, code := cli(t, "", "diff", "button@0.1.0", f)
	if out != blocks[1].text || code != 1 {
		t.Errorf("diff: exit %d\n%s\nthe doc shows:\n%s", code, out, blocks[1].text)
	}
	if m := regexp.MustCompile("on stderr `([^`]*)`").FindStringSubmatch(blocks[1].lead); m == nil || !strings.Contains(errs, m[1]) {
		t.Errorf("diff's stderr %q; the doc says %v", errs, m)
	}
	// The README shows the same command and what it prints.
	readme, _ := os.ReadFile("../../README.md")
	want := sed + "\nblueprint diff button@0.1.0 /tmp/button-0.1.1.yaml\n"
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		want += "#    -> " + l + "\n"
	}
	want += "#    exit 1, and on stderr: " + strings.TrimPrefix(strings.TrimSpace(errs), "blueprint: ") + "\n"
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show, as it runs:\n%s", want)
	}
}

// The vendor contracts (docs/KEY-0.1.0.md) are written by hand, before
// their blueprints; "blueprint docs KEY@0.1.0" is generated from the
// blueprint. Every name a contract's tables start a row with (a config
// key, a vendor field, a value) is in the generated reference, so that
// neither names a field the other does not have.
func TestContractNamesInGeneratedDocs(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*-0.1.0.md")
	if len(files) < 8 {
		t.Fatalf("%d contracts", len(files))
	}
	rowRE := regexp.MustCompile("(?m)^\\| `([A-Za-z0-9_.\\[\\]]+)` \\|")
	for _, path := range files {
		name := filepath.Base(path)
		key := strings.TrimSuffix(name, "-0.1.0.md")
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, errs, code := cli(t, "", "docs", key+"@0.1.0")
		if code != 0 {
			t.Fatalf("docs %s: exit %d: %s", key, code, errs)
		}
		rows := rowRE.FindAllStringSubmatch(string(src), -1)
		if len(rows) < 10 {
			t.Errorf("%s: %d table rows; the scan is broken", name, len(rows))
		}
		for _, r := range rows {
			if !strings.Contains(out, r[1]) {
				t.Errorf("%s names %s, which blueprint docs %s@0.1.0 does not", name, r[1], key)
			}
		}
	}
}
