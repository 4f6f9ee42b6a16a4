package syntax

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/internal/boundtest"
)

// nested builds YAML nesting n levels (mappings and lists, the top level
// included) in one style, and says where level MaxDepth+1 opens.
type nested struct {
	name  string
	build func(n int) string
	// at is the line and column of the token opening level MaxDepth+1 in
	// build(MaxDepth+1).
	line, col int
}

var styles = []nested{
	{"flow lists under a key", func(n int) string {
		return "key: x\nconst: " + strings.Repeat("[", n-1) + strings.Repeat("]", n-1) + "\n"
	}, 2, 8 + MaxDepth - 1},
	{"flow mappings", func(n int) string {
		return strings.Repeat("{a: ", n) + "1" + strings.Repeat("}", n) + "\n"
	}, 1, 1 + 4*MaxDepth},
	{"block mappings", func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat("  ", i), i)
		}
		return b.String()
	}, MaxDepth + 1, 2*MaxDepth + 1},
	{"compact lists", func(n int) string {
		return strings.Repeat("- ", n) + "x\n"
	}, 1, 2*MaxDepth + 1},
	{"lists at the column of their key", func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i += 2 {
			pad := strings.Repeat("  ", i/2)
			if i+1 < n {
				fmt.Fprintf(&b, "%sk:\n%s- ", pad, pad)
			} else {
				fmt.Fprintf(&b, "%sk: x", pad)
			}
			b.WriteString("\n")
		}
		return strings.ReplaceAll(b.String(), "- \n", "-\n")
	}, MaxDepth + 1, MaxDepth + 1},
	{"lists of single-pair mappings", func(n int) string {
		return "k: " + strings.Repeat("[a: ", (n-1)/2) + strings.Repeat("[", (n-1)%2) + "x" + strings.Repeat("]", (n-1)%2) + strings.Repeat("]", (n-1)/2) + "\n"
	}, 1, 3 + 4*(MaxDepth/2-1) + 2},
}

// At the limit a file is read; one level more is refused before any parser
// reads it, at the token where the limit is crossed.
func TestDepthLimit(t *testing.T) {
	for _, st := range styles {
		t.Run(st.name, func(t *testing.T) {
			at := st.build(MaxDepth)
			if d := treeDepth([]byte(at)); d != MaxDepth {
				t.Fatalf("the builder nests %d levels, not %d:\n%s", d, MaxDepth, at)
			}
			if _, ds := Parse("at.yaml", []byte(at)); len(ds) != 0 {
				t.Errorf("%d levels refused: %v", MaxDepth, ds)
			}
			past := st.build(MaxDepth + 1)
			if d := treeDepth([]byte(past)); d != MaxDepth+1 {
				t.Fatalf("the builder nests %d levels, not %d", d, MaxDepth+1)
			}
			_, ds := Parse("past.yaml", []byte(past))
			want := fmt.Sprintf("past.yaml:%d:%d: error too_deep: nesting is deeper than 64 levels: a file holds at most 64 mappings and lists inside each other, the top level included", st.line, st.col)
			if len(ds) != 1 || ds[0].String() != want {
				t.Errorf("diagnostics:\n%v\nwant:\n%s", ds, want)
			}
			// The tree check refuses the same, at the same place.
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(past), &doc); err != nil {
				t.Fatal(err)
			}
			var cds = ds[:0:0]
			check("past.yaml", doc.Content[0], 0, &cds)
			if len(cds) != 1 || cds[0].String() != want {
				t.Errorf("the tree check says:\n%v\nwant:\n%s", cds, want)
			}
		})
	}
}

// Finding 7 of issue #11: after yaml.v3's syntax error, goccy/go-yaml
// re-read the file to place the error, with no depth limit. 300,000 [ under
// a key ran for over 60 s and 13 GB; depth 100,000 in a 200 KB vector file
// ran out of memory under 4 GB. Now the pre-scan refuses them at once.
func TestDeepInputRefusedBeforeParsing(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		line, col int
	}{
		{"300,000 [ under const", "key: x\nconst: " + strings.Repeat("[", 300_000), 2, 8 + MaxDepth - 1},
		{"300,000 - on a line", strings.Repeat("- ", 300_000), 1, 2*MaxDepth + 1},
		{"200 KB vector file, event 100,000 deep", "blueprint: button\ncases:\n- name: deep\n  event: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000), 4, 10 + MaxDepth - 3},
		{"40,000 [ then an error", strings.Repeat("[", 40_000) + "\n\t@", 1, MaxDepth + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
				_, ds := Parse("deep.yaml", []byte(tt.src))
				if len(ds) != 1 || ds[0].Code != "too_deep" || ds[0].Line != tt.line || ds[0].Col != tt.col {
					t.Errorf("diagnostics: %v; want too_deep at %d:%d", ds, tt.line, tt.col)
				}
			})
		})
	}
}

// The position finder never lets goccy's parser recurse past the limit,
// even on text the pre-scan reads as shallower than goccy does.
func TestLocateBounded(t *testing.T) {
	boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
		for _, src := range []string{
			"a: " + strings.Repeat("[", 100_000),  // was over 256 MiB in 4 s
			strings.Repeat("- ", 100_000) + "x\n", // was over 512 MiB in 16 s
		} {
			if _, _, _, ok := locate([]byte(src)); ok {
				t.Errorf("goccy placed an error in text nested 100,000 deep (%.10q...): it parsed it", src)
			}
		}
		if l, c, _, ok := locate([]byte("a: " + strings.Repeat("[", MaxDepth) + "\n\t")); !ok || l != 1 {
			t.Errorf("at the limit goccy is asked: %d:%d %v", l, c, ok)
		}
	})
}

// Long lines and scalars are bounded by the size limit: a file of one
// 1 MiB line is read in bounded time and memory, also when its syntax
// error makes goccy re-read it. (Text of a million tokens costs each parser
// about a second and a few hundred MB, linear in the size; not run here.)
func TestLongLinesBounded(t *testing.T) {
	long := strings.Repeat("x", MaxFileSize-len("a: \n"))
	for _, tt := range []struct{ name, src, code string }{
		{"plain scalar", "a: " + long + "\n", ""},
		{"unclosed quote", "a: \"" + long[1:] + "\n", "yaml_syntax"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.src) > MaxFileSize {
				t.Fatalf("%d bytes: over the limit", len(tt.src))
			}
			boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
				_, ds := Parse("long.yaml", []byte(tt.src))
				switch {
				case tt.code == "" && len(ds) != 0:
					t.Errorf("diagnostics: %v", ds)
				case tt.code != "" && (len(ds) != 1 || ds[0].Code != tt.code):
					t.Errorf("diagnostics: %v; want %s", ds, tt.code)
				}
			})
		})
	}
}

// Anchors and aliases are refused and never expanded (yaml.v3 keeps an
// alias as a node; nothing here decodes into Go values): a "billion
// laughs" file is three errors and no memory.
func TestAliasesNotExpanded(t *testing.T) {
	var b strings.Builder
	b.WriteString("l0: &l0 [" + strings.Repeat("x,", 9) + "x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [%s*l%d]\n", i, i, strings.Repeat(fmt.Sprintf("*l%d,", i-1), 9), i-1)
	}
	boundtest.Run(t, 60*time.Second, 64, func(t *testing.T) {
		f, ds := Parse("laughs.yaml", []byte(b.String()))
		codes := map[string]int{}
		for _, d := range ds {
			codes[d.Code]++
		}
		if codes["yaml_anchor"] != 10 || codes["yaml_alias"] != 90 || len(ds) != 100 {
			t.Errorf("diagnostics: %v", codes)
		}
		if v := Value(f.Root).(map[string]any)["l9"].([]any); len(v) != 10 || v[0] != nil {
			t.Errorf("an alias was expanded: %v", v)
		}
	})
}

// ParseData (vector files) expands anchors, aliases and merge keys, within
// a bound: a "billion laughs" file is one yaml_alias error and bounded
// memory; a merge key's own keys win over merged ones.
func TestParseDataExpandsAliases(t *testing.T) {
	f, ds := ParseData("v.yaml", []byte("base: &b {a: 1, b: 2}\nuse: *b\nmerged: {<<: *b, b: 3, c: 4}\n"), MaxFileSize)
	if len(ds) != 0 {
		t.Fatal(ds)
	}
	got := fmt.Sprint(Value(f.Root))
	if want := "map[base:map[a:1 b:2] merged:map[a:1 b:3 c:4] use:map[a:1 b:2]]"; got != want {
		t.Errorf("expanded: %s, want %s", got, want)
	}
	var b strings.Builder
	b.WriteString("l0: &l0 [" + strings.Repeat("x,", 9) + "x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "l%d: &l%d [%s*l%d]\n", i, i, strings.Repeat(fmt.Sprintf("*l%d,", i-1), 9), i-1)
	}
	boundtest.Run(t, 60*time.Second, 128, func(t *testing.T) {
		_, ds := ParseData("laughs.yaml", []byte(b.String()), MaxFileSize)
		if len(ds) != 1 || ds[0].Code != "yaml_alias" {
			t.Errorf("diagnostics: %v", ds)
		}
	})
	// Blueprints (Parse) still refuse them.
	if _, ds := Parse("bp.yaml", []byte("base: &b {a: 1}\nuse: *b\n")); len(ds) != 2 {
		t.Errorf("Parse: %v", ds)
	}
}

// A byte order mark is read only as a file's first character. yaml.v3
// skips a character after a second mark at the start of a line (the b of
// the second case), so the nesting pre-scan and the parser would disagree:
// CI's FuzzScanDepth found "\ufeff\ufeff!:". Such a file is refused at the
// mark, whatever the mark's place.
func TestStrayBOM(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"\ufeffname: x\n", ""},
		{"\ufeff\ufeffa:\nb: [[[[1]]]]\n", "b.yaml:1:2: error stray_bom"},
		{"a: 1\n\ufeffb: 2\n", "b.yaml:2:1: error stray_bom"},
		{"a: \"x\ufeff\"\n", "b.yaml:1:6: error stray_bom"},
	} {
		_, ds := Parse("b.yaml", []byte(tt.src))
		if tt.want == "" {
			if len(ds) != 0 {
				t.Errorf("%q: %v", tt.src, ds)
			}
			continue
		}
		if len(ds) != 1 || !strings.HasPrefix(ds[0].String(), tt.want+": ") {
			t.Errorf("%q: %v, want %s", tt.src, ds, tt.want)
		}
	}
}
