// Package schemacheck validates a YAML node tree against one of the embedded
// JSON Schemas and turns every schema error into a diagnostic at the YAML
// node it is about, with a stable code and, for unknown keys and enum
// values, a did-you-mean suggestion.
package schemacheck

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/suggest"
	"github.com/blueprint-engine/blueprint/internal/syntax"
	"github.com/blueprint-engine/blueprint/schemas"
)

// Validate checks root against the named embedded schema. pos gives each
// node's position (nodes may come from several files).
func Validate(schemaName string, root *yaml.Node, pos func(*yaml.Node) diag.Pos) diag.List {
	sch := schemas.MustCompile(schemaName)
	err := sch.Validate(syntax.Value(root))
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	v := &validator{doc: schemas.Doc(schemaName), root: root, pos: pos, suggested: map[string]bool{}}
	v.walk(ve)
	for _, m := range v.missing {
		// "evnts" suggested "events": the missing events is the same fault.
		if !v.suggested[m.parent+"/"+m.name] {
			v.ds = append(v.ds, m.d)
		}
	}
	return v.ds
}

type validator struct {
	doc  map[string]any
	root *yaml.Node
	pos  func(*yaml.Node) diag.Pos
	ds   diag.List
	// suggested holds parent/name for every name an unknown key was
	// corrected to; missing holds the required-key errors, reported last.
	suggested map[string]bool
	missing   []missingKey
}

type missingKey struct {
	parent, name string
	d            diag.Diagnostic
}

var quotedRE = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`)

func (v *validator) walk(e *jsonschema.ValidationError) {
	kw := lastToken(e.KeywordLocation)
	switch kw {
	case "anyOf", "oneOf":
		v.alternatives(e)
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range sortedCauses(e.Causes) {
			v.walk(c)
		}
		return
	}
	v.leaf(e, kw)
}

// alternatives reports a failed anyOf/oneOf. When every branch failed on
// the type of the value itself it says which types are accepted; otherwise
// the branch that got furthest (deepest errors) speaks.
func (v *validator) alternatives(e *jsonschema.ValidationError) {
	var types []string
	allType := true
	var best *jsonschema.ValidationError
	bestDepth := -1
	for _, c := range e.Causes {
		leaves := leavesOf(c)
		depth := 0
		for _, l := range leaves {
			if lastToken(l.KeywordLocation) == "type" && l.InstanceLocation == e.InstanceLocation {
				types = append(types, expectedTypes(l.Message)...)
				continue
			}
			allType = false
			depth = max(depth, strings.Count(l.InstanceLocation, "/")+1)
		}
		if depth > bestDepth {
			best, bestDepth = c, depth
		}
	}
	if allType || best == nil {
		n, _ := v.lookup(e.InstanceLocation)
		v.ds.Errorf(v.pos(n), "wrong_type", "expected %s, got %s", joinOr(uniq(types)), syntax.Describe(n))
		return
	}
	v.walk(best)
}

func (v *validator) leaf(e *jsonschema.ValidationError, kw string) {
	n, key := v.lookup(e.InstanceLocation)
	if msg := v.custom(e.AbsoluteKeywordLocation, kw); msg != "" {
		at := n
		switch {
		case strings.Contains(e.KeywordLocation, "propertyNames"):
			at = key
		case kw == "maxProperties" && n != nil && len(n.Content) >= 4:
			at = n.Content[2] // the first key too many
		}
		v.ds.Errorf(v.pos(at), "invalid_value", "%s", msg)
		return
	}
	switch kw {
	case "additionalProperties":
		allowed := v.allowed(e.AbsoluteKeywordLocation, kw)
		for _, m := range quotedRE.FindAllStringSubmatch(e.Message, -1) {
			name := m[1]
			kn := keyNode(n, name)
			v.unknownKey(kn, name, allowed, e.InstanceLocation)
		}
	case "unevaluatedProperties":
		name := unescape(lastToken(e.InstanceLocation))
		allowed := v.allowed(e.AbsoluteKeywordLocation, kw)
		for _, a := range allowed {
			if a == name {
				return // a known key that failed its own rule, reported there
			}
		}
		v.unknownKey(key, name, allowed, parentPointer(e.InstanceLocation))
	case "required":
		at := n
		if key != nil {
			at = key
		}
		for _, name := range quoted(e.Message) {
			d := diag.Diagnostic{Pos: v.pos(at), Severity: diag.Error, Code: "missing_key",
				Message: fmt.Sprintf("%s needs key %s", describePointer(e.InstanceLocation), name)}
			v.missing = append(v.missing, missingKey{parent: e.InstanceLocation, name: name, d: d})
		}
	case "type":
		v.ds.Errorf(v.pos(n), "wrong_type", "expected %s, got %s", joinOr(expectedTypes(e.Message)), syntax.Describe(n))
	case "enum", "const":
		opts := v.enum(e.AbsoluteKeywordLocation)
		got := ""
		if n != nil {
			got = n.Value
		}
		v.ds.Errorf(v.pos(n), "invalid_value", "%s is not one of %s%s", syntax.Describe(n), strings.Join(opts, ", "), suggestQuoted(got, opts))
	case "pattern":
		what := "value"
		if strings.Contains(e.KeywordLocation, "propertyNames") {
			what = "key"
			n = key
		}
		v.ds.Errorf(v.pos(n), "invalid_value", "%s %s does not match %s", what, syntax.Describe(n), v.keyword(e.AbsoluteKeywordLocation))
	case "propertyNames":
		v.ds.Errorf(v.pos(n), "invalid_value", "invalid key: %s", e.Message)
	default:
		v.ds.Errorf(v.pos(n), "invalid_value", "%s", e.Message)
	}
}

func (v *validator) unknownKey(kn *yaml.Node, name string, allowed []string, parent string) {
	msg := fmt.Sprintf("unknown key %s in %s", name, describePointer(parent))
	if s := suggest.Closest(name, allowed); s != "" {
		msg += suggest.DidYouMean(name, allowed)
		v.suggested[parent+"/"+s] = true
	} else if len(allowed) > 0 && len(allowed) <= 12 {
		msg += "; allowed: " + strings.Join(allowed, ", ")
	}
	v.ds.Errorf(v.pos(kn), "unknown_key", "%s", msg)
}

// lookup resolves a JSON pointer (URL-escaped, as jsonschema v5 writes it)
// to the value node and, for a mapping entry, its key node.
func (v *validator) lookup(pointer string) (val, key *yaml.Node) {
	n := v.root
	if pointer == "" || pointer == "/" {
		return n, nil
	}
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = unescape(tok)
		switch {
		case n == nil:
			return nil, nil
		case n.Kind == yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					key, next = n.Content[i], n.Content[i+1]
				}
			}
			if next == nil {
				return n, key
			}
			n = next
		case n.Kind == yaml.SequenceNode:
			i := 0
			if _, err := fmt.Sscan(tok, &i); err != nil || i < 0 || i >= len(n.Content) {
				return n, nil
			}
			n, key = n.Content[i], nil
		default:
			return n, key
		}
	}
	return n, key
}

func keyNode(m *yaml.Node, name string) *yaml.Node {
	if m != nil && m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == name {
				return m.Content[i]
			}
		}
	}
	return m
}

// schemaAt resolves an absolute keyword location to the schema object.
func (v *validator) schemaAt(abs string) any {
	_, frag, _ := strings.Cut(abs, "#")
	var cur any = v.doc
	if frag == "" {
		return cur
	}
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		tok = unescape(tok)
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i := 0
			if _, err := fmt.Sscan(tok, &i); err != nil || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// allowed lists the property names the schema object owning keyword allows,
// following $ref.
func (v *validator) allowed(abs, keyword string) []string {
	owner := strings.TrimSuffix(abs, "/"+keyword)
	seen := map[string]bool{}
	var out []string
	var collect func(s any, depth int)
	collect = func(s any, depth int) {
		m, ok := s.(map[string]any)
		if !ok || depth > 8 {
			return
		}
		if props, ok := m["properties"].(map[string]any); ok {
			for k := range props {
				if !seen[k] {
					seen[k] = true
					out = append(out, k)
				}
			}
		}
		if ref, ok := m["$ref"].(string); ok && strings.HasPrefix(ref, "#") {
			collect(v.schemaAt(ref), depth+1)
		}
	}
	collect(v.schemaAt(owner), 0)
	sort.Strings(out)
	return out
}

func (v *validator) enum(abs string) []string {
	var out []string
	switch e := v.schemaAt(abs).(type) {
	case []any:
		for _, x := range e {
			out = append(out, fmt.Sprint(x))
		}
	case string:
		out = append(out, e)
	}
	return out
}

func (v *validator) keyword(abs string) string {
	if s, ok := v.schemaAt(abs).(string); ok {
		return s
	}
	return "the required pattern"
}

func leavesOf(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leavesOf(c)...)
	}
	return out
}

// sortedCauses orders causes by instance location and keyword: jsonschema
// does not keep a stable order.
func sortedCauses(cs []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	out := append([]*jsonschema.ValidationError(nil), cs...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].InstanceLocation != out[j].InstanceLocation {
			return out[i].InstanceLocation < out[j].InstanceLocation
		}
		return out[i].KeywordLocation < out[j].KeywordLocation
	})
	return out
}

func lastToken(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func parentPointer(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func unescape(tok string) string {
	if u, err := url.PathUnescape(tok); err == nil {
		tok = u
	}
	return strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
}

// describePointer renders a JSON pointer as a dotted path for messages.
func describePointer(p string) string {
	if p == "" || p == "/" {
		return "the top level"
	}
	toks := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, t := range toks {
		toks[i] = unescape(t)
	}
	return strings.Join(toks, ".")
}

func quoted(msg string) []string {
	var out []string
	for _, m := range quotedRE.FindAllStringSubmatch(msg, -1) {
		out = append(out, m[1])
	}
	return out
}

var typeNames = map[string]string{"object": "a mapping", "array": "a list", "string": "a string", "number": "a number", "integer": "an integer", "boolean": "a boolean", "null": "null"}

func expectedTypes(msg string) []string {
	// "expected string or object, but got number"
	msg = strings.TrimPrefix(msg, "expected ")
	msg, _, _ = strings.Cut(msg, ", but got")
	var out []string
	for _, t := range strings.Split(msg, " or ") {
		t = strings.TrimSpace(t)
		if n, ok := typeNames[t]; ok {
			t = n
		}
		out = append(out, t)
	}
	return out
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func joinOr(s []string) string {
	switch len(s) {
	case 0:
		return "another type"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func suggestQuoted(got string, opts []string) string { return suggest.DidYouMean(got, opts) }

// custom returns the schema's own wording for a failed keyword: the
// x-messages annotation of the schema object that owns it.
func (v *validator) custom(abs, keyword string) string {
	owner, ok := v.schemaAt(strings.TrimSuffix(abs, "/"+keyword)).(map[string]any)
	if !ok {
		return ""
	}
	msgs, _ := owner["x-messages"].(map[string]any)
	m, _ := msgs[keyword].(string)
	return m
}
