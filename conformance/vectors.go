// Package conformance loads and runs conformance vectors: YAML files of
// cases, each an input event and config with the expected decision and
// requests (the format is in docs/conformance.md, its JSON Schema in
// schemas/conformance.schema.json).
//
// The same files run under go test (one subtest per case) and from the CLI
// (blueprint test).
package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/schemacheck"
	"github.com/blueprint-engine/blueprint/internal/syntax"
	"github.com/blueprint-engine/blueprint/schemas"
)

// File is one vector file.
type File struct {
	// Path names the file in messages.
	Path string
	// Blueprint and Version name a catalog entry; BlueprintFile a file
	// relative to the vector file. Exactly one of Blueprint and
	// BlueprintFile is set.
	Blueprint     string
	Version       string
	BlueprintFile string
	Variant       string
	Config        map[string]any
	// Now is the evaluation's clock for every case (zero: each case's own,
	// else the event's timestamp, else DefaultNow).
	Now   time.Time
	Cases []*Case

	// read reads a file relative to the vector file.
	read func(rel string) (name string, src []byte, err error)
}

// Case is one vector.
type Case struct {
	Name string
	Line int
	// Variant and Config replace the file's when set.
	Variant   string
	HasConfig bool
	Config    map[string]any
	// Event is the event's raw JSON.
	Event []byte
	// Now is the case's clock, or zero.
	Now    time.Time
	Expect Expect
}

// Expect is what a case expects.
type Expect struct {
	Outcome     string
	Reason      string
	Fields      []string
	HasFields   bool
	Warnings    []string
	HasWarnings bool
	Requests    []ExpectRequest
	HasRequests bool
}

// ExpectRequest is one expected request.
type ExpectRequest struct {
	Method  string
	URL     string
	Headers []ExpectHeader
	Body    []byte // JSON, or nil when not checked
	// Query, when set, holds the URL's query as pairs (name to a value or
	// a list of values), compared as a multiset; URL is then compared
	// without its query.
	Query map[string]any
	// BodyText, when set, is the exact body.
	BodyText *string
}

// ExpectHeader is one expected header; Absent means it must not be sent.
type ExpectHeader struct {
	Name   string
	Value  string
	Absent bool
}

// LoadFS reads a vector file from a file system (the embedded catalog).
// A file over the size limit is refused without being read whole.
func LoadFS(fsys fs.FS, name string) (*File, diag.List) {
	src, ds := syntax.ReadFileMax(fsys, name, syntax.MaxVectorFileSize)
	if ds.HasErrors() {
		return nil, ds
	}
	dir := path.Dir(name)
	return Parse(name, src, func(rel string) (string, []byte, error) {
		p := path.Join(dir, rel)
		b, ds := syntax.ReadFile(fsys, p)
		return p, b, ds.Err()
	})
}

// LoadFile reads a vector file from disk. A file over the size limit is
// refused without being read whole.
func LoadFile(name string) (*File, diag.List) {
	src, ds := syntax.ReadOSFileMax(name, syntax.MaxVectorFileSize)
	if ds.HasErrors() {
		return nil, ds
	}
	dir := filepath.Dir(name)
	return Parse(name, src, func(rel string) (string, []byte, error) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		b, ds := syntax.ReadOSFile(p)
		return p, b, ds.Err()
	})
}

// Parse reads vectors from src. read resolves blueprint_file.
func Parse(name string, src []byte, read func(rel string) (string, []byte, error)) (*File, diag.List) {
	f, ds := syntax.ParseData(name, src, syntax.MaxVectorFileSize)
	if ds.HasErrors() {
		return nil, ds.Sorted()
	}
	if f.Root == nil {
		ds.Errorf(diag.Pos{File: name, Line: 1, Col: 1}, "empty_file", "the file holds no vectors")
		return nil, ds
	}
	pos := func(n *yaml.Node) diag.Pos { return syntax.Pos(name, n) }
	ds = append(ds, schemacheck.Validate(schemas.Conformance, f.Root, pos)...)
	if ds.HasErrors() {
		return nil, ds.Sorted()
	}
	out := &File{Path: name, read: read}
	if v, bf := getKey(f.Root, "version"), getKey(f.Root, "blueprint_file"); v != nil && bf != nil {
		ds.Errorf(pos(v), "invalid_value", "version applies to a catalog blueprint, not to blueprint_file (the file is the version under test)")
	}
	eachPair(f.Root, func(k, v *yaml.Node) {
		switch k.Value {
		case "blueprint":
			out.Blueprint = v.Value
		case "version":
			out.Version = v.Value
		case "blueprint_file":
			out.BlueprintFile = v.Value
		case "variant":
			out.Variant = v.Value
		case "config":
			out.Config = configOf(v)
		case "now":
			out.Now = timeOf(v, ds.Errorf, pos)
		case "cases":
			seen := map[string]int{}
			for _, cn := range v.Content {
				c := parseCase(cn)
				if nn := getKey(cn, "now"); nn != nil {
					for i := 0; i+1 < len(cn.Content); i += 2 {
						if cn.Content[i] == nn {
							c.Now = timeOf(cn.Content[i+1], ds.Errorf, pos)
						}
					}
				}
				if e, ej := getKey(cn, "event"), getKey(cn, "event_json"); e != nil && ej != nil {
					ds.Errorf(pos(ej), "invalid_value", "case %q has both event and event_json (line %d); give one", c.Name, e.Line)
				}
				if line, dup := seen[c.Name]; dup {
					ds.Errorf(pos(cn), "duplicate_case", "case %q is already defined at line %d", c.Name, line)
				}
				seen[c.Name] = c.Line
				out.Cases = append(out.Cases, c)
			}
		}
	})
	for _, c := range out.Cases {
		if c.Event == nil {
			ds.Errorf(diag.Pos{File: name, Line: c.Line, Col: 5}, "missing_key", "case %q needs event or event_json", c.Name)
		}
		e := c.Expect
		if e.Outcome != "deliver" && e.Reason == "" {
			ds.Errorf(diag.Pos{File: name, Line: c.Line, Col: 5}, "missing_key", "case %q expects %s and needs a reason", c.Name, e.Outcome)
		}
		if e.Outcome != "deliver" && e.HasRequests {
			ds.Errorf(diag.Pos{File: name, Line: c.Line, Col: 5}, "invalid_value", "case %q expects %s: requests apply to deliver only", c.Name, e.Outcome)
		}
		if e.Outcome == "deliver" && e.Reason != "" {
			ds.Errorf(diag.Pos{File: name, Line: c.Line, Col: 5}, "invalid_value", "case %q expects deliver: reason applies to skip and reject only", c.Name)
		}
	}
	if ds.HasErrors() {
		// A file in error runs none of its cases: a case that passes in a
		// file that says something else than meant would mislead.
		return nil, ds.Sorted()
	}
	return out, ds.Sorted()
}

// getKey returns the key node of key in mapping n, or nil.
func getKey(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

// DefaultNow is the clock of a case that sets no now and whose event has
// no timestamp.
var DefaultNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// timeOf reads an RFC 3339 time (the schema has checked its form).
func timeOf(n *yaml.Node, errorf func(diag.Pos, string, string, ...any), pos func(*yaml.Node) diag.Pos) time.Time {
	t, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		errorf(pos(n), "invalid_value", "now %q is not an RFC 3339 time", n.Value)
	}
	return t
}

func configOf(n *yaml.Node) map[string]any {
	m, _ := syntax.Value(n).(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// eachPair calls fn for every key and value of a mapping node.
func eachPair(n *yaml.Node, fn func(k, v *yaml.Node)) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		fn(n.Content[i], n.Content[i+1])
	}
}

func parseCase(n *yaml.Node) *Case {
	c := &Case{Line: n.Line}
	eachPair(n, func(k, v *yaml.Node) {
		switch k.Value {
		case "name":
			c.Name = v.Value
		case "variant":
			c.Variant = v.Value
		case "config":
			c.HasConfig = true
			c.Config = configOf(v)
		case "event":
			c.Event = syntax.JSON(v)
		case "event_json":
			c.Event = []byte(v.Value)
		case "expect":
			c.Expect = parseExpect(v)
		}
	})
	return c
}

func parseExpect(n *yaml.Node) Expect {
	var e Expect
	eachPair(n, func(k, v *yaml.Node) {
		switch k.Value {
		case "outcome":
			e.Outcome = v.Value
		case "reason":
			e.Reason = v.Value
		case "fields":
			e.HasFields = true
			e.Fields = stringsOf(v)
		case "warnings":
			e.HasWarnings = true
			e.Warnings = stringsOf(v)
		case "requests":
			e.HasRequests = true
			for _, rn := range v.Content {
				e.Requests = append(e.Requests, parseRequest(rn))
			}
		}
	})
	return e
}

func stringsOf(n *yaml.Node) []string {
	out := []string{}
	for _, c := range n.Content {
		out = append(out, c.Value)
	}
	return out
}

func parseRequest(n *yaml.Node) ExpectRequest {
	var r ExpectRequest
	eachPair(n, func(k, v *yaml.Node) {
		switch k.Value {
		case "method":
			r.Method = v.Value
		case "url":
			r.URL = v.Value
		case "headers":
			eachPair(v, func(hk, hv *yaml.Node) {
				r.Headers = append(r.Headers, ExpectHeader{Name: hk.Value, Value: hv.Value, Absent: hv.ShortTag() == "!!null"})
			})
		case "body":
			r.Body = syntax.JSON(v)
		case "query":
			r.Query = map[string]any{}
			d := json.NewDecoder(bytes.NewReader(syntax.JSON(v)))
			d.UseNumber()
			d.Decode(&r.Query) // the schema made it a mapping
		case "body_text":
			t := v.Value
			r.BodyText = &t
		}
	})
	return r
}

// Ref is the catalog reference of the file's blueprint: KEY or KEY@VERSION.
func (f *File) Ref() string {
	if f.Version != "" {
		return f.Blueprint + "@" + f.Version
	}
	return f.Blueprint
}

// describe names the blueprint under test.
func (f *File) describe() string {
	if f.BlueprintFile != "" {
		return f.BlueprintFile
	}
	return f.Ref()
}

// IsVectorFile reports whether a catalog file name holds vectors.
func IsVectorFile(name string) bool {
	return strings.HasSuffix(name, ".vectors.yaml") || strings.HasSuffix(name, ".vectors.yml")
}

func (f *File) String() string {
	return fmt.Sprintf("%s (%s, %d cases)", f.Path, f.describe(), len(f.Cases))
}
