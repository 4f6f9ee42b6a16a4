// Package compiler is the blueprint compiler behind package engine: it
// parses the YAML keeping every position, validates it against the embedded
// JSON Schema, compiles every expression once, resolves every reference, and
// builds the compiled form (plan.go) that package runtime evaluates.
//
// The compiled form is internal on purpose: package engine publishes an
// opaque *engine.Blueprint, and the runtime reaches the form behind it with
// Of. Everything here is built once and read-only afterwards.
package compiler

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/conv"
	"github.com/blueprint-engine/blueprint/internal/encoding"
	"github.com/blueprint-engine/blueprint/internal/schemacheck"
	"github.com/blueprint-engine/blueprint/internal/suggest"
	"github.com/blueprint-engine/blueprint/internal/syntax"
	"github.com/blueprint-engine/blueprint/schemas"
)

// Diagnostic, Diagnostics and Pos are the compiler's findings; see package
// diag.
type (
	Diagnostic  = diag.Diagnostic
	Diagnostics = diag.List
	Pos         = diag.Pos
)

// Option configures Compile.
type Option func(*options)

type options struct {
	catalog *Catalog
}

// WithCatalog resolves extends: against cat.
func WithCatalog(cat *Catalog) Option { return func(o *options) { o.catalog = cat } }

// Builtin shared values, supplied by the runtime for every event.
const (
	ValueVendorEvent = "vendor_event" // the mapped vendor event type (as written, or computed)
	ValueSourceEvent = "source_event" // the source event name as received (track: event; page, screen: name)
	ValueEventType   = "event_type"   // the event's type, lower case (track when absent)
)

// Compile compiles one blueprint file. name is used in diagnostics. It
// returns the blueprint and its warnings, or nil and every error found
// (sorted by position, at most diag.Limit).
func Compile(name string, src []byte, opts ...Option) (*Blueprint, Diagnostics) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := &compiler{
		file:    name,
		opts:    o,
		files:   map[*yaml.Node]string{},
		sources: map[string][]byte{},
	}
	var self *Entry
	if o.catalog != nil {
		self = o.catalog.entryAt(name)
	}
	root := c.load(name, src, self, nil)
	if root == nil || c.ds.HasErrors() {
		return nil, c.ds.Sorted()
	}
	c.ds = append(c.ds, schemacheck.Validate(schemas.Blueprint, root, c.pos)...)
	if c.ds.HasErrors() {
		return nil, c.ds.Sorted()
	}
	bp := c.compile(root)
	ds := c.ds.Sorted()
	if ds.HasErrors() {
		return nil, ds
	}
	assignSlots(bp)
	bp.Diagnostics = ds
	return bp, ds
}

type compiler struct {
	file    string
	opts    options
	ds      diag.List
	files   map[*yaml.Node]string // nodes of files other than c.file
	sources map[string][]byte
	// base is the resolved KEY@VERSION the file extends; baseVariants are
	// the variants the base declares.
	base         string
	baseVariants map[string]bool

	bp          *Blueprint
	config      map[string]*ConfigField
	values      map[string]*Value
	valueNodes  map[*Value]*yaml.Node
	valueState  map[*Value]int
	valueStack  []*Value
	secretValue map[*Value]bool
	warnings    map[string]bool
	usedWarn    map[string]bool
	badWarn     bool // a warn_if_absent named an undeclared code
	badEvent    bool // an event mapping failed to compile
	cycle       []string
	requests    map[string]*requestDef
	// variantBody holds a variant's changes to a request's body:
	// variant -> request -> field changes.
	variantBody map[string]map[string][]kv
	root        *yaml.Node
	// The blueprint-wide response rules, tried after a request's own.
	respPath  string
	respRules []*ResponseRule
}

// rootKey returns the key node of a top-level key.
func (c *compiler) rootKey(key string) *yaml.Node { return getKey(c.root, key) }

type requestDef struct {
	req      *Request // without body
	node     *yaml.Node
	body     []kv
	compiled *Object
	used     bool // an event maps to it
}

func (c *compiler) pos(n *yaml.Node) diag.Pos {
	if f, ok := c.files[n]; ok {
		return syntax.Pos(f, n)
	}
	return syntax.Pos(c.file, n)
}

func (c *compiler) srcOf(n *yaml.Node) []byte {
	if f, ok := c.files[n]; ok {
		return c.sources[f]
	}
	return c.sources[c.file]
}

// load parses a file and, when it extends another blueprint, merges it over
// its base. self is the catalog entry the file is, or nil for a file
// outside the catalog (an overlay). chain names the files being loaded
// (KEY@VERSION, or the file name of one outside the catalog), outermost
// first, to detect cycles.
func (c *compiler) load(name string, src []byte, self *Entry, chain []string) *yaml.Node {
	f, ds := syntax.Parse(name, src)
	c.ds = append(c.ds, ds...)
	c.sources[name] = src
	if ds.HasErrors() {
		return nil
	}
	if f.Root == nil {
		c.ds.Errorf(diag.Pos{File: name, Line: 1, Col: 1}, "empty_file", "the file holds no blueprint")
		return nil
	}
	if name != c.file {
		markFile(f.Root, name, c.files)
	}
	ext := get(f.Root, "extends")
	if ext == nil || ext.Kind != yaml.ScalarNode || ext.Value == "" {
		return f.Root
	}
	ref := ext.Value
	if c.opts.catalog == nil {
		c.ds.Errorf(c.pos(ext), "extends_not_found", "cannot resolve extends %s: no catalog is available", ref)
		return nil
	}
	entry, err := c.opts.catalog.Resolve(ref)
	if err != nil {
		c.ds.Errorf(c.pos(ext), "extends_not_found", "%v", err)
		return nil
	}
	if self != nil && entry.Key == self.Key {
		if msg := c.extendsOwnKey(self, ref, entry); msg != "" {
			c.ds.Errorf(c.pos(ext), "extends_self", "%s", msg)
			return nil
		}
	}
	if len(chain) == 0 {
		chain = []string{name}
		if self != nil {
			chain[0] = self.Ref()
		}
	}
	if slices.Contains(chain, entry.Ref()) || entry.File == c.file {
		c.cycle = append(append([]string(nil), chain...), entry.Ref())
		if len(chain) == 1 {
			c.ds.Errorf(c.pos(ext), "extends_cycle", "extends cycle: %s", strings.Join(c.cycle, " -> "))
		}
		// Else reported once, at the file being compiled (below).
		return nil
	}
	baseSrc, rds := c.opts.catalog.readBounded(entry)
	if rds.HasErrors() {
		c.ds = append(c.ds, rds...)
		c.ds.Errorf(c.pos(ext), "extends_invalid", "base blueprint %s has errors", entry.Ref())
		return nil
	}
	baseRoot := c.load(entry.File, baseSrc, entry, append(chain, entry.Ref()))
	if baseRoot == nil {
		switch {
		case c.cycle != nil && len(chain) == 1:
			c.ds.Errorf(c.pos(ext), "extends_cycle", "extends cycle: %s", strings.Join(c.cycle, " -> "))
		case c.cycle == nil:
			c.ds.Errorf(c.pos(ext), "extends_invalid", "base blueprint %s has errors", entry.Ref())
		}
		return nil
	}
	if len(chain) == 1 {
		c.base = entry.Ref()
		c.baseVariants = map[string]bool{}
		for _, p := range pairs(get(baseRoot, "variants")) {
			c.baseVariants[p.k.Value] = true
		}
	}
	merged := c.merge(baseRoot, f.Root, "")
	c.keepSecrets(baseRoot, f.Root, merged)
	return merged
}

// extendsOwnKey checks a catalog entry that extends a version of its own
// key, ref resolving to base. A version may build on an older version of
// its key, named with its version: anything else is itself (a cycle), a
// newer version (which would extend it back, or change when published),
// or KEY alone (the newest version: the entry itself once it is the
// newest, and a different base each time a version is published). It
// returns what is wrong, or "".
func (c *compiler) extendsOwnKey(self *Entry, ref string, base *Entry) string {
	older := ""
	for _, e := range c.opts.catalog.Entries(self.Key) {
		if compareSemver(e.Version, self.Version) < 0 {
			older = e.Ref() // the newest older version
		}
	}
	fix := "remove extends"
	if older != "" {
		fix = "name an older version: extends: " + older
	}
	_, _, versioned := strings.Cut(ref, "@")
	switch cmp := compareSemver(base.Version, self.Version); {
	case cmp == 0:
		return fmt.Sprintf("%s extends %s, which is itself: a version can extend only an older version of its key; %s", self.Ref(), ref, fix)
	case cmp > 0:
		return fmt.Sprintf("%s extends %s, which resolves to %s, a newer version of itself: a version can extend only an older version of its key; %s", self.Ref(), ref, base.Ref(), fix)
	case !versioned:
		return fmt.Sprintf("%s extends %s, the newest version of its own key: today %s, but it changes with every version published (and is %s itself once it is the newest); name the version: extends: %s", self.Ref(), ref, base.Ref(), self.Ref(), base.Ref())
	}
	return ""
}

// keepSecrets refuses an overlay that turns a secret config key of its
// base into a plain one (or removes it): every use the base made of it
// (auth, secret headers and fields) would then show and log the value.
func (c *compiler) keepSecrets(base, over, merged *yaml.Node) {
	overCfg := get(over, "config")
	for _, p := range pairs(get(base, "config")) {
		if text(p.v, "type") != "secret" {
			continue
		}
		if m := get(get(merged, "config"), p.k.Value); m != nil && text(m, "type") == "secret" {
			continue
		}
		at := getKey(overCfg, p.k.Value)
		if t := getKey(get(overCfg, p.k.Value), "type"); t != nil {
			at = t
		}
		if at == nil {
			at = getKey(over, "config")
		}
		c.ds.Errorf(c.pos(at), "secret_downgrade", "config key %s is a secret in the base blueprint; an overlay cannot make it a plain value or remove it (it would be shown and logged)", p.k.Value)
	}
}

func markFile(n *yaml.Node, name string, files map[*yaml.Node]string) {
	if n == nil {
		return
	}
	files[n] = name
	for _, ch := range n.Content {
		markFile(ch, name, files)
	}
}

// merge lays an overlay over a base: mappings merge key by key (event
// names compared after normalisation), a key set to null removes the
// base's key, anything else is replaced (RFC 7396's merge patch, on YAML).
// The overlay's extends key is dropped. Removing a key the base does not
// have, a null inside a mapping the base does not have included, is an
// error, remove_unknown (a misspelt removal would leave the mapping in
// place).
func (c *compiler) merge(base, over *yaml.Node, path string) *yaml.Node {
	if over.Kind != yaml.MappingNode {
		return over
	}
	var out yaml.Node
	if base == nil || base.Kind != yaml.MappingNode {
		out = *over // a new or replaced mapping: a null in it is remove_unknown
		out.Content = nil
	} else {
		out = *base
		out.Content = slices.Clone(base.Content)
	}
	// Overlay keys are matched against the base's keys only: two overlay
	// keys that name the same event are both kept, for the compiler to
	// report (unreachable_event), not merged here.
	nbase := len(out.Content)
	// A base key already matched by an earlier overlay key: a second
	// overlay key for it (order_completed after Order Completed) is kept
	// apart, for the compiler to report, not merged over the first.
	taken := map[*yaml.Node]bool{}
	events := path == "events" || strings.HasPrefix(path, "variants.") && strings.HasSuffix(path, ".events") && strings.Count(path, ".") == 2
	for i := 0; i+1 < len(over.Content); i += 2 {
		k, v := over.Content[i], over.Content[i+1]
		if path == "" && k.Value == "extends" {
			continue
		}
		j := -1
		for b := 0; b+1 < nbase; b += 2 {
			bk := out.Content[b].Value
			if bk == k.Value || events && conv.NormalizeName(bk) == conv.NormalizeName(k.Value) {
				j = b
				break
			}
		}
		if j >= 0 && taken[out.Content[j]] {
			j = -1
		}
		child := k.Value
		if path != "" {
			child = path + "." + k.Value
		}
		switch {
		case isNull(v) && j >= 0:
			out.Content = slices.Delete(out.Content, j, j+2)
			nbase -= 2
		case isNull(v):
			var have []string
			for b := 0; b+1 < nbase; b += 2 {
				have = append(have, out.Content[b].Value)
			}
			c.ds.Errorf(c.pos(k), "remove_unknown", "the base has no %s to remove (null removes a key of the base)%s", child, suggest.DidYouMean(k.Value, have))
		case j < 0:
			out.Content = append(out.Content, k, c.merge(nil, v, child))
		default:
			out.Content[j] = k
			out.Content[j+1] = c.merge(out.Content[j+1], v, child)
			taken[k] = true
		}
	}
	return &out
}

// isNull reports whether n is a YAML null (null, ~, or nothing).
func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kv is one mapping entry.
type kv struct{ k, v *yaml.Node }

func pairs(n *yaml.Node) []kv {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]kv, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		out = append(out, kv{n.Content[i], n.Content[i+1]})
	}
	return out
}

func get(n *yaml.Node, key string) *yaml.Node {
	if k := getKey(n, key); k != nil {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i] == k {
				return n.Content[i+1]
			}
		}
	}
	return nil
}

func getKey(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i]
		}
	}
	return nil
}

func text(n *yaml.Node, key string) string {
	if v := get(n, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func flag(n *yaml.Node, key string) bool {
	v := get(n, key)
	return v != nil && v.ShortTag() == "!!bool" && v.Value == "true"
}

func jsonOf(n *yaml.Node) []byte {
	b, err := json.Marshal(syntax.Value(n))
	if err != nil {
		return []byte("null")
	}
	return b
}

var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// compile turns a schema-valid tree into a Blueprint.
func (c *compiler) compile(root *yaml.Node) *Blueprint {
	bp := &Blueprint{
		Key:         text(root, "key"),
		Version:     text(root, "version"),
		Name:        text(root, "name"),
		Description: text(root, "description"),
		Category:    text(root, "category"),
		Status:      text(root, "status"),
		Website:     text(root, "website"),
		File:        c.file,
		Base:        c.base,
		variants:    map[string]*Variant{},
	}
	c.bp = bp
	c.root = root
	if v := get(root, "version"); v != nil && !semverRE.MatchString(v.Value) {
		c.ds.Errorf(c.pos(v), "invalid_version", "version %q is not a semantic version (MAJOR.MINOR.PATCH, e.g. 0.1.0)", v.Value)
	}
	c.compileConfig(get(root, "config"))
	for _, h := range get(root, "hosts").Content {
		if key, ok := strings.CutPrefix(h.Value, "{config."); ok {
			// The host of a url config value, allowed at Bind.
			key = strings.TrimSuffix(key, "}")
			switch f := c.config[key]; {
			case f == nil:
				c.ds.Errorf(c.pos(h), "unknown_config", "unknown config key %s%s", key, suggest.DidYouMean(key, c.configKeys()))
			case f.Type != ConfigURL:
				c.ds.Errorf(c.pos(h), "host_not_allowed", "hosts may name {config.%s} only when it is of type url, not %s", key, f.Type)
			case !slices.Contains(bp.HostConfigs, key):
				bp.HostConfigs = append(bp.HostConfigs, key)
			}
			continue
		}
		if !slices.Contains(bp.Hosts, h.Value) {
			bp.Hosts = append(bp.Hosts, h.Value)
		}
	}
	c.warnings = map[string]bool{}
	c.usedWarn = map[string]bool{}
	for _, p := range pairs(get(root, "warnings")) {
		c.warnings[p.k.Value] = true
		bp.Warnings = append(bp.Warnings, Warning{Code: p.k.Value, Description: p.v.Value})
	}
	bp.Docs = compileDocs(get(root, "docs"))
	c.declareValues(get(root, "identity"), get(root, "values"))
	c.compileConsent(get(root, "consent"))
	c.respPath, c.respRules = c.compileResponses(get(root, "responses"))
	c.declareRequests(get(root, "requests"))
	c.compileEvents(get(root, "events"), get(root, "variants"))
	// A request no event uses is still compiled, so that its mistakes are
	// reported (and it is said to be unused).
	for _, p := range pairs(get(root, "requests")) {
		def := c.requests[p.k.Value]
		if def == nil {
			continue
		}
		if def.compiled == nil {
			def.compiled = c.compileObject(def.body, "", false)
		}
		if _, inherited := c.files[p.k]; !def.used && !inherited {
			// (A base's request an overlay leaves unused is not the
			// overlay author's to fix: not reported.)
			c.ds.Warnf(c.pos(p.k), "unused_request", "request %s is declared but no event of any variant uses it", p.k.Value)
		}
	}
	for _, w := range bp.Warnings {
		if !c.usedWarn[w.Code] && !c.badWarn {
			c.ds.Warnf(c.pos(getKey(get(root, "warnings"), w.Code)), "unused_warning", "warning %s is declared but no field attaches it", w.Code)
		}
	}
	return bp
}

func (c *compiler) configKeys() []string { return keysOf(c.config) }

// compileDocs reads the docs block (schema-valid: its shape is checked),
// or returns nil when there is none or it holds nothing.
func compileDocs(n *yaml.Node) *Docs {
	if n == nil {
		return nil
	}
	d := &Docs{Verify: strings.TrimSpace(text(n, "verify"))}
	for _, it := range contentOf(get(n, "prerequisites")) {
		d.Prerequisites = append(d.Prerequisites, strings.TrimSpace(it.Value))
	}
	for _, it := range contentOf(get(n, "troubleshooting")) {
		d.Troubleshooting = append(d.Troubleshooting, Trouble{
			Symptom: strings.TrimSpace(text(it, "symptom")),
			Meaning: strings.TrimSpace(text(it, "meaning")),
			Fix:     strings.TrimSpace(text(it, "fix")),
		})
	}
	if len(d.Prerequisites) == 0 && d.Verify == "" && len(d.Troubleshooting) == 0 {
		return nil
	}
	return d
}

func (c *compiler) compileConfig(n *yaml.Node) {
	c.config = map[string]*ConfigField{}
	c.bp.config = c.config
	for _, p := range pairs(n) {
		f := &ConfigField{
			Key:         p.k.Value,
			Type:        ConfigType(text(p.v, "type")),
			Label:       text(p.v, "label"),
			Required:    flag(p.v, "required"),
			Placeholder: text(p.v, "placeholder"),
			HelpText:    text(p.v, "help_text"),
			Pos:         c.pos(p.k),
		}
		for _, k := range []string{"min", "max"} {
			mn := get(p.v, k)
			if mn == nil {
				continue
			}
			if f.Type != ConfigInteger && f.Type != ConfigNumber {
				c.ds.Errorf(c.pos(getKey(p.v, k)), "misplaced_key", "%s applies to integer and number config, not %s", k, f.Type)
				continue
			}
			x, _ := syntax.Scalar(mn).(float64)
			if i, ok := syntax.Scalar(mn).(int64); ok {
				x = float64(i)
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				c.ds.Errorf(c.pos(mn), "invalid_value", "%s must be a finite number", k)
				continue
			}
			if k == "min" {
				f.Min = &x
			} else {
				f.Max = &x
			}
		}
		if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
			c.ds.Errorf(c.pos(get(p.v, "max")), "invalid_value", "max %v is below min %v: no value would be accepted", *f.Max, *f.Min)
		}
		if pn := get(p.v, "pattern"); pn != nil {
			if f.Type != ConfigString && f.Type != ConfigSecret {
				c.ds.Errorf(c.pos(getKey(p.v, "pattern")), "misplaced_key", "pattern applies to string and secret config, not %s", f.Type)
			} else if re, err := compilePattern(pn.Value); err != nil {
				c.ds.Errorf(c.pos(pn), "invalid_pattern", "pattern %q is not a valid RE2 regular expression: %s", pn.Value, reErr(err))
			} else {
				f.Pattern = re
			}
		}
		opts := get(p.v, "options")
		switch {
		case f.Type == ConfigSelect && opts == nil:
			c.ds.Errorf(c.pos(p.k), "missing_key", "config %s of type select needs options", f.Key)
		case f.Type != ConfigSelect && opts != nil:
			c.ds.Errorf(c.pos(getKey(p.v, "options")), "misplaced_key", "options apply to select config, not %s", f.Type)
		}
		for _, o := range contentOf(opts) {
			f.Options = append(f.Options, SelectOption{Value: text(o, "value"), Label: text(o, "label")})
		}
		if dn := get(p.v, "default"); dn != nil {
			if f.Secret() {
				c.ds.Errorf(c.pos(dn), "secret_default", "secret config %s cannot have a default: the value would be written in the blueprint", f.Key)
			} else if v, err := CheckConfigValue(f, syntax.Value(dn)); err != nil {
				c.ds.Errorf(c.pos(dn), "invalid_default", "default of config %s: %v", f.Key, err)
			} else {
				f.Default = v
			}
		}
		c.config[f.Key] = f
		c.bp.Config = append(c.bp.Config, f)
	}
	// required_when reads other keys: compiled once every key is known.
	for _, p := range pairs(n) {
		rn := get(p.v, "required_when")
		if rn == nil {
			continue
		}
		sc := &scope{self: -1, configOnly: true, where: "required_when of config " + p.k.Value}
		e := c.compileExpr(rn, sc)
		c.noSecret(sc, rn, "required_when of config "+p.k.Value)
		switch {
		case e == nil:
		case !returnsBool(e):
			c.ds.Errorf(c.pos(rn), "expr_type", "required_when must give a boolean, not %s", e.Program.Node().Type())
		default:
			c.config[p.k.Value].RequiredWhen = e
		}
	}
}

// compilePattern compiles a pattern the whole value must match. Errors are
// those of the pattern as written.
func compilePattern(p string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(p); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + p + `)$`)
}

func reErr(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "error parsing regexp") {
		return strings.TrimPrefix(msg, "error parsing regexp: ")
	}
	return msg
}

// contentOf returns the children of a possibly nil node.
func contentOf(n *yaml.Node) []*yaml.Node {
	if n == nil {
		return nil
	}
	return n.Content
}

func (c *compiler) declareValues(identity, values *yaml.Node) {
	c.values = map[string]*Value{}
	c.valueNodes = map[*Value]*yaml.Node{}
	c.valueState = map[*Value]int{}
	c.secretValue = map[*Value]bool{}
	for _, name := range []string{ValueVendorEvent, ValueSourceEvent, ValueEventType} {
		v := &Value{Name: name, Index: len(c.bp.Values), Builtin: true, Spec: Spec{Type: Type{Kind: KindString}}}
		c.values[name] = v
		c.valueState[v] = 2
		c.bp.Values = append(c.bp.Values, v)
	}
	declare := func(p kv, isIdentity bool) {
		name := p.k.Value
		if old, ok := c.values[name]; ok {
			if old.Builtin {
				c.ds.Errorf(c.pos(p.k), "reserved_name", "%s is a builtin value supplied for every event; choose another name", name)
			} else {
				c.ds.Errorf(c.pos(p.k), "duplicate_name", "value %s is already declared at line %d", name, old.Pos.Line)
			}
			return
		}
		v := &Value{Name: name, Index: len(c.bp.Values), Identity: isIdentity, Description: text(p.v, "description")}
		v.Pos = c.pos(p.k)
		c.values[name] = v
		c.valueNodes[v] = p.v
		c.bp.Values = append(c.bp.Values, v)
		if isIdentity {
			c.bp.Identity = append(c.bp.Identity, v)
		}
	}
	for _, p := range pairs(identity) {
		declare(p, true)
	}
	for _, p := range pairs(values) {
		declare(p, false)
	}
	for _, v := range c.bp.Values {
		c.compileValue(v)
	}
}

// valueRef resolves a reference to a shared value, compiling it first when
// needed.
func (c *compiler) valueRef(name string, at *yaml.Node, pos diag.Pos) *Value {
	v := c.values[name]
	if v == nil {
		c.ds.Errorf(pos, "unknown_value", "unknown value %s%s", name, suggest.DidYouMean(name, keysOf(c.values)))
		return nil
	}
	if c.valueState[v] == 1 {
		var names []string
		for _, s := range c.valueStack[slices.Index(c.valueStack, v):] {
			names = append(names, s.Name)
		}
		c.ds.Errorf(pos, "value_cycle", "value %s reads itself: %s -> %s", name, strings.Join(names, " -> "), name)
		return nil
	}
	c.compileValue(v)
	return v
}

func (c *compiler) compileValue(v *Value) {
	if c.valueState[v] != 0 {
		return
	}
	c.valueState[v] = 1
	c.valueStack = append(c.valueStack, v)
	sc := &scope{self: -1, where: "value " + v.Name}
	n := c.valueNodes[v]
	pos := v.Pos
	v.Spec = c.compileSpec(n, sc)
	v.Pos = pos
	v.Deps = uniqValues(sc.values)
	if v.Type.Currency != nil {
		v.Deps = uniqValues(append(v.Deps, v.Type.Currency))
	}
	if sc.secret {
		c.secretValue[v] = true
	}
	c.valueStack = c.valueStack[:len(c.valueStack)-1]
	c.valueState[v] = 2
}

func uniqValues(vs []*Value) []*Value {
	var out []*Value
	for _, v := range vs {
		if v != nil && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

var sourceKeys = []string{"from", "value", "config", "const", "expr"}

// compileSpec compiles the sources and type rule of a value or field.
func (c *compiler) compileSpec(n *yaml.Node, sc *scope) Spec {
	return c.compileSpecOf(n, sc, KindAny)
}

// compileSpecOf compiles a value spec whose type, when it names none (and
// has no fields or items), is def: a computed vendor_event is a string, so
// its pattern applies without "type: string".
func (c *compiler) compileSpecOf(n *yaml.Node, sc *scope, def Kind) Spec {
	spec := Spec{Pos: c.pos(n)}
	var given []*yaml.Node
	for _, k := range sourceKeys {
		if kn := getKey(n, k); kn != nil {
			given = append(given, kn)
		}
	}
	if len(given) > 1 {
		c.ds.Errorf(c.pos(given[1]), "conflicting_keys", "%s has both %s and %s; give exactly one source (list several under from)", sc.where, given[0].Value, given[1].Value)
	}
	if fn := get(n, "from"); fn != nil {
		items := []*yaml.Node{fn}
		if fn.Kind == yaml.SequenceNode {
			items = fn.Content
		}
		for _, it := range items {
			if it.Kind == yaml.ScalarNode {
				spec.Sources = append(spec.Sources, c.pathSource(it, it.Value))
				continue
			}
			p := pairs(it)
			if len(p) == 1 {
				spec.Sources = append(spec.Sources, c.source(p[0].k.Value, p[0].v, sc))
			}
		}
	}
	for _, k := range sourceKeys[1:] {
		if vn := get(n, k); vn != nil {
			spec.Sources = append(spec.Sources, c.source(k, vn, sc))
		}
	}
	spec.Sources = slices.DeleteFunc(spec.Sources, func(s Source) bool { return s.Kind == SourceExpr && s.Expr == nil })

	// Type rule.
	kind := def
	if tn := get(n, "type"); tn != nil {
		kind, _ = kindByName(tn.Value)
	} else if get(n, "fields") != nil {
		kind = KindObject
	} else if get(n, "items") != nil {
		kind = KindArray
	}
	spec.Type.Kind = kind
	spec.Type.Scale = -1
	if sn := get(n, "scale"); sn != nil {
		if kind != KindDecimal {
			c.ds.Errorf(c.pos(getKey(n, "scale")), "misplaced_key", "scale applies to type decimal, not %s", kind)
		} else if get(n, "currency") != nil {
			c.ds.Errorf(c.pos(getKey(n, "scale")), "conflicting_keys", "a decimal has scale or currency (whose exponent is its scale), not both")
		} else {
			i, _ := syntax.Scalar(sn).(int64)
			spec.Type.Scale = int(i) // the schema bounds it
		}
	}
	if fn := get(n, "format"); fn != nil {
		if kind != KindTime {
			c.ds.Errorf(c.pos(getKey(n, "format")), "misplaced_key", "format applies to type time, not %s", kind)
		} else if msg := checkTimeFormat(fn.Value); msg != "" {
			c.ds.Errorf(c.pos(fn), "invalid_value", "time format %q %s", fn.Value, msg)
		} else {
			spec.Type.Format = fn.Value
		}
	}
	if tn := get(n, "text"); tn != nil && flag(n, "text") {
		switch {
		case kind == KindDecimal, kind == KindNumber, kind == KindInteger:
			spec.Type.Text = true
		case kind == KindTime && strings.HasPrefix(spec.Type.Format, "unix_"):
			spec.Type.Text = true
		default:
			c.ds.Errorf(c.pos(getKey(n, "text")), "misplaced_key", "text applies to types decimal, number, integer, and time written as unix_*, not %s", kind)
		}
	}
	if cn := get(n, "currency"); cn != nil {
		if kind != KindMoney && kind != KindDecimal {
			c.ds.Errorf(c.pos(getKey(n, "currency")), "misplaced_key", "currency applies to types money and decimal, not %s", kind)
		} else if cv := c.valueRef(cn.Value, cn, c.pos(cn)); cv != nil {
			if cv.Type.Kind != KindCurrency {
				c.ds.Errorf(c.pos(cn), "invalid_reference", "currency must name a value of type currency; %s is of type %s", cv.Name, cv.Type.Kind)
			} else {
				spec.Type.Currency = cv
				sc.values = append(sc.values, cv)
			}
		}
	}
	if kn := get(n, "keep"); kn != nil {
		if kind != KindObject {
			c.ds.Errorf(c.pos(getKey(n, "keep")), "misplaced_key", "keep applies to type object, not %s", kind)
		}
		for _, it := range contentOf(kn) {
			spec.Type.Keep = append(spec.Type.Keep, it.Value)
		}
	}
	for _, k := range []string{"min", "max"} {
		if mn := get(n, k); mn != nil {
			if kind != KindInteger && kind != KindNumber && kind != KindDecimal && kind != KindTime && kind != KindArray {
				c.ds.Errorf(c.pos(getKey(n, k)), "misplaced_key", "%s applies to types integer, number, decimal, time and array, not %s", k, kind)
				continue
			}
			f, _ := syntax.Scalar(mn).(float64)
			if i, ok := syntax.Scalar(mn).(int64); ok {
				f = float64(i)
			}
			if k == "min" {
				spec.Type.Min = &f
			} else {
				spec.Type.Max = &f
			}
		}
	}
	if pn := get(n, "pattern"); pn != nil {
		if kind != KindString && kind != KindID {
			c.ds.Errorf(c.pos(getKey(n, "pattern")), "misplaced_key", "pattern applies to types string and id, not %s", kind)
		} else if re, err := compilePattern(pn.Value); err != nil {
			c.ds.Errorf(c.pos(pn), "invalid_pattern", "pattern %q is not a valid RE2 regular expression: %s", pn.Value, reErr(err))
		} else {
			spec.Type.Pattern = re
		}
	}
	if dn := get(n, "default"); dn != nil {
		spec.Default = jsonOf(dn)
		if !defaultFits(kind, syntax.Value(dn)) {
			c.ds.Errorf(c.pos(dn), "invalid_default", "default %s does not follow type %s", spec.Default, kind)
		}
	}
	return spec
}

// checkTimeFormat says what is wrong with a time format, or "".
func checkTimeFormat(f string) string {
	switch f {
	case TimeUnixSeconds, TimeUnixMillis, TimeUnixMicros:
		return ""
	}
	if !strings.Contains(f, "2006") && !strings.Contains(f, "06") && !strings.Contains(f, "15") && !strings.Contains(f, "01") {
		return "is neither unix_seconds, unix_millis, unix_micros nor a Go time layout (written with the reference time 2006-01-02 15:04:05: e.g. 20060102_1504)"
	}
	return ""
}

// defaultFits reports whether a default is of a form the type accepts
// (the Types table's "accepts" column: the runtime applies the type rule
// to a default as to any source), so that id: 1 is the text "1"; whether
// its value then passes the rule (a pattern, min/max) is checked per event.
func defaultFits(k Kind, v any) bool {
	switch k {
	case KindCurrency, KindTime, KindEmailSHA256:
		_, ok := v.(string)
		return ok
	case KindString:
		switch v.(type) {
		case string, int64, float64, bool:
			return true
		}
		return false
	case KindID:
		switch x := v.(type) {
		case string, int64:
			return true
		case float64:
			return x == float64(int64(x))
		}
		return false
	case KindInteger:
		switch x := v.(type) {
		case int64:
			return true
		case float64:
			return x == float64(int64(x))
		case string:
			_, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			return err == nil
		}
		return false
	case KindMoney, KindNumber, KindDecimal:
		switch x := v.(type) {
		case int64, float64:
			return true
		case string:
			_, err := strconv.ParseFloat(x, 64)
			return err == nil && !strings.ContainsAny(x, "eEnNiI")
		}
		return false
	case KindBoolean:
		_, ok := v.(bool)
		return ok
	case KindObject:
		_, ok := v.(map[string]any)
		return ok
	case KindArray:
		_, ok := v.([]any)
		return ok
	}
	return true
}

// source compiles one non-path source.
func (c *compiler) source(kind string, n *yaml.Node, sc *scope) Source {
	switch kind {
	case "path":
		return c.pathSource(n, n.Value)
	case "value":
		v := c.valueRef(n.Value, n, c.pos(n))
		if v != nil {
			sc.values = append(sc.values, v)
			if c.secretValue[v] {
				sc.secret = true
			}
		}
		return Source{Kind: SourceValue, Value: v}
	case "config":
		f := c.config[n.Value]
		if f == nil {
			c.ds.Errorf(c.pos(n), "unknown_config", "unknown config key %s%s", n.Value, suggest.DidYouMean(n.Value, c.configKeys()))
		} else if f.Secret() {
			sc.secret = true
		}
		return Source{Kind: SourceConfig, Config: n.Value}
	case "const":
		return Source{Kind: SourceConst, Const: jsonOf(n)}
	}
	return Source{Kind: SourceExpr, Expr: c.compileExpr(n, sc)}
}

func (c *compiler) pathSource(n *yaml.Node, path string) Source {
	return c.checkedPath(n, path, true)
}

// checkedPath reports a path's faults; onEvent adds those of a path on the
// event (or an item), which a response body path does not have.
func (c *compiler) checkedPath(n *yaml.Node, path string, onEvent bool) Source {
	at, err := checkPath(path)
	if rest, ok := strings.CutPrefix(path, "event."); ok && onEvent && err == nil {
		// Only expressions have the event root; a path starts at it.
		at, err = 0, fmt.Errorf("starts with event., the root of expressions; a field path is already on the event: %s", rest)
	}
	if err != nil {
		pos := c.pos(n)
		if n.Value == path {
			pos = c.exprPos(n, runeOffset(path, at))
		}
		c.ds.Errorf(pos, "invalid_path", "field path %q %v", path, err)
	}
	return Source{Kind: SourcePath, Path: path}
}

// checkPath accepts gjson paths without modifiers (@) and pipes (|), which
// could reach outside the value the path names. It returns the byte offset
// of the fault.
func checkPath(p string) (int, error) {
	switch {
	case p == "":
		return 0, fmt.Errorf("is empty")
	case strings.HasPrefix(p, "."):
		return 0, fmt.Errorf("starts with a dot")
	case strings.HasSuffix(p, ".") && !strings.HasSuffix(p, `\.`):
		return len(p) - 1, fmt.Errorf("ends with a dot")
	}
	esc := false
	prev := byte('.')
	for i := 0; i < len(p); i++ {
		ch := p[i]
		if esc {
			esc = false
			prev = 'x'
			continue
		}
		switch {
		case ch == '\\':
			esc = true
		case ch == '.' && prev == '.':
			return i - 1, fmt.Errorf("has an empty segment (..)")
		case ch == '@' && prev == '.':
			return i, fmt.Errorf("uses a modifier (@...), which is not allowed")
		case ch == '|':
			return i, fmt.Errorf("uses a pipe (|), which is not allowed; a path names one value")
		case ch == '[':
			if j := strings.IndexByte(p[i:], ']'); j > 1 && allDigits(p[i+1:i+j]) {
				return i, fmt.Errorf("indexes a list with [%s]; field paths index lists with .%s: %s", p[i+1:i+j], p[i+1:i+j], bracketsToDots(p))
			}
		case ch == '#' && prev == '.' && i+1 == len(p):
			return i, fmt.Errorf("uses # (a list's length), which is computed, not a value of the event; use an expression: len(event.%s)", p[:i-1])
		case ch == '#' && prev == '.' && p[i+1] == '.':
			return i, fmt.Errorf("uses # (every element's value), which is computed, not a value of the event; read one element (.0), or collect with an expression: map(event.%s, #%s)", strings.TrimSuffix(p[:i], "."), p[i+1:])
		case ch == '#' && prev == ')' && (i+1 == len(p) || p[i+1] == '.'):
			return i, fmt.Errorf("uses #(...)#, which collects every match into a computed list, not a value of the event; use #(...) for the first match, or filter in an expression")
		}
		prev = ch
	}
	if esc {
		return len(p) - 1, fmt.Errorf("ends with a lone backslash")
	}
	return 0, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// bracketsToDots rewrites list indices written as [N] the gjson way: .N.
func bracketsToDots(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			if j := strings.IndexByte(p[i:], ']'); j > 1 && allDigits(p[i+1:i+j]) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(p[i+1 : i+j])
				i += j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

func (c *compiler) compileConsent(n *yaml.Node) {
	if n == nil {
		return
	}
	cs := &Consent{Category: text(n, "category"), Allow: text(n, "when_missing") == "allow"}
	at := c.rootKey("consent")
	if cs.Category == "" {
		c.ds.Errorf(c.pos(at), "missing_key", "consent needs key category")
	}
	from, ex := get(n, "from"), get(n, "expr")
	switch {
	case from != nil && ex != nil:
		c.ds.Errorf(c.pos(getKey(n, "expr")), "conflicting_keys", "consent has both from and expr; give one")
	case from == nil && ex == nil:
		c.ds.Errorf(c.pos(at), "missing_source", "consent needs from (paths) or expr")
	}
	items := []*yaml.Node{from}
	if from != nil && from.Kind == yaml.SequenceNode {
		items = from.Content
	}
	if key, ok := strings.CutPrefix(cs.Category, "{config."); ok {
		c.consentByConfig(n, strings.TrimSuffix(key, "}"), cs, items)
		return
	}
	for _, k := range []string{"none", "canonical"} {
		if get(n, k) != nil {
			c.ds.Errorf(c.pos(getKey(n, k)), "misplaced_key", "consent %s applies only when the category is chosen by config (category: \"{config.KEY}\")", k)
		}
	}
	for _, it := range items {
		if it != nil {
			cs.Paths = append(cs.Paths, c.pathSource(it, it.Value).Path)
		}
	}
	if ex != nil {
		sc := &scope{self: -1, where: "consent"}
		cs.Expr = c.compileExpr(ex, sc)
		c.noSecret(sc, ex, "the consent expression")
		if cs.Expr != nil && !returnsBool(cs.Expr) {
			c.ds.Errorf(c.pos(ex), "expr_type", "the consent expression must give a boolean (or nil for missing), not %s", cs.Expr.Program.Node().Type())
		}
	}
	c.bp.Consent = cs
}

// consentByConfig compiles a consent gate whose category is the value of
// a select config: one gate per option, its paths with {category} and
// {canonical} filled in, and none for the option named by none.
func (c *compiler) consentByConfig(n *yaml.Node, key string, tmpl *Consent, items []*yaml.Node) {
	at := get(n, "category")
	f := c.config[key]
	switch {
	case f == nil:
		c.ds.Errorf(c.pos(at), "unknown_config", "unknown config key %s%s", key, suggest.DidYouMean(key, c.configKeys()))
		return
	case f.Type != ConfigSelect:
		c.ds.Errorf(c.pos(at), "invalid_consent", "consent category {config.%s} must name a select config (its options are the categories), not a %s", key, f.Type)
		return
	case tmpl.Expr != nil:
		c.ds.Errorf(c.pos(getKey(n, "expr")), "conflicting_keys", "a consent category chosen by config is read with from (paths with {category}), not expr")
		return
	}
	none := text(n, "none")
	canonical := map[string]string{}
	for _, p := range pairs(get(n, "canonical")) {
		canonical[p.k.Value] = p.v.Value
	}
	if none != "" && !slices.ContainsFunc(f.Options, func(o SelectOption) bool { return o.Value == none }) {
		c.ds.Errorf(c.pos(get(n, "none")), "invalid_consent", "consent none %q is not an option of config %s", none, key)
	}
	c.bp.ConsentConfig = key
	c.bp.ConsentByOption = map[string]*Consent{}
	for _, o := range f.Options {
		if o.Value == none {
			c.bp.ConsentByOption[o.Value] = nil
			continue
		}
		if !validCategory(o.Value) {
			c.ds.Errorf(c.pos(at), "invalid_consent", "option %q of config %s is not a consent category (lower case letters, digits and _, starting with a letter)", o.Value, key)
			continue
		}
		canon := canonical[o.Value]
		if canon == "" {
			canon = o.Value
		}
		cs := &Consent{Category: o.Value, Allow: tmpl.Allow}
		for _, it := range items {
			if it == nil {
				continue
			}
			p := strings.NewReplacer("{category}", o.Value, "{canonical}", canon).Replace(it.Value)
			cs.Paths = append(cs.Paths, c.pathSource(it, p).Path)
		}
		c.bp.ConsentByOption[o.Value] = cs
	}
}

func validCategory(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || i > 0 && (ch >= '0' && ch <= '9' || ch == '_')) {
			return false
		}
	}
	return s != ""
}

func (c *compiler) noSecret(sc *scope, n *yaml.Node, where string) {
	if sc.secret {
		c.ds.Errorf(c.pos(n), "secret_leak", "%s reads a secret; secrets may only be read by auth, and by headers and fields marked secret: true", where)
	}
}

func (c *compiler) declareRequests(n *yaml.Node) {
	c.requests = map[string]*requestDef{}
	for _, p := range pairs(n) {
		r := &Request{
			Name:        p.k.Value,
			Description: text(p.v, "description"),
			Method:      text(p.v, "method"),
			Pos:         c.pos(p.k),
		}
		r.URL = c.urlTemplate(get(p.v, "url"))
		r.Encoding = encoding.JSON
		if en := get(p.v, "encoding"); en != nil {
			if e, ok := encoding.Lookup(en.Value); ok { // the schema names the choices
				r.Encoding = e
			}
		}
		for _, h := range pairs(get(p.v, "headers")) {
			hd := &Header{Name: h.k.Value}
			tn := h.v
			if h.v.Kind == yaml.MappingNode {
				tn = get(h.v, "value")
				hd.Secret = flag(h.v, "secret")
			}
			if !validHeaderName(hd.Name) {
				c.ds.Errorf(c.pos(h.k), "invalid_header", "%q is not a valid HTTP header name", hd.Name)
			}
			sc := &scope{self: -1}
			hd.Value = c.template(tn, sc, false)
			for i := range hd.Value.Parts {
				hd.Value.Parts[i].Escape = EscapeHeader
			}
			if sc.secret && !hd.Secret {
				c.ds.Errorf(c.pos(tn), "secret_leak", "header %s reads a secret; mark it secret: true (it is then redacted everywhere) or use auth", hd.Name)
			}
			r.Headers = append(r.Headers, hd)
			c.checkContentType(r, hd, tn)
		}
		if an := get(p.v, "auth"); an != nil {
			r.Auths = c.compileAuths(an, getKey(p.v, "auth"))
			for _, a := range r.Auths {
				if a != nil && a.Type == AuthSignature && r.Encoding.InQuery() {
					// The signature covers the body; a query request has
					// none, so it would be HMAC(key, "") (and the time):
					// the same for every request, covering none of the
					// data sent, and replayable with any query.
					c.ds.Errorf(c.pos(getKey(p.v, "auth")), "invalid_auth", "request %s writes its fields into the URL (encoding: %s) and has no body: a signature, which covers the body only, would sign nothing", r.Name, r.Encoding.Name())
					break
				}
			}
		}
		if mn := get(p.v, "method"); mn != nil {
			r.MethodConfig = c.methodConfig(mn)
		}
		if bn := get(p.v, "body_from"); bn != nil {
			r.BodyFromEvent = bn.Value == "event" // the schema names the choices
			if get(p.v, "body") != nil {
				c.ds.Errorf(c.pos(getKey(p.v, "body")), "conflicting_keys", "request %s has both body and body_from; give one", r.Name)
			}
			if r.Encoding != encoding.JSON {
				c.ds.Errorf(c.pos(getKey(p.v, "encoding")), "conflicting_keys", "request %s sends the event as received (body_from: event), which is JSON; drop encoding: %s", r.Name, r.Encoding.Name())
			}
		}
		if bn := get(p.v, "batch"); bn != nil {
			r.Batch = c.compileBatch(r, bn, get(p.v, "body"))
		}
		c.checkScheme(r, get(p.v, "url"))
		path, rules := c.compileResponses(get(p.v, "responses"))
		if path == "" {
			path = c.respPath
		}
		r.Responses = &Responses{MessagePath: path, Rules: slices.Concat(rules, c.respRules, DefaultResponseRules())}
		r.WarnWhen = c.compileWarnWhen(get(p.v, "warn_when"), "request "+r.Name)
		c.bp.Requests = append(c.bp.Requests, r)
		c.requests[r.Name] = &requestDef{req: r, node: p.v, body: pairs(get(p.v, "body"))}
	}
}

// checkContentType refuses a Content-Type header that says something else
// than the body's encoding: the vendor would read the body as what the
// header says, and the body would be written as the encoding says.
func (c *compiler) checkContentType(r *Request, h *Header, n *yaml.Node) {
	if !strings.EqualFold(h.Name, "Content-Type") || h.Value == nil || len(h.Value.Parts) != 1 || h.Value.Parts[0].Literal == "" {
		return
	}
	declared := h.Value.Parts[0].Literal
	if r.Encoding.InQuery() {
		c.ds.Errorf(c.pos(n), "content_type_mismatch", "request %s declares Content-Type %s, but it is encoded as query: its fields go to the URL and it has no body; drop the header", r.Name, declared)
		return
	}
	if !encoding.ContentTypeOK(r.Encoding, declared) {
		c.ds.Errorf(c.pos(n), "content_type_mismatch", "request %s declares Content-Type %s, but its body is written as %s (%s); set encoding: to the body's format, or drop the header (it is set from the encoding)",
			r.Name, declared, r.Encoding.Name(), r.Encoding.ContentType())
	}
}

// checkScheme refuses credentials over plain http (anyone on the path
// reads them) and warns about any other http URL (events are personal
// data). --vendor-url may still point a run at a local http server.
func (c *compiler) checkScheme(r *Request, un *yaml.Node) {
	if r.URL == nil || len(r.URL.Parts) == 0 || !strings.HasPrefix(r.URL.Parts[0].Literal, "http://") {
		return
	}
	var creds []string
	if len(r.Auths) > 0 {
		creds = append(creds, "auth")
	}
	for _, h := range r.Headers {
		if h.Secret {
			creds = append(creds, "secret header "+h.Name)
		}
	}
	if len(creds) > 0 {
		c.ds.Errorf(c.pos(un), "insecure_url", "request %s sends credentials (%s) over plain http://; use https://", r.Name, strings.Join(creds, ", "))
		return
	}
	c.ds.Warnf(c.pos(un), "insecure_url", "request %s is sent over plain http://: events travel unencrypted; use https://", r.Name)
}

// compileResponses compiles a responses block: the message path and the
// rules, in order.
func (c *compiler) compileResponses(n *yaml.Node) (string, []*ResponseRule) {
	if n == nil {
		return "", nil
	}
	path := ""
	if pn := get(n, "message"); pn != nil {
		path = c.checkedPath(pn, pn.Value, false).Path
	}
	var rules []*ResponseRule
	for _, rn := range contentOf(get(n, "rules")) {
		r := &ResponseRule{
			Outcome:     ResponseOutcome(text(rn, "outcome")),
			Message:     text(rn, "message"),
			Description: text(rn, "description"),
			Pos:         c.pos(rn),
		}
		if sn := get(rn, "status"); sn != nil {
			items := []*yaml.Node{sn}
			if sn.Kind == yaml.SequenceNode {
				items = sn.Content
			}
			for _, it := range items {
				if lo, ok := syntax.Scalar(it).(int64); ok {
					r.Statuses = append(r.Statuses, StatusRange{int(lo), int(lo)})
				} else if len(it.Value) == 3 {
					d := int(it.Value[0]-'0') * 100
					r.Statuses = append(r.Statuses, StatusRange{d, d + 99})
				}
			}
		}
		if wn := get(rn, "when"); wn != nil {
			sc := &scope{self: -1, response: true, where: "response rule"}
			r.When = c.compileExpr(wn, sc)
			if r.When != nil && !returnsBool(r.When) {
				c.ds.Errorf(c.pos(wn), "expr_type", "a response rule's when must give a boolean, not %s", r.When.Program.Node().Type())
			}
		}
		if mn := get(rn, "message_expr"); mn != nil {
			sc := &scope{self: -1, response: true, where: "response rule"}
			r.MessageExpr = c.compileExpr(mn, sc)
		}
		rules = append(rules, r)
	}
	return path, rules
}

// methodConfig returns the config key of a method written {config.KEY},
// or "" for a literal method (the schema checks those). The key must be a
// select whose every option is a method.
func (c *compiler) methodConfig(n *yaml.Node) string {
	key, ok := strings.CutPrefix(n.Value, "{config.")
	if !ok {
		return ""
	}
	key = strings.TrimSuffix(key, "}")
	f := c.config[key]
	switch {
	case f == nil:
		c.ds.Errorf(c.pos(n), "unknown_config", "unknown config key %s%s", key, suggest.DidYouMean(key, c.configKeys()))
		return ""
	case f.Type != ConfigSelect:
		c.ds.Errorf(c.pos(n), "invalid_method", "method {config.%s} must name a select config (whose options are methods), not a %s", key, f.Type)
		return ""
	}
	for _, o := range f.Options {
		if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, o.Value) {
			c.ds.Errorf(c.pos(n), "invalid_method", "method {config.%s}: option %q of config %s is not a method (GET, POST, PUT, PATCH or DELETE)", key, o.Value, key)
		}
	}
	return key
}

// checkTokenURL checks an OAuth 2.0 token endpoint: https, and a literal
// host covered by hosts (the client secret goes there).
func (c *compiler) checkTokenURL(t *Template, n *yaml.Node) {
	if len(t.Parts) != 1 || t.Parts[0].Literal == "" {
		c.ds.Errorf(c.pos(n), "invalid_url", "token_url must be written out (https://auth.example.com/oauth/token), without placeholders: the client secret is sent there")
		return
	}
	u, err := url.Parse(t.Parts[0].Literal)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil:
		c.ds.Errorf(c.pos(n), "invalid_url", "token_url must be an https URL with a host and no user information")
	case !c.hostCovered(strings.ToLower(u.Hostname())):
		c.ds.Errorf(c.pos(n), "host_not_allowed", "token_url host %s is not covered by hosts (%s)", u.Hostname(), strings.Join(c.bp.Hosts, ", "))
	}
}

// compileBatch compiles a request's batch block.
func (c *compiler) compileBatch(r *Request, n, body *yaml.Node) *Batch {
	b := &Batch{Into: text(n, "into"), Enabled: Setting{Const: 1}, MaxEvents: Setting{Const: 100}, MaxWaitMS: Setting{Const: 5000}, MaxBytes: Setting{Const: 5 << 20}}
	if r.Encoding != encoding.JSON {
		c.ds.Errorf(c.pos(n), "invalid_batch", "request %s is encoded as %s; only JSON bodies can be batched", r.Name, r.Encoding.Name())
	}
	if !r.BodyFromEvent && b.Into != "" && get(body, b.Into) == nil {
		c.ds.Errorf(c.pos(get(n, "into")), "invalid_batch", "batch into %s: request %s has no body field %s (the array the events' arrays are joined into)", b.Into, r.Name, b.Into)
	}
	setting := func(key string, dst *Setting, want ConfigType) {
		sn := get(n, key)
		if sn == nil {
			return
		}
		if k, ok := strings.CutPrefix(sn.Value, "{config."); ok && sn.Tag == "!!str" {
			k = strings.TrimSuffix(k, "}")
			switch f := c.config[k]; {
			case f == nil:
				c.ds.Errorf(c.pos(sn), "unknown_config", "unknown config key %s%s", k, suggest.DidYouMean(k, c.configKeys()))
			case f.Type != want:
				c.ds.Errorf(c.pos(sn), "invalid_batch", "batch %s {config.%s} must name a config of type %s, not %s", key, k, want, f.Type)
			default:
				*dst = Setting{Config: k}
			}
			return
		}
		switch v := syntax.Scalar(sn).(type) {
		case bool:
			if v {
				*dst = Setting{Const: 1}
			} else {
				*dst = Setting{}
			}
		case int64:
			*dst = Setting{Const: v}
		}
	}
	setting("enabled", &b.Enabled, ConfigBoolean)
	setting("max_events", &b.MaxEvents, ConfigInteger)
	setting("max_wait_ms", &b.MaxWaitMS, ConfigInteger)
	setting("max_bytes", &b.MaxBytes, ConfigInteger)
	return b
}

// compileAuths compiles a request's auth: one, or a list of alternatives
// each chosen by a when over config.
func (c *compiler) compileAuths(n, key *yaml.Node) []*Auth {
	if n.Kind != yaml.SequenceNode {
		if get(n, "when") != nil {
			c.ds.Errorf(c.pos(getKey(n, "when")), "misplaced_key", "when chooses among a list of auths; a single auth is always used")
		}
		return []*Auth{c.compileAuth(n, key)}
	}
	var out []*Auth
	for i, an := range n.Content {
		a := c.compileAuth(an, an)
		if wn := get(an, "when"); wn != nil {
			sc := &scope{self: -1, configOnly: true, where: "the when of an auth"}
			a.When = c.compileExpr(wn, sc)
			c.noSecret(sc, wn, "the when of an auth")
			if a.When != nil && !returnsBool(a.When) {
				c.ds.Errorf(c.pos(wn), "expr_type", "an auth's when must give a boolean, not %s", a.When.Program.Node().Type())
			}
		} else if i < len(n.Content)-1 {
			c.ds.Errorf(c.pos(an), "missing_key", "auth %d of %d has no when, so the ones after it are never used; give it a when, or put it last", i+1, len(n.Content))
		}
		out = append(out, a)
	}
	return out
}

func (c *compiler) compileAuth(n, key *yaml.Node) *Auth {
	a := &Auth{Type: AuthType(text(n, "type")), Name: text(n, "name")}
	sc := &scope{self: -1}
	tmpl := func(key string) *Template {
		tn := get(n, key)
		if tn == nil {
			return nil
		}
		t, offsets, _ := c.templateAt(tn, sc)
		// Auth is rendered once per integration, at Bind, from config:
		// event data has no place in a credential.
		for k, p := range t.Parts {
			switch {
			case p.Value != nil:
				c.ds.Errorf(c.exprPos(tn, offsets[k]), "invalid_template", "auth %s reads {values.%s}, but auth is built from config only, once per integration: use {config.KEY}", key, p.Value.Name)
			case p.Optional:
				c.ds.Errorf(c.exprPos(tn, offsets[k]), "invalid_template", "auth %s cannot have an optional placeholder (?)", key)
			}
		}
		return t
	}
	need := map[AuthType][]string{
		AuthBasic:     {"username"},
		AuthBearer:    {"token"},
		AuthHeader:    {"name", "value"},
		AuthQuery:     {"name", "value"},
		AuthSignature: {"secret", "header"},
		AuthOAuth2:    {"token_url", "client_id", "client_secret"},
	}[a.Type]
	for _, k := range need {
		if get(n, k) == nil {
			c.ds.Errorf(c.pos(key), "missing_key", "auth of type %s needs key %s", a.Type, k)
		}
	}
	allowed := map[AuthType][]string{
		AuthBasic:     {"type", "when", "username", "password"},
		AuthBearer:    {"type", "when", "token"},
		AuthHeader:    {"type", "when", "name", "value"},
		AuthQuery:     {"type", "when", "name", "value"},
		AuthSignature: {"type", "when", "secret", "header", "prefix", "algorithm", "timestamp_header", "timestamp", "separator"},
		AuthOAuth2:    {"type", "when", "token_url", "client_id", "client_secret", "scopes"},
	}[a.Type]
	for _, p := range pairs(n) {
		if !slices.Contains(allowed, p.k.Value) {
			c.ds.Errorf(c.pos(p.k), "misplaced_key", "%s does not apply to auth of type %s", p.k.Value, a.Type)
		}
	}
	a.Username, a.Password, a.Token, a.Value = tmpl("username"), tmpl("password"), tmpl("token"), tmpl("value")
	if a.Type == AuthOAuth2 {
		a.TokenURL, a.ClientID, a.ClientSecret = tmpl("token_url"), tmpl("client_id"), tmpl("client_secret")
		for _, sn := range contentOf(get(n, "scopes")) {
			a.Scopes = append(a.Scopes, sn.Value)
		}
		if tn := get(n, "token_url"); tn != nil && a.TokenURL != nil {
			c.checkTokenURL(a.TokenURL, tn)
		}
	}
	if a.Type == AuthSignature {
		sig := &Signature{Secret: tmpl("secret"), Header: text(n, "header"), Prefix: text(n, "prefix"), Algorithm: text(n, "algorithm"),
			TimestampHeader: text(n, "timestamp_header"), TimestampFormat: text(n, "timestamp"), Separator: "."}
		if get(n, "separator") != nil {
			sig.Separator = text(n, "separator")
		}
		if sig.Algorithm == "" {
			sig.Algorithm = "sha256"
		}
		if sig.TimestampFormat == "" {
			sig.TimestampFormat = "unix_millis"
		}
		for _, k := range []string{"header", "timestamp_header"} {
			if hn := get(n, k); hn != nil && !validHeaderName(hn.Value) {
				c.ds.Errorf(c.pos(hn), "invalid_header", "%q is not a valid HTTP header name", hn.Value)
			}
		}
		a.Signature = sig
	}
	if a.Type == AuthHeader && !validHeaderName(a.Name) {
		c.ds.Errorf(c.pos(get(n, "name")), "invalid_header", "%q is not a valid HTTP header name", a.Name)
	}
	return a
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0) {
			return false
		}
	}
	return true
}

// compileEvents builds every variant's event map.
func (c *compiler) compileEvents(base, variants *yaml.Node) {
	baseEvents := c.eventList(base, "", nil)
	vps := pairs(variants)
	if len(vps) == 0 {
		v := &Variant{Key: "default", Name: "Default", byKey: map[string]*Event{}}
		v.Events = baseEvents
		at := base
		if k := c.rootKey("events"); k != nil {
			at = k
		}
		c.finishVariant(v, at, true)
		return
	}
	for _, p := range vps {
		v := &Variant{
			Key:         p.k.Value,
			Name:        text(p.v, "name"),
			Description: text(p.v, "description"),
			byKey:       map[string]*Event{},
		}
		if v.Name == "" {
			if c.base != "" && !c.baseVariants[v.Key] {
				c.ds.Errorf(c.pos(p.k), "unknown_variant", "variant %s is not defined in %s (a new variant needs a name)%s",
					v.Key, c.base, suggest.DidYouMean(v.Key, keysOf(c.baseVariants)))
			} else {
				c.ds.Errorf(c.pos(p.k), "missing_key", "variant %s needs a name", v.Key)
			}
		}
		if dc := get(p.v, "default_config"); dc != nil {
			v.DefaultConfig = map[string]any{}
			for _, e := range pairs(dc) {
				f := c.config[e.k.Value]
				if f == nil {
					c.ds.Errorf(c.pos(e.k), "unknown_config", "unknown config key %s%s", e.k.Value, suggest.DidYouMean(e.k.Value, c.configKeys()))
					continue
				}
				if f.Secret() {
					c.ds.Errorf(c.pos(e.v), "secret_default", "secret config %s cannot have a default", f.Key)
					continue
				}
				val, err := CheckConfigValue(f, syntax.Value(e.v))
				if err != nil {
					c.ds.Errorf(c.pos(e.v), "invalid_default", "default_config %s: %v", f.Key, err)
					continue
				}
				v.DefaultConfig[f.Key] = val
			}
		}
		for _, rk := range stringsOf(get(p.v, "required_config")) {
			if c.config[rk.Value] == nil {
				c.ds.Errorf(c.pos(rk), "unknown_config", "unknown config key %s%s", rk.Value, suggest.DidYouMean(rk.Value, c.configKeys()))
				continue
			}
			v.RequiredConfig = append(v.RequiredConfig, rk.Value)
		}
		for _, rp := range pairs(get(p.v, "requests")) {
			if c.requests[rp.k.Value] == nil {
				c.ds.Errorf(c.pos(rp.k), "unknown_request", "unknown request %s%s", rp.k.Value, suggest.DidYouMean(rp.k.Value, keysOf(c.requests)))
				continue
			}
			if c.variantBody == nil {
				c.variantBody = map[string]map[string][]kv{}
			}
			if c.variantBody[v.Key] == nil {
				c.variantBody[v.Key] = map[string][]kv{}
			}
			c.variantBody[v.Key][rp.k.Value] = pairs(get(rp.v, "body"))
		}
		v.Events = c.eventList(get(p.v, "events"), v.Key, baseEvents)
		// The base's mappings of a request the variant changes are
		// compiled again with the variant's changes.
		for i, e := range v.Events {
			if e.Variant == "" && c.variantBody[v.Key][e.Request.Name] != nil {
				if re := c.compileEvent(e.src, "", v.Key); re != nil {
					v.Events[i] = re
				}
			}
		}
		c.finishVariant(v, p.k, false)
	}
}

func (c *compiler) finishVariant(v *Variant, at *yaml.Node, implicit bool) {
	for _, e := range v.Events {
		if e.Type == "track" && e.Key != "track:*" {
			v.byKey[e.Key] = e
			continue
		}
		if v.sel == nil {
			v.sel = map[string]*Event{}
		}
		v.sel[e.Key] = e
	}
	// An event that failed to compile was reported already.
	if len(v.Events) == 0 && !c.badEvent {
		if implicit {
			c.ds.Errorf(c.pos(at), "empty_event_map", "events is empty; map at least one source event")
		} else {
			c.ds.Errorf(c.pos(at), "empty_event_map", "variant %s maps no event; map one under events (or in the variant's own events)", v.Key)
		}
	}
	c.bp.Variants = append(c.bp.Variants, v)
	c.bp.variants[v.Key] = v
}

// eventList compiles the event map n over inherited (the base's events):
// a mapping with the same normalised name replaces the inherited one in
// place, others are appended.
func (c *compiler) eventList(n *yaml.Node, variant string, inherited []*Event) []*Event {
	out := slices.Clone(inherited)
	own := map[string]*Event{}
	for _, p := range pairs(n) {
		e := c.compileEvent(p, variant, variant)
		if e == nil {
			c.badEvent = true
			continue
		}
		if first, dup := own[e.Key]; dup {
			c.ds.Errorf(c.pos(p.k), "unreachable_event", "event %q is the same as %q (line %d) after normalisation (%s); this mapping can never match",
				e.Name, first.Name, first.Pos.Line, e.Key)
			continue
		}
		own[e.Key] = e
		if i := slices.IndexFunc(out, func(x *Event) bool { return x.Key == e.Key }); i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

func (c *compiler) compileEvent(p kv, variant, bodyVariant string) *Event {
	e := &Event{
		Name:        p.k.Value,
		Description: text(p.v, "description"),
		Variant:     variant,
		Pos:         c.pos(p.k),
		src:         p,
	}
	var problem string
	e.Type, e.Key, problem = eventSelector(p.k.Value)
	if problem != "" {
		c.ds.Errorf(c.pos(p.k), "invalid_event_name", "%s", problem)
		return nil
	}
	if vn := get(p.v, "vendor_event"); vn != nil && vn.Kind == yaml.MappingNode {
		// Computed per event: a value of type string (the shared value
		// vendor_event), with the sources of a value.
		sc := &scope{self: -1, where: "vendor_event"}
		spec := c.compileSpecOf(vn, sc, KindString)
		c.noSecret(sc, vn, "vendor_event")
		if len(spec.Sources) == 0 {
			c.ds.Errorf(c.pos(vn), "missing_key", "a computed vendor_event needs a source (from, value, config, const or expr)")
		}
		e.VendorSpec = &spec
	} else {
		e.VendorEvent = text(p.v, "vendor_event")
	}
	rn := get(p.v, "request")
	def := c.requests[rn.Value]
	if def == nil {
		c.ds.Errorf(c.pos(rn), "unknown_request", "unknown request %s%s", rn.Value, suggest.DidYouMean(rn.Value, keysOf(c.requests)))
		return nil
	}
	def.used = true
	if fn := get(p.v, "filter"); fn != nil {
		sc := &scope{self: -1, where: "filter"}
		e.Filter = c.compileExpr(fn, sc)
		c.noSecret(sc, fn, "the filter")
		if e.Filter != nil && !returnsBool(e.Filter) {
			c.ds.Errorf(c.pos(fn), "expr_type", "the filter must give a boolean, not %s", e.Filter.Program.Node().Type())
		}
	}
	req := *def.req
	vover := c.variantBody[bodyVariant][rn.Value]
	if over := pairs(get(p.v, "body")); len(over) > 0 || len(vover) > 0 {
		req.Body = c.compileObject(c.overlayFields(c.overlayFields(def.body, vover, false), over, len(vover) > 0), "", false)
	} else {
		if def.compiled == nil {
			def.compiled = c.compileObject(def.body, "", false)
		}
		req.Body = def.compiled
	}
	e.Request = &req
	e.WarnWhen = slices.Concat(req.WarnWhen, c.compileWarnWhen(get(p.v, "warn_when"), "event "+e.Name))
	e.Warnings = objectWarnings(req.Body, nil)
	for _, w := range e.WarnWhen {
		if !slices.Contains(e.Warnings, w.Code) {
			e.Warnings = append(e.Warnings, w.Code)
		}
	}
	c.checkBodyEncoding(&req, req.Body)
	return e
}

// compileWarnWhen compiles a warn_when block: code -> boolean expression
// over event, values and config.
func (c *compiler) compileWarnWhen(n *yaml.Node, where string) []*WarnRule {
	var out []*WarnRule
	for _, p := range pairs(n) {
		code := p.k.Value
		if !c.warnings[code] {
			c.badWarn = true
			c.ds.Errorf(c.pos(p.k), "unknown_warning", "warning %s is not declared under warnings%s", code, suggest.DidYouMean(code, keysOf(c.warnings)))
		}
		c.usedWarn[code] = true
		sc := &scope{self: -1, where: "warn_when " + code + " of " + where}
		e := c.compileExpr(p.v, sc)
		c.noSecret(sc, p.v, "warn_when "+code)
		if e == nil {
			continue
		}
		if !returnsBool(e) {
			c.ds.Errorf(c.pos(p.v), "expr_type", "warn_when %s must give a boolean, not %s", code, e.Program.Node().Type())
			continue
		}
		out = append(out, &WarnRule{Code: code, Expr: e})
	}
	return out
}

// checkBodyEncoding refuses body fields the request's encoding cannot
// write: flatten outside form and query, secrets in a query string (URLs
// are logged).
func (c *compiler) checkBodyEncoding(r *Request, o *Object) {
	if o == nil {
		return
	}
	pairs := r.Encoding != nil && r.Encoding != encoding.JSON
	for _, f := range o.Fields {
		if f.Flatten && !pairs {
			c.ds.Errorf(f.Pos, "misplaced_key", "flatten applies to the form and query encodings; request %s is encoded as %s", r.Name, r.Encoding.Name())
		}
		if f.Secret && r.Encoding != nil && r.Encoding.InQuery() {
			c.ds.Errorf(f.Pos, "secret_leak", "field %s may carry a secret, and request %s writes its fields into the URL, which is logged; use auth (type query: redacted)", f.Path, r.Name)
		}
		c.checkBodyEncoding(r, f.Object)
	}
}

// eventTypes are the event types an event map key may select with TYPE:.
var eventTypes = map[string]bool{"track": true, "page": true, "screen": true, "identify": true, "group": true}

// eventSelector reads an event map key: a track event's name, or a
// selector. It returns the type selected and the key the mapping is found
// by, or why the key selects nothing.
//
//	Order Completed     track events named so (after normalisation)
//	track:Order Completed   the same
//	* or track:*        every other track event (the catch-all)
//	page:Home           page (or screen) events named Home
//	page:*              every other page event; also identify:*, group:*,
//	                    screen:*, and TYPE:* for any other type word
//	*:*                 every event of any type no other mapping takes
func eventSelector(name string) (typ, key, problem string) {
	trimmed := strings.TrimSpace(name)
	switch trimmed {
	case "*", "track:*":
		return "track", "track:*", ""
	case "*:*":
		return "*", "*:*", ""
	}
	if t, rest, ok := strings.Cut(trimmed, ":"); ok && isTypeWord(t) {
		t, rest = strings.ToLower(t), strings.TrimSpace(rest)
		switch {
		case rest == "*":
			return t, t + ":*", ""
		case t == "track":
			trimmed = rest
		case t == "page" || t == "screen":
			if k := conv.NormalizeName(rest); k != "" && k != "_" {
				return t, t + ":" + k, ""
			}
			return "", "", fmt.Sprintf("event map key %q names no %s: write %s:NAME or %s:*", name, t, t, t)
		case eventTypes[t]:
			return "", "", fmt.Sprintf("event map key %q: %s events have no name to match; write %s:*", name, t, t)
		}
	}
	k := conv.NormalizeName(trimmed)
	if k == "" || k == "_" {
		return "", "", fmt.Sprintf("event name %q is empty after normalisation", name)
	}
	return "track", k, ""
}

// isTypeWord reports whether s may name an event type before ":" in an
// event map key: a known type, in any case, or a lower-case word.
func isTypeWord(s string) bool {
	if eventTypes[strings.ToLower(s)] {
		return true
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

// overlayFields changes base fields: a name replaces the field of that
// name whole (keeping its place) or appends a new one; a dotted name
// (customer.email_sha256) reaches a nested field of an object's fields or
// a list's items; a null value removes the field.
//
// lenient passes over a change whose field is not there: an event's
// changes applied over its variant's, which may have removed the field
// (the same changes are checked strictly over the request's own body).
func (c *compiler) overlayFields(base, over []kv, lenient bool) []kv {
	out := slices.Clone(base)
	for _, o := range over {
		name, rest, nested := strings.Cut(o.k.Value, ".")
		i := slices.IndexFunc(out, func(b kv) bool { return b.k.Value == name })
		switch {
		case lenient && i < 0 && (nested || isNull(o.v)):
		case nested && i < 0:
			c.ds.Errorf(c.pos(o.k), "unknown_field", "%s: there is no field %s to change%s", o.k.Value, name, suggest.DidYouMean(name, kvNames(out)))
		case nested:
			key := "fields"
			child := get(out[i].v, key)
			if child == nil {
				key, child = "items", get(out[i].v, "items")
			}
			if child == nil {
				c.ds.Errorf(c.pos(o.k), "unknown_field", "%s: field %s has no fields or items to change", o.k.Value, name)
				continue
			}
			sub := *o.k
			sub.Value = rest
			merged := c.overlayFields(pairs(child), []kv{{&sub, o.v}}, lenient)
			out[i] = kv{out[i].k, withChild(out[i].v, key, merged)}
		case isNull(o.v) && i < 0:
			c.ds.Errorf(c.pos(o.k), "remove_unknown", "there is no field %s to remove%s", name, suggest.DidYouMean(name, kvNames(out)))
		case isNull(o.v):
			out = slices.Delete(out, i, i+1)
		case i >= 0:
			out[i] = o
		default:
			out = append(out, o)
		}
	}
	return out
}

// stringsOf returns the scalar items of a sequence node.
func stringsOf(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}

func kvNames(ps []kv) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.k.Value
	}
	return out
}

// withChild returns a copy of mapping n whose key's value is a mapping of
// the given pairs (n itself is left as it is: it may be shared).
func withChild(n *yaml.Node, key string, ps []kv) *yaml.Node {
	child := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	if old := get(n, key); old != nil {
		child.Line, child.Column = old.Line, old.Column
	}
	for _, p := range ps {
		child.Content = append(child.Content, p.k, p.v)
	}
	cp := *n
	cp.Content = slices.Clone(n.Content)
	for i := 0; i+1 < len(cp.Content); i += 2 {
		if cp.Content[i].Value == key {
			cp.Content[i+1] = child
		}
	}
	return &cp
}

func returnsBool(e *Expr) bool {
	t := e.Program.Node().Type()
	return t == nil || t.Kind().String() == "bool" || t.Kind().String() == "interface"
}

// compileObject compiles the fields of an object (or of each item of an
// array, when item is set). prefix is the vendor path of the object.
func (c *compiler) compileObject(fields []kv, prefix string, item bool) *Object {
	obj := &Object{}
	names := map[string]int{}
	kinds := make([]Kind, len(fields))
	secrets := make([]bool, len(fields))
	for i, p := range fields {
		names[p.k.Value] = i
		kinds[i] = c.declaredKind(p.v)
		secrets[i] = holdsSecret(p.v)
	}
	for i, p := range fields {
		sc := &scope{item: item, fields: names, kinds: kinds, secrets: secrets, self: i, where: "field " + prefix + p.k.Value}
		obj.Fields = append(obj.Fields, c.compileField(p, prefix, item, sc))
	}
	obj.Order = c.fieldOrder(obj, fields)
	return obj
}

// holdsSecret reports whether a field is secret: true, or holds one (an
// object or item field nested in it): reading it (fields.obj.token,
// toJSON(fields.obj)) reads a secret.
func holdsSecret(n *yaml.Node) bool {
	if flag(n, "secret") {
		return true
	}
	for _, key := range []string{"fields", "items"} {
		for _, p := range pairs(get(n, key)) {
			if holdsSecret(p.v) {
				return true
			}
		}
	}
	return false
}

func (c *compiler) declaredKind(n *yaml.Node) Kind {
	if k, ok := kindByName(text(n, "type")); ok {
		return k
	}
	if v := c.values[text(n, "value")]; v != nil {
		return v.Type.Kind
	}
	return KindAny
}

// fieldOrder sorts fields so that each comes after the siblings it reads.
func (c *compiler) fieldOrder(obj *Object, fields []kv) []int {
	state := make([]int, len(obj.Fields))
	var order, stack []int
	var visit func(i int) bool
	visit = func(i int) bool {
		switch state[i] {
		case 1:
			var names []string
			for _, s := range stack[slices.Index(stack, i):] {
				names = append(names, obj.Fields[s].Name)
			}
			c.ds.Errorf(c.pos(fields[i].k), "field_cycle", "fields read each other: %s -> %s", strings.Join(names, " -> "), obj.Fields[i].Name)
			return false
		case 2:
			return true
		}
		state[i] = 1
		stack = append(stack, i)
		defer func() { stack = stack[:len(stack)-1] }()
		for _, d := range obj.Fields[i].Deps {
			if !visit(d) {
				state[i] = 2
				return false
			}
		}
		state[i] = 2
		order = append(order, i)
		return true
	}
	for i := range obj.Fields {
		visit(i)
	}
	return order
}

func (c *compiler) compileField(p kv, prefix string, item bool, sc *scope) *Field {
	n := p.v
	key, _ := json.Marshal(p.k.Value)
	path := prefix + p.k.Value
	fn := get(n, "fault_name")
	if fn != nil {
		// The name faults use for this field (and inside it); "" leaves
		// a wrapper object out of its fields' names.
		path = prefix + fn.Value
		if fn.Value == "" {
			path = strings.TrimSuffix(prefix, ".")
		}
	}
	f := &Field{
		Name:         p.k.Value,
		JSONKey:      string(key) + ":",
		Path:         path,
		Required:     flag(n, "required"),
		WarnIfAbsent: text(n, "warn_if_absent"),
		List:         flag(n, "list"),
		Secret:       flag(n, "secret"),
	}
	f.Spec = c.compileSpec(n, sc)
	f.Pos = c.pos(p.k)
	f.Internal = flag(n, "internal")
	if wn := get(n, "when"); wn != nil {
		where := sc.where
		sc.where = "the when of field " + f.Path
		f.When = c.compileExpr(wn, sc)
		sc.where = where
		c.noSecret(sc, wn, "the when of field "+f.Path)
		if f.When != nil && !returnsBool(f.When) {
			c.ds.Errorf(c.pos(wn), "expr_type", "when must give a boolean, not %s", f.When.Program.Node().Type())
		}
	}
	f.Deps = uniqInts(sc.fieldDeps)
	fields, items, each := get(n, "fields"), get(n, "items"), get(n, "each")
	if each != nil && f.Type.Kind == KindAny && get(n, "type") == nil {
		f.Type.Kind = KindArray
	}
	kind := f.Type.Kind
	hasSource := len(f.Sources) > 0 || slices.ContainsFunc(sourceKeys, func(k string) bool { return getKey(n, k) != nil })
	switch {
	case fields != nil && kind != KindObject:
		c.ds.Errorf(c.pos(getKey(n, "fields")), "misplaced_key", "fields applies to type object, not %s", kind)
	case items != nil && kind != KindArray:
		c.ds.Errorf(c.pos(getKey(n, "items")), "misplaced_key", "items applies to type array, not %s", kind)
	case fields != nil && hasSource:
		c.ds.Errorf(c.pos(getKey(n, "fields")), "conflicting_keys", "field %s builds an object from its fields; remove its source or its fields", f.Path)
	case fields == nil && !hasSource:
		c.ds.Errorf(c.pos(p.k), "missing_source", "field %s needs a source: from, value, config, const or expr", f.Path)
	}
	if fn != nil && fn.Value == "" && path == "" && fields == nil {
		c.ds.Errorf(c.pos(fn), "invalid_value", "an empty fault_name names field %s by its parent, and a top-level field has none: only a wrapper object (with fields) can leave its name out", p.k.Value)
	}
	if fields != nil {
		childPrefix := f.Path + "."
		if f.Path == "" {
			childPrefix = ""
		}
		f.Object = c.compileObject(pairs(fields), childPrefix, item)
	}
	if items != nil {
		f.Object = c.compileObject(pairs(items), f.Path+"[].", true)
	}
	switch {
	case each != nil && kind != KindArray:
		c.ds.Errorf(c.pos(getKey(n, "each")), "misplaced_key", "each applies to type array, not %s", kind)
	case each != nil && items != nil:
		c.ds.Errorf(c.pos(getKey(n, "each")), "conflicting_keys", "field %s has both items (a list of objects) and each (a list of single values); keep one", f.Path)
	case each != nil:
		// One unnamed field per element, written bare: faults name
		// the element, skulist[0].
		ek := &yaml.Node{Kind: yaml.ScalarNode, Line: each.Line, Column: each.Column}
		esc := &scope{item: true, fields: map[string]int{"": 0}, kinds: []Kind{c.declaredKind(each)}, secrets: []bool{holdsSecret(each)}, self: 0, where: "field " + f.Path + "[]"}
		ef := c.compileField(kv{k: ek, v: each}, f.Path+"[]", true, esc)
		f.Object, f.Each = &Object{Fields: []*Field{ef}, Order: []int{0}}, true
		if ef.Object != nil {
			c.ds.Errorf(c.pos(each), "misplaced_key", "each makes a list of single values; for a list of objects use items")
		}
	}
	if jn := get(n, "join"); jn != nil {
		f.Join, f.HasJoin = jn.Value, true
		if kind != KindArray && kind != KindAny && !f.List {
			c.ds.Errorf(c.pos(getKey(n, "join")), "misplaced_key", "join writes a list as one text; field %s is of type %s", f.Path, kind)
		}
		if f.Object != nil && !f.Each {
			c.ds.Errorf(c.pos(getKey(n, "join")), "misplaced_key", "join writes a list of single values as one text; field %s is a list of objects (use each)", f.Path)
		}
	}
	if fl := get(n, "flatten"); fl != nil {
		f.Flatten = true
		if kind != KindArray {
			c.ds.Errorf(c.pos(getKey(n, "flatten")), "misplaced_key", "flatten applies to type array, not %s", kind)
		}
		if f.Object != nil && !f.Each {
			// Item fields are named as the vendor sees them: ItemSku1.
			for _, ch := range f.Object.Fields {
				ch.Path = f.Path + ch.Name + "\x01"
				if ch.Object != nil {
					c.ds.Errorf(ch.Pos, "misplaced_key", "an indexed list's items are written as flat keys (%s%s1): field %s cannot be an object or a list", f.Path, ch.Name, ch.Name)
				}
			}
		} else if f.Each {
			f.Object.Fields[0].Path = f.Path + "\x01"
		}
	}
	if on := get(n, "omit_unless"); on != nil {
		if fields == nil {
			c.ds.Errorf(c.pos(getKey(n, "omit_unless")), "misplaced_key", "omit_unless applies to objects with fields")
		} else {
			for _, x := range on.Content {
				i := slices.IndexFunc(f.Object.Fields, func(ch *Field) bool { return ch.Name == x.Value })
				if i < 0 {
					c.ds.Errorf(c.pos(x), "unknown_field", "omit_unless names unknown field %s%s", x.Value, suggest.DidYouMean(x.Value, fieldNames(f.Object)))
					continue
				}
				f.Object.OmitUnless = append(f.Object.OmitUnless, i)
			}
		}
	}
	if f.List && (kind == KindObject || kind == KindArray) {
		c.ds.Errorf(c.pos(getKey(n, "list")), "misplaced_key", "list applies to single values, not %s", kind)
	}
	if f.WarnIfAbsent != "" {
		if !c.warnings[f.WarnIfAbsent] {
			c.badWarn = true
			c.ds.Errorf(c.pos(get(n, "warn_if_absent")), "unknown_warning", "warning %s is not declared under warnings%s", f.WarnIfAbsent, suggest.DidYouMean(f.WarnIfAbsent, keysOf(c.warnings)))
		}
		c.usedWarn[f.WarnIfAbsent] = true
	}
	if f.Required && f.Default != nil {
		c.ds.Warnf(c.pos(getKey(n, "required")), "required_with_default", "field %s is required but has a default, so it can never be absent", f.Path)
	}
	if sc.secret && !f.Secret {
		c.ds.Errorf(c.pos(p.k), "secret_leak", "field %s reads a secret; secrets may only be read by auth, and by headers and fields marked secret: true (redacted everywhere)", f.Path)
	}
	return f
}

func fieldNames(o *Object) []string {
	var out []string
	for _, f := range o.Fields {
		out = append(out, f.Name)
	}
	return out
}

func uniqInts(s []int) []int {
	var out []int
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func objectWarnings(o *Object, out []string) []string {
	if o == nil {
		return out
	}
	for _, f := range o.Fields {
		if f.WarnIfAbsent != "" && !slices.Contains(out, f.WarnIfAbsent) {
			out = append(out, f.WarnIfAbsent)
		}
		out = objectWarnings(f.Object, out)
	}
	return out
}
