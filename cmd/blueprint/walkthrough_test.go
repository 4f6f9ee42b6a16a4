package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The walk-through "Rakuten from scratch" in docs/authoring.md is run as
// written, so that it cannot rot: in a temporary folder (the doc's
// /tmp/walk), every sh block's heredocs write their files, and every
// console block's commands ("$ blueprint ...") run in-process, their
// output (stdout, then stderr, as a terminal shows it) compared with the
// lines under them, "..." standing for any number of lines. Its last steps
// run the shipped Rakuten vectors against the file the doc builds and diff
// it with the shipped blueprint; this test adds what a dry run cannot
// show: the vendor's answers are decided as the shipped blueprint decides.

const walkthroughHeading = "## Walk-through: Rakuten from scratch"

// walkBlock is one fenced block of the section.
type walkBlock struct {
	info  string // the fence's info string: sh or console
	line  int    // of the opening fence, in docs/authoring.md
	lines []string
}

// walkthroughBlocks returns the fenced blocks of the section.
func walkthroughBlocks(t *testing.T, doc string) []walkBlock {
	t.Helper()
	lines := strings.Split(doc, "\n")
	start := -1
	for i, l := range lines {
		if l == walkthroughHeading {
			start = i
			break
		}
	}
	if start < 0 {
		t.Fatalf("docs/authoring.md has no %q", walkthroughHeading)
	}
	if !strings.Contains(doc, "[Walk-through: Rakuten from scratch](#walk-through-rakuten-from-scratch)") {
		t.Error("the Contents line does not link the walk-through")
	}
	var blocks []walkBlock
	var cur *walkBlock
	for i := start + 1; i < len(lines); i++ {
		l := lines[i]
		if cur == nil && strings.HasPrefix(l, "## ") {
			break
		}
		if !strings.HasPrefix(l, "```") {
			if cur != nil {
				cur.lines = append(cur.lines, l)
			}
			continue
		}
		if cur != nil {
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		cur = &walkBlock{info: strings.TrimPrefix(l, "```"), line: i + 1}
	}
	if cur != nil {
		t.Fatalf("docs/authoring.md:%d: the block is not closed", cur.line)
	}
	return blocks
}

// The setup lines of the first sh block: what the test does instead is
// build nothing (the CLI runs in-process), set REPO to the repository and
// work in a temporary folder.
var walkSetup = []*regexp.Regexp{
	regexp.MustCompile(`^go build -o bin/blueprint \./cmd/blueprint && export PATH="\$PWD/bin:\$PATH"$`),
	regexp.MustCompile(`^REPO=\$PWD$`),
	regexp.MustCompile(`^rm -rf /tmp/walk && mkdir /tmp/walk && cd /tmp/walk$`),
}

var heredocRE = regexp.MustCompile(`^cat (>>?) ([A-Za-z0-9_./-]+) <<'EOF'$`)

func TestAuthoringWalkthrough(t *testing.T) {
	src, err := os.ReadFile("../../docs/authoring.md")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := walkthroughBlocks(t, string(src))
	t.Chdir(t.TempDir())

	commands, files := 0, 0
	for bi, b := range blocks {
		switch b.info {
		case "sh":
			for i := 0; i < len(b.lines); i++ {
				l := b.lines[i]
				at := b.line + 1 + i
				m := heredocRE.FindStringSubmatch(l)
				if m == nil {
					if l == "" || bi == 0 && matchesAny(walkSetup, l) {
						continue
					}
					t.Fatalf("docs/authoring.md:%d: the test cannot run %q", at, l)
				}
				if filepath.IsAbs(m[2]) || strings.Contains(m[2], "..") {
					t.Fatalf("docs/authoring.md:%d: %s is outside the work folder", at, m[2])
				}
				var body strings.Builder
				closed := false
				for i++; i < len(b.lines); i++ {
					if b.lines[i] == "EOF" {
						closed = true
						break
					}
					body.WriteString(b.lines[i] + "\n")
				}
				if !closed {
					t.Fatalf("docs/authoring.md:%d: the heredoc has no EOF", at)
				}
				mode := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
				if m[1] == ">>" {
					if _, err := os.Stat(m[2]); err != nil {
						t.Fatalf("docs/authoring.md:%d: appends to %s, which no earlier step wrote", at, m[2])
					}
					mode = os.O_WRONLY | os.O_APPEND
				}
				f, err := os.OpenFile(m[2], mode, 0o644)
				if err != nil {
					t.Fatal(err)
				}
				_, werr := f.WriteString(body.String())
				if err := f.Close(); werr != nil || err != nil {
					t.Fatalf("writing %s: %v %v", m[2], werr, err)
				}
				files++
			}
		case "console":
			for i := 0; i < len(b.lines); {
				l := b.lines[i]
				at := b.line + 1 + i
				if !strings.HasPrefix(l, "$ blueprint ") {
					t.Fatalf("docs/authoring.md:%d: expected a command ($ blueprint ...), got %q", at, l)
				}
				var want []string
				for i++; i < len(b.lines) && !strings.HasPrefix(b.lines[i], "$ "); i++ {
					want = append(want, b.lines[i])
				}
				line := strings.ReplaceAll(strings.TrimPrefix(l, "$ blueprint "), "$REPO", repo)
				out, errs, _ := cli(t, "", shellFields(line)...)
				got := strings.Split(strings.TrimRight(out+errs, "\n"), "\n")
				if !linesMatch(want, got) {
					t.Errorf("docs/authoring.md:%d: %s\nprints:\n%s\nthe doc shows:\n%s", at, l, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				commands++
			}
		default:
			t.Fatalf("docs/authoring.md:%d: a %q block: the walk-through has only sh and console blocks", b.line, b.info)
		}
	}
	if commands < 10 || files < 10 {
		t.Fatalf("ran %d commands and wrote %d files: the walk-through is not where the test looks", commands, files)
	}
	if t.Failed() {
		return
	}

	// The vendor's answers: the blueprint the doc builds decides each as
	// the shipped one does (the same outcome, attempts and message).
	built, err := filepath.Abs("rakuten/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ok := reply{200, `<response><good>1</good><bad>0</bad></response>`}
	for _, c := range []struct {
		name    string
		replies []reply
	}{
		{"accepted", []reply{ok}},
		{"no summary", []reply{{200, `<response/>`}}},
		{"400 bad mid", []reply{{400, `Bad Request`}}},
		{"access denied", []reply{{200, `<response><error>Access denied</error></response>`}}},
		{"another error", []reply{{200, `<response><error> Unknown currency </error></response>`}}},
		{"bad records", []reply{{200, `<response><good>1</good><bad>2</bad></response>`}}},
		{"500 then accepted", []reply{{500, `oops`}, ok}},
		{"429 until the attempts run out", []reply{{429, `slow down`}}},
		{"201 is not Rakuten's answer", []reply{{201, `created`}}},
		{"404", []reply{{404, `not found`}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			type result struct {
				attempts, delivered, dead int
				status                    int
				message                   string
			}
			decide := func(bp string) result {
				got, delivered, dead, letters := sendCanonical(t, affiliate{key: bp, config: []string{"mid=3456"}}, c.replies...)
				r := result{attempts: len(got), delivered: delivered, dead: dead}
				if len(letters) > 0 {
					r.status, r.message = letters[0].LastStatus, letters[0].LastError
				}
				return r
			}
			shipped, walked := decide("rakuten@0.1.0"), decide(built)
			if walked != shipped {
				t.Errorf("the walk-through's blueprint: %+v\nthe shipped one:          %+v", walked, shipped)
			}
		})
	}
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// linesMatch reports whether got is want, where a line "..." in want
// stands for any number of lines (none included).
func linesMatch(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "..." {
		for k := 0; k <= len(got); k++ {
			if linesMatch(want[1:], got[k:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && got[0] == want[0] && linesMatch(want[1:], got[1:])
}
