package syntax

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// scannedDepth is the nesting scanDepth sees in src.
func scannedDepth(src []byte) int {
	d := 0
	for scanDepth(src, d) >= 0 {
		d++
	}
	return d
}

// treeDepth is the nesting of yaml.v3's trees (mappings and lists inside
// each other; the deepest of the documents), or -1 when yaml.v3 does not
// read src.
func treeDepth(src []byte) int {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	deepest := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return deepest
		}
		if err != nil {
			return -1
		}
		deepest = max(deepest, nodeDepth(&doc))
	}
}

func nodeDepth(n *yaml.Node) int {
	var depth func(n *yaml.Node) int
	depth = func(n *yaml.Node) int {
		d := 0
		for _, c := range n.Content {
			d = max(d, depth(c))
		}
		if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
			d++
		}
		return d
	}
	return depth(n)
}

// The pre-scan counts nesting as the YAML tree has it, on every YAML file
// of the repository: it neither refuses a file the tree would accept nor
// lets a deeper one through. (The shipped files nest at most 11 deep.)
func TestScanDepthShippedFiles(t *testing.T) {
	n, deepest := 0, 0
	for _, dir := range []string{"../../blueprints", "../../engine/testdata", "../../examples", "../../conformance"} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				return err
			}
			src, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want := treeDepth(src)
			if want < 0 {
				return nil // not YAML on purpose (golden error cases)
			}
			n++
			if !strings.Contains(p, "testdata") {
				deepest = max(deepest, want) // what shipped files need
			}
			if got := scannedDepth(src); got != want {
				t.Errorf("%s: the scan sees %d levels, the tree has %d", p, got, want)
			}
			return nil
		})
	}
	if n < 20 {
		t.Fatalf("only %d YAML files read; the walk is broken", n)
	}
	if deepest*4 > MaxDepth {
		t.Errorf("a shipped file nests %d deep: the limit (%d) leaves too little room", deepest, MaxDepth)
	}
}

// forms are the ways YAML nests, as the scan must count them.
var forms = []string{
	"a: 1",
	"- a",
	"[a, [b, {c: d}]]",
	"a:\n- b\n- c\nd: e",
	"a:\n  - b:\n    - c\n  - d",
	"- - - a\n  - b\n- c",
	"- a: b\n  c:\n    d: e\n- f",
	"? a\n: b",
	"? - a\n  - b\n: - c",
	"a: [b: c, [d: {e: f}]]",
	"a: [\n  [b,\n   c], # ]]]\n  {d: [e]}\n]",
	"a: 'x [[[ # '\nb: \"y {{ \\\" [\"\nc: it's [ok\n",
	"a: |\n  [[[[\n  - - -\n  b: c\nd: >-\n   {{{\ne: f",
	"a: plain\n  continued - [ [ [\n  b not a key\nc: d",
	"a:\n  b:\n    c: 1\n[x, [y]]: z",
	"- plain\n  - not a list\n- b",
	"# [[[[ a comment\na: b # [[[\n",
	"a: &x\n  b: !!str c\nd: !!map {e: f}",
	"\"a\": {\"b\": [\"c\", {\"d\": []}]}",
	"a: [b, \"c\n  [[ d\", 'e\n  {{']",
	"--- \na: [b]\n...\n",
	"a:\n  b:\n    c:\n      d: []\n  e: {}",
	"[a, b]: c",
	"- [a, b]\n- {c: [d]}",
	"a: [x]  # trailing\nb:\n  - [y, [z]]",
	"{a: [b: {c: d}], e: f}",
	"a:\tb\nc:\n- d",
	"- |\n  x\n- >\n  [y\n- z",
	"key: \"multi\n  line\" \nnext:\n  - a",
	"\ufeffa:\n  b: c",
	"a:\r\n  b:\r  - c\r\n",
	// Found by FuzzScanDepth: how yaml.v3 reads odd corners.
	"[[0]:] ", "[?0]", "[0:]", "!:\n- &0:", "[!0[ ]", "[#0[\n]", "  0:\n\r  0:",
}

func TestScanDepthForms(t *testing.T) {
	for _, src := range forms {
		want := treeDepth([]byte(src))
		if want < 0 {
			t.Errorf("%q is not YAML: fix the test", src)
			continue
		}
		if got := scannedDepth([]byte(src)); got != want {
			t.Errorf("%q: the scan sees %d levels, the tree has %d", src, got, want)
		}
	}
}

// Random trees written in random styles: the scan agrees with yaml.v3.
func TestScanDepthRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		var b bytes.Buffer
		g := gen{r: r, b: &b}
		g.node(0, r.IntN(12)+1, 0)
		src := b.Bytes()
		want := treeDepth(src)
		if want < 0 {
			t.Fatalf("case %d: the generator wrote invalid YAML:\n%s", i, src)
		}
		if got := scannedDepth(src); got != want {
			t.Fatalf("case %d: the scan sees %d levels, the tree has %d:\n%s", i, got, want, src)
		}
	}
}

// gen writes random YAML.
type gen struct {
	r *rand.Rand
	b *bytes.Buffer
}

var scalars = []string{"a", "b c", "'q [ # '", "\"d \\\" {\"", "1", "it's", "x-y", "a:b", "[", "#x"}

func (g *gen) scalar(flow bool) {
	s := scalars[g.r.IntN(len(scalars))]
	if s == "[" || s == "#x" || (flow && (s == "it's" || s == "x-y")) {
		s = `"` + s + `"`
	}
	g.b.WriteString(s)
}

// node writes a value at indentation ind, nesting depth levels. mode: 0 on
// a new line, 1 after "- ", 2 after "key: ".
func (g *gen) node(ind, depth, mode int) {
	if depth == 0 {
		if mode > 0 && g.r.IntN(4) == 0 {
			// A block scalar whose lines look nested.
			g.b.WriteString("|")
			for _, l := range []string{"[x: {y", "- - z", "w: v"} {
				fmt.Fprintf(g.b, "\n%s%s", strings.Repeat(" ", ind), l)
			}
			return
		}
		g.scalar(false)
		return
	}
	if g.r.IntN(4) == 0 {
		g.flow(depth)
		return
	}
	if mode == 2 {
		mode = 0 // a block collection after "key:" starts on the next line
	}
	pad := strings.Repeat(" ", ind)
	n := g.r.IntN(3) + 1
	if g.r.IntN(2) == 0 { // a list
		for i := range n {
			if i > 0 || mode == 0 {
				g.b.WriteString("\n" + pad)
			}
			g.b.WriteString("- ")
			d := g.r.IntN(depth)
			if i == 0 {
				d = depth - 1
			}
			g.node(ind+2, d, 1)
		}
		return
	}
	for i := range n {
		if i > 0 || mode == 0 {
			g.b.WriteString("\n" + pad)
		}
		fmt.Fprintf(g.b, "k%d:", i)
		d := g.r.IntN(depth)
		if i == 0 {
			d = depth - 1
		}
		if d > 0 && g.r.IntN(3) == 0 {
			// A list at the column of its key.
			for range g.r.IntN(2) + 1 {
				g.b.WriteString("\n" + pad + "- ")
				g.node(ind+2, d-1, 1)
			}
			continue
		}
		g.b.WriteString(" ")
		g.node(ind+2, d, 2)
	}
}

func (g *gen) flow(depth int) {
	if depth == 0 {
		g.scalar(true)
		return
	}
	n := g.r.IntN(3) + 1
	switch g.r.IntN(3) {
	case 0:
		g.b.WriteString("[")
		for i := range n {
			if i > 0 {
				g.b.WriteString(", ")
			}
			if g.r.IntN(3) == 0 && depth > 1 {
				// a single-pair mapping inside a list
				fmt.Fprintf(g.b, "p%d: ", i)
				g.flow(depth - 2)
				continue
			}
			g.flow(g.r.IntN(depth))
		}
		g.b.WriteString("]")
	default:
		g.b.WriteString("{")
		for i := range n {
			if i > 0 {
				g.b.WriteString(",\n  ")
			}
			fmt.Fprintf(g.b, "\"f%d\": ", i)
			g.flow(g.r.IntN(depth))
		}
		g.b.WriteString("}")
	}
}

// FuzzScanDepth: on whatever yaml.v3 reads, the scan counts the nesting
// of its tree.
func FuzzScanDepth(f *testing.F) {
	for _, src := range forms {
		f.Add([]byte(src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if !utf8.Valid(src) || strayBOM(src) >= 0 {
			// Parse refuses it first (yaml.v3 would read UTF-16, or skip
			// a character after a second byte order mark)
			return
		}
		got := scannedDepth(src)
		if want := treeDepth(src); want >= 0 && got != want {
			t.Fatalf("%q: the scan sees %d levels, the tree has %d", src, got, want)
		}
	})
}

// BenchmarkScanDepth: the pre-scan of the Button blueprint, a cost every
// compile pays (BenchmarkCompile of the same file: about 2 ms).
func BenchmarkScanDepth(b *testing.B) {
	src, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if scanDepth(src, MaxDepth) >= 0 {
			b.Fatal("too deep")
		}
	}
}
