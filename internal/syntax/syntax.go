// Package syntax reads blueprint and vector YAML into yaml.v3 nodes, keeping
// every node's line and column, and refuses what the blueprint language does
// not allow: files over the size limit, several documents, duplicate keys,
// anchors, aliases, merge keys, custom tags and tabs used as indentation.
package syntax

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	goyaml "github.com/goccy/go-yaml"
	golexer "github.com/goccy/go-yaml/lexer"
	goparser "github.com/goccy/go-yaml/parser"
	gotoken "github.com/goccy/go-yaml/token"
	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
)

// MaxFileSize is the largest YAML file the compiler reads (1 MiB).
const MaxFileSize = 1 << 20

// MaxVectorFileSize is the largest conformance vector file read (16 MiB):
// a vector file must be able to hold an event past the runtime's default
// event size limit (1 MiB), to test that such an event is invalid_event.
const MaxVectorFileSize = 16 << 20

// sizeText writes a size limit for messages: "1 MiB", "16 MiB".
func sizeText(n int) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// MaxDepth is the deepest nesting a YAML file may hold: at most 64 mappings
// and lists inside each other, the top-level mapping included (the limit
// events have at run time). It is checked on the text before any parser
// reads it (scanDepth), and on the node tree after.
const MaxDepth = 64

// File is one parsed YAML file.
type File struct {
	Name string
	Src  []byte
	// Root is the content of the single document (nil for an empty file).
	Root *yaml.Node
}

// Pos returns the position of n in file.
func Pos(file string, n *yaml.Node) diag.Pos {
	if n == nil {
		return diag.Pos{File: file}
	}
	return diag.Pos{File: file, Line: n.Line, Col: n.Column}
}

// Parse reads src as one YAML document. It returns the file and every
// problem found; on a syntax error Root is nil.
func Parse(name string, src []byte) (*File, diag.List) { return ParseMax(name, src, MaxFileSize) }

// ParseMax is Parse with a size limit of max bytes (MaxVectorFileSize for
// vector files).
func ParseMax(name string, src []byte, max int) (*File, diag.List) {
	return parse(name, src, max, false)
}

// ParseData is ParseMax for data files (conformance vectors), which are
// plain YAML to their authors: anchors, aliases and merge keys (<<) are
// allowed there and expanded, so the tree returned holds none of them and
// every other rule applies to the expanded tree. The expansion is bounded
// (maxExpandedNodes beyond the file's own nodes): past it, yaml_alias.
func ParseData(name string, src []byte, max int) (*File, diag.List) {
	return parse(name, src, max, true)
}

// maxExpandedNodes bounds what aliases may add to a data file's tree.
const maxExpandedNodes = 1 << 17

func parse(name string, src []byte, max int, data bool) (*File, diag.List) {
	f := &File{Name: name, Src: src}
	var ds diag.List
	if len(src) > max {
		ds.Errorf(diag.Pos{File: name, Line: 1, Col: 1}, "file_too_large",
			"file is %d bytes; the limit is %d bytes (%s)", len(src), max, sizeText(max))
		return f, ds
	}
	if !utf8.Valid(src) {
		line, col := invalidUTF8(src)
		ds.Errorf(diag.Pos{File: name, Line: line, Col: col}, "invalid_utf8", "file is not valid UTF-8")
		return f, ds
	}
	if at := strayBOM(src); at >= 0 {
		line, col := lineCol(src, at)
		ds.Errorf(diag.Pos{File: name, Line: line, Col: col}, "stray_bom",
			"a byte order mark (U+FEFF) may only be the first character of a file; in a string write it as \"\\uFEFF\"")
		return f, ds
	}
	if at := scanDepth(src, MaxDepth); at >= 0 {
		line, col := lineCol(src, at)
		ds.Errorf(diag.Pos{File: name, Line: line, Col: col}, "too_deep", "%s", tooDeepMsg)
		return f, ds
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return f, ds // empty file: the caller reports what it needs
		}
		ds = append(ds, syntaxError(name, src, err))
		return f, ds
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		ds.Errorf(diag.Pos{File: name, Line: next.Line, Col: next.Column}, "multiple_documents",
			"a file holds one YAML document; a second one starts here")
	case !errors.Is(err, io.EOF):
		ds = append(ds, syntaxError(name, src, err))
	}
	if len(doc.Content) == 1 {
		f.Root = doc.Content[0]
	}
	if data && f.Root != nil {
		if n, aliased := countNodes(f.Root); aliased {
			e := &expander{left: n + maxExpandedNodes, active: map[*yaml.Node]bool{}}
			root := e.node(f.Root)
			if e.err != "" {
				ds.Errorf(Pos(name, e.at), "yaml_alias", "%s", e.err)
				return f, ds
			}
			f.Root = root
		}
	}
	check(name, f.Root, 0, &ds)
	return f, ds
}

// countNodes counts the nodes of the tree n as written, and tells whether
// it holds an alias, an anchor or a merge key.
func countNodes(n *yaml.Node) (count int, aliased bool) {
	if n == nil {
		return 0, false
	}
	count, aliased = 1, n.Kind == yaml.AliasNode || n.Anchor != "" || n.Tag == "!!merge"
	for _, c := range n.Content {
		k, a := countNodes(c)
		count, aliased = count+k, aliased || a
	}
	return count, aliased
}

// expander copies a tree with its aliases replaced by copies of what they
// name, anchors dropped and merge keys (<<) merged, within a node budget.
type expander struct {
	left   int
	active map[*yaml.Node]bool // the anchored nodes being expanded
	err    string
	at     *yaml.Node
}

func (e *expander) fail(n *yaml.Node, msg string) {
	if e.err == "" {
		e.err, e.at = msg, n
	}
}

func (e *expander) node(n *yaml.Node) *yaml.Node {
	if n == nil || e.err != "" {
		return n
	}
	if e.left--; e.left < 0 {
		e.fail(n, fmt.Sprintf("aliases expand to more than %d nodes beyond the file's own", maxExpandedNodes))
		return n
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || e.active[n.Alias] {
			e.fail(n, fmt.Sprintf("alias *%s names a value that holds it", n.Value))
			return n
		}
		e.active[n.Alias] = true
		c := e.node(n.Alias)
		delete(e.active, n.Alias)
		return c
	}
	c := *n
	c.Anchor = ""
	c.Content = nil
	if n.Kind != yaml.MappingNode {
		for _, k := range n.Content {
			c.Content = append(c.Content, e.node(k))
		}
		return &c
	}
	// A mapping: the keys written in it win over merged ones, and of the
	// merged mappings the first that has a key gives it (YAML's << rule).
	var merged, own []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			m := e.node(v)
			maps := []*yaml.Node{m}
			if m != nil && m.Kind == yaml.SequenceNode {
				maps = m.Content
			}
			for _, mm := range maps {
				if mm == nil || mm.Kind != yaml.MappingNode {
					e.fail(k, "merge key << needs a mapping, or a list of mappings")
					return &c
				}
				merged = append(merged, mm.Content...)
			}
			continue
		}
		own = append(own, e.node(k), e.node(v))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(own); i += 2 {
		if own[i].Kind == yaml.ScalarNode {
			seen[own[i].Value] = true
		}
	}
	for i := 0; i+1 < len(merged); i += 2 {
		if k := merged[i]; k.Kind != yaml.ScalarNode || !seen[k.Value] {
			seen[k.Value] = true
			c.Content = append(c.Content, merged[i], merged[i+1])
		}
	}
	c.Content = append(c.Content, own...)
	return &c
}

var tooDeepMsg = fmt.Sprintf("nesting is deeper than %d levels: a file holds at most %d mappings and lists inside each other, the top level included", MaxDepth, MaxDepth)

// lineCol returns the line and the column (in runes) of offset at.
func lineCol(src []byte, at int) (line, col int) {
	line = 1
	ls := 0
	for ls <= at {
		le, next := lineEnd(src, ls, true)
		if at <= le || next >= len(src) {
			break
		}
		line, ls = line+1, next
	}
	return line, utf8.RuneCount(src[ls:at]) + 1
}

// check walks the tree for what yaml.v3 accepts but the language refuses.
// depth is the number of collections n is inside.
func check(file string, n *yaml.Node, depth int, ds *diag.List) {
	if n == nil {
		return
	}
	if depth >= MaxDepth && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
		ds.Errorf(Pos(file, n), "too_deep", "%s", tooDeepMsg)
		return
	}
	if n.Anchor != "" {
		ds.Errorf(Pos(file, n), "yaml_anchor", "anchor &%s is not allowed: blueprints are read as plain data; write the value out, or use a shared value or an overlay", n.Anchor)
	}
	switch n.Kind {
	case yaml.AliasNode:
		ds.Errorf(Pos(file, n), "yaml_alias", "alias *%s is not allowed: blueprints are read as plain data; write the value out", n.Value)
		return
	case yaml.ScalarNode:
		checkTag(file, n, ds)
	case yaml.MappingNode:
		checkTag(file, n, ds)
		seen := make(map[string]*yaml.Node, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				ds.Errorf(Pos(file, k), "yaml_merge_key", "merge key << is not allowed: write the keys out, or use an overlay with extends")
				continue
			}
			if k.Kind != yaml.ScalarNode {
				ds.Errorf(Pos(file, k), "invalid_key", "a mapping key must be a plain scalar")
				check(file, v, depth+1, ds)
				continue
			}
			if k.Anchor != "" {
				ds.Errorf(Pos(file, k), "yaml_anchor", "anchor &%s is not allowed: blueprints are read as plain data", k.Anchor)
			}
			if first, dup := seen[k.Value]; dup {
				ds.Errorf(Pos(file, k), "duplicate_key", "key %q is already defined at line %d", k.Value, first.Line)
			} else {
				seen[k.Value] = k
			}
			check(file, v, depth+1, ds)
		}
	case yaml.SequenceNode:
		checkTag(file, n, ds)
		for _, c := range n.Content {
			check(file, c, depth+1, ds)
		}
	}
}

var standardTags = map[string]bool{
	"!!str": true, "!!int": true, "!!float": true, "!!bool": true, "!!null": true,
	"!!map": true, "!!seq": true, "!!timestamp": true, "!!binary": true,
}

func checkTag(file string, n *yaml.Node, ds *diag.List) {
	if n.Tag != "" && !standardTags[n.Tag] {
		ds.Errorf(Pos(file, n), "yaml_tag", "tag %s is not allowed", n.Tag)
	}
}

var lineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 error into a positioned diagnostic. yaml.v3
// names a line only, and often the wrong one (the line where the enclosing
// construct started); the precise line and column come from re-reading the
// file with goccy/go-yaml, whose scanner reports the offending token.
func syntaxError(file string, src []byte, err error) diag.Diagnostic {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line, col := 1, 1
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if strings.Contains(msg, "tab") {
		if l, c, ok := tabIndent(src); ok {
			return diag.Diagnostic{Pos: diag.Pos{File: file, Line: l, Col: c}, Severity: diag.Error, Code: "tab_indentation",
				Message: "a tab is used as indentation; YAML indents with spaces only"}
		}
	}
	if strings.Contains(msg, "mapping values are not allowed") && line > 0 {
		// yaml.v3 names the right line here and goccy the line before (it
		// reads the two lines as one plain scalar): point at the colon.
		if c, ok := mappingColon(src, line); ok {
			return diag.Diagnostic{Pos: diag.Pos{File: file, Line: line, Col: c}, Severity: diag.Error, Code: "yaml_syntax",
				Message: "mapping value is not allowed here; check the indentation of this line, or quote a value that holds \": \""}
		}
	}
	if l, c, m, ok := locate(src); ok {
		line, col = l, c
		if strings.Contains(m, "'\t'") {
			return diag.Diagnostic{Pos: diag.Pos{File: file, Line: l, Col: c}, Severity: diag.Error, Code: "tab_indentation",
				Message: "a tab is used as indentation; YAML indents with spaces only"}
		}
		msg = m
	}
	return diag.Diagnostic{Pos: diag.Pos{File: file, Line: line, Col: col}, Severity: diag.Error, Code: "yaml_syntax", Message: msg}
}

// mappingColon finds the colon that yaml.v3 refused on a line: the second
// "key: value" colon when there are two, else the first.
func mappingColon(src []byte, line int) (int, bool) {
	lines := bytes.Split(src, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 0, false
	}
	l := string(lines[line-1])
	var cols []int
	for i := 0; i < len(l); i++ {
		if l[i] == ':' && (i+1 == len(l) || l[i+1] == ' ') {
			cols = append(cols, utf8.RuneCountInString(l[:i])+1)
		}
	}
	switch len(cols) {
	case 0:
		return 0, false
	case 1:
		return cols[0], true
	}
	return cols[1], true
}

// locate asks goccy/go-yaml where the syntax error is.
func locate(src []byte) (line, col int, msg string, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	tokens := golexer.Tokenize(string(src))
	if nestsDeep(tokens) {
		return 0, 0, "", false
	}
	_, err := goparser.Parse(tokens, 0)
	var se *goyaml.SyntaxError
	if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil && se.Token.Position.Line > 0 {
		return se.Token.Position.Line, max(se.Token.Position.Column, 1), se.Message, true
	}
	return 0, 0, "", false
}

// nestsDeep reports whether goccy's parser would nest deeper than MaxDepth
// on tokens. scanDepth has refused such text already as YAML nests it, but
// goccy reads text after an error its own way (after a reserved character,
// say): its parser's recursion is bounded here by what its own scanner saw.
func nestsDeep(tokens gotoken.Tokens) bool {
	flow, entries, line := 0, 0, 0
	for _, tk := range tokens {
		switch tk.Type {
		case gotoken.SequenceStartType, gotoken.MappingStartType:
			if flow++; flow > MaxDepth {
				return true
			}
		case gotoken.SequenceEndType, gotoken.MappingEndType:
			flow = max(flow-1, 0)
		case gotoken.SequenceEntryType, gotoken.MappingKeyType:
			// "- - - x": entries nested on one line.
			if tk.Position == nil || tk.Position.Line != line {
				entries = 0
			}
			if tk.Position != nil {
				line = tk.Position.Line
			}
			if entries++; entries > MaxDepth {
				return true
			}
		}
	}
	return false
}

// tabIndent finds the first tab in the leading whitespace of a line.
func tabIndent(src []byte) (line, col int, ok bool) {
	for i, l := range bytes.Split(src, []byte("\n")) {
		for j, c := range l {
			if c == '\t' {
				if strings.TrimSpace(string(l[j:])) == "" {
					break // trailing whitespace only
				}
				return i + 1, j + 1, true
			}
			if c != ' ' {
				break
			}
		}
	}
	return 0, 0, false
}

// strayBOM returns the offset of a byte order mark other than the file's
// first character, or -1. yaml.v3 reads one there inconsistently: at the
// start of a line it skips a character only when its buffer happens to
// start with a mark (so "\ufeff\ufeffa:\nb: 1" loses the b), elsewhere
// it is text. A file that the parser would read differently from the
// nesting pre-scan could hide its depth, so such a file is refused.
func strayBOM(src []byte) int {
	from := 0
	if bytes.HasPrefix(src, bom) {
		from = len(bom)
	}
	if i := bytes.Index(src[from:], bom); i >= 0 {
		return from + i
	}
	return -1
}

func invalidUTF8(src []byte) (line, col int) {
	line, col = 1, 1
	for len(src) > 0 {
		r, size := utf8.DecodeRune(src)
		if r == utf8.RuneError && size <= 1 {
			return line, col
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		src = src[size:]
	}
	return line, col
}

// Value converts a node to the plain data JSON Schema validates: maps,
// slices, strings, bools, nil and json-compatible numbers (float64 or int64).
// Timestamps and binary stay text. Nodes refused by check are converted to
// nil.
func Value(n *yaml.Node) any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			m[n.Content[i].Value] = Value(n.Content[i+1])
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			s[i] = Value(c)
		}
		return s
	case yaml.ScalarNode:
		return Scalar(n)
	}
	return nil
}

// Scalar decodes a scalar node by its resolved tag.
func Scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return i
		}
		var f float64
		if n.Decode(&f) == nil {
			return f
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return f
		}
		return n.Value
	}
	return n.Value
}

// Describe names the kind of a node for messages: "a string", "a mapping"...
func Describe(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean"
	case "!!int":
		return "a number"
	case "!!float":
		switch strings.ToLower(strings.TrimLeft(n.Value, "+-")) {
		case ".nan", ".inf":
			return n.Value + ", which is not a finite number"
		}
		return "a number"
	}
	return fmt.Sprintf("the string %q", n.Value)
}

// JSON writes a node as JSON. Numbers keep the text they were written with
// when it is valid JSON ("2.0" stays 2.0, "157.49" stays 157.49), so vectors
// can state events exactly.
func JSON(n *yaml.Node) []byte { return appendJSON(nil, n) }

func appendJSON(b []byte, n *yaml.Node) []byte {
	if n == nil {
		return append(b, "null"...)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 1 {
			return appendJSON(b, n.Content[0])
		}
		return append(b, "null"...)
	case yaml.MappingNode:
		b = append(b, '{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b, _ = appendQuoted(b, n.Content[i].Value)
			b = append(b, ':')
			b = appendJSON(b, n.Content[i+1])
		}
		return append(b, '}')
	case yaml.SequenceNode:
		b = append(b, '[')
		for i, c := range n.Content {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSON(b, c)
		}
		return append(b, ']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			if jsonNumberRE.MatchString(n.Value) {
				return append(b, n.Value...)
			}
			v, err := json.Marshal(Scalar(n))
			if err != nil {
				return append(b, "null"...)
			}
			return append(b, v...)
		case "!!bool", "!!null":
			v, _ := json.Marshal(Scalar(n))
			return append(b, v...)
		}
		b, _ = appendQuoted(b, n.Value)
		return b
	}
	return append(b, "null"...)
}

var jsonNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

func appendQuoted(b []byte, s string) ([]byte, error) {
	q, err := json.Marshal(s)
	return append(b, q...), err
}
