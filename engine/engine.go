// Package engine compiles blueprints: it parses the YAML keeping every
// position, validates it against the embedded JSON Schema, compiles every
// expression once, resolves every reference, and returns an immutable
// *Blueprint or a sorted list of positioned, coded diagnostics.
//
//	bp, ds := engine.Compile("button.yaml", src, engine.WithCatalog(cat))
//	for _, d := range ds {
//		fmt.Println(d) // button.yaml:12:3: error unknown_key: ...
//	}
//
// A *Blueprint is opaque: its accessors tell what a program embedding the
// engine needs (reference, metadata, config fields, variants, warnings), and
// package runtime evaluates it per event. The compiled form behind it is
// internal, so that it can change without changing this API. The compiler
// never imports the runtime.
package engine

import (
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"sync"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/compiler"
)

func init() {
	compiler.SetUnwrap(func(x any) *compiler.Blueprint {
		if b, _ := x.(*Blueprint); b != nil {
			return b.c
		}
		return nil
	})
}

// Diagnostic, Diagnostics and Pos are the compiler's findings; see package
// diag.
type (
	Diagnostic  = diag.Diagnostic
	Diagnostics = diag.List
	Pos         = diag.Pos
)

// Option configures Compile.
type Option func(*options)

type options struct{ catalog *Catalog }

// WithCatalog resolves extends: against cat.
func WithCatalog(cat *Catalog) Option { return func(o *options) { o.catalog = cat } }

// Compile compiles one blueprint file. name is used in diagnostics. It
// returns the blueprint and its warnings, or nil and every error found
// (sorted by position, at most diag.Limit).
func Compile(name string, src []byte, opts ...Option) (*Blueprint, Diagnostics) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var copts []compiler.Option
	if o.catalog != nil {
		copts = append(copts, compiler.WithCatalog(o.catalog.c))
	}
	c, ds := compiler.Compile(name, src, copts...)
	if c == nil {
		return nil, ds
	}
	return &Blueprint{c: c}, ds
}

// Blueprint is a compiled blueprint: immutable and safe for concurrent use.
type Blueprint struct {
	c *compiler.Blueprint
}

// Ref returns KEY@VERSION.
func (b *Blueprint) Ref() string { return b.c.Ref() }

// Key returns the catalog key, e.g. "button".
func (b *Blueprint) Key() string { return b.c.Key }

// Version returns the semantic version, e.g. "0.1.0".
func (b *Blueprint) Version() string { return b.c.Version }

// Name returns the vendor's display name.
func (b *Blueprint) Name() string { return b.c.Name }

// Description returns what the integration does.
func (b *Blueprint) Description() string { return b.c.Description }

// Category returns the catalog category (advertising, analytics,
// attribution, cdp, cloud_storage or other).
func (b *Blueprint) Category() string { return b.c.Category }

// Status returns the lifecycle: alpha, beta or ga.
func (b *Blueprint) Status() string { return b.c.Status }

// Website returns the vendor's developer site.
func (b *Blueprint) Website() string { return b.c.Website }

// File returns the name the blueprint was compiled from.
func (b *Blueprint) File() string { return b.c.File }

// Base returns KEY@VERSION of the blueprint this overlay extends, or "".
func (b *Blueprint) Base() string { return b.c.Base }

// Hosts returns the hosts requests may be sent to (a copy).
func (b *Blueprint) Hosts() []string { return slices.Clone(b.c.Hosts) }

// ConsentCategory returns the consent category that gates the
// integration, or "" when it is not gated.
func (b *Blueprint) ConsentCategory() string {
	if b.c.Consent == nil {
		return ""
	}
	return b.c.Consent.Category
}

// Diagnostics returns the warnings the compiler reported.
func (b *Blueprint) Diagnostics() Diagnostics { return slices.Clone(b.c.Diagnostics) }

// ConfigFields returns the configuration keys, in declaration order.
func (b *Blueprint) ConfigFields() []ConfigField {
	out := make([]ConfigField, len(b.c.Config))
	for i, f := range b.c.Config {
		out[i] = configField(f)
	}
	return out
}

// VariantKeys lists the variant keys in declaration order.
func (b *Blueprint) VariantKeys() []string { return b.c.VariantKeys() }

// Variants returns the variants in declaration order.
func (b *Blueprint) Variants() []Variant {
	out := make([]Variant, len(b.c.Variants))
	for i, v := range b.c.Variants {
		out[i] = variant(v)
	}
	return out
}

// Variant returns the variant with the given key, matched
// case-insensitively ("Retail" is "retail"); its Key is the canonical
// lower-case spelling.
func (b *Blueprint) Variant(key string) (Variant, bool) {
	v := b.c.Variant(key)
	if v == nil {
		return Variant{}, false
	}
	return variant(v), true
}

// ConfigField is one configuration key of a blueprint.
type ConfigField struct {
	Key   string
	Label string
	// Type is string, secret, select, integer, number or boolean.
	Type     string
	Required bool
	// Secret values are never shown: logs, errors and dry runs mask them.
	Secret bool
	// Pattern is the regular expression a string value must match in
	// full, or "".
	Pattern string
	// Default is the value used when none is given (string, int64,
	// float64 or bool), or nil.
	Default     any
	Placeholder string
	HelpText    string
	// Options are the choices of a select.
	Options []SelectOption
}

// SelectOption is one choice of a select config field.
type SelectOption struct {
	Value string
	Label string
}

// Variant is one variant of a blueprint.
type Variant struct {
	Key         string
	Name        string
	Description string
	// DefaultConfig holds config values the variant presets.
	DefaultConfig map[string]any
	// Events maps each source event name to its vendor event, in
	// declaration order.
	Events []Mapping
}

// Mapping is one entry of a variant's event map.
type Mapping struct {
	// Event is the event map key as written: a track event's name, or a
	// selector (page:NAME, TYPE:*, * for every other track event, *:*).
	Event string
	// Type is the event type it maps (track, page, screen, identify,
	// group, ...), or "*" for every type.
	Type string
	// VendorEvent is the vendor's event, or "" when it is computed per
	// event.
	VendorEvent string
	Description string
}

func configField(f *compiler.ConfigField) ConfigField {
	out := ConfigField{
		Key: f.Key, Label: f.Label, Type: string(f.Type), Required: f.Required, Secret: f.Secret(),
		Default: f.Default, Placeholder: f.Placeholder, HelpText: f.HelpText,
	}
	if f.Pattern != nil {
		out.Pattern = patternText(f.Pattern)
	}
	for _, o := range f.Options {
		out.Options = append(out.Options, SelectOption{Value: o.Value, Label: o.Label})
	}
	return out
}

// patternText returns the pattern as written: the compiler anchors it as
// ^(?:...)$.
func patternText(re *regexp.Regexp) string {
	s := re.String()
	if len(s) >= 6 && s[:4] == "^(?:" && s[len(s)-2:] == ")$" {
		return s[4 : len(s)-2]
	}
	return s
}

func variant(v *compiler.Variant) Variant {
	out := Variant{Key: v.Key, Name: v.Name, Description: v.Description, DefaultConfig: maps.Clone(v.DefaultConfig)}
	for _, e := range v.Events {
		out.Events = append(out.Events, Mapping{Event: e.Name, Type: e.Type, VendorEvent: e.VendorEvent, Description: e.Description})
	}
	return out
}

// Catalog is a set of blueprints laid out as KEY/VERSION.yaml in a file
// system: the embedded catalog (package blueprints) is one, a folder on
// disk (os.DirFS) is another. Files whose base name is not a semantic
// version (vectors, overlays, notes) are not catalog entries. Compiled
// entries are cached; a Catalog is safe for concurrent use.
type Catalog struct {
	c *compiler.Catalog

	mu      sync.Mutex
	wrapped map[*compiler.Blueprint]*Blueprint
}

// NewCatalog scans fsys for KEY/VERSION.yaml files.
func NewCatalog(fsys fs.FS) (*Catalog, error) {
	c, err := compiler.NewCatalog(fsys)
	if err != nil {
		return nil, err
	}
	return &Catalog{c: c, wrapped: map[*compiler.Blueprint]*Blueprint{}}, nil
}

// Entry is one blueprint file of a catalog.
type Entry struct {
	Key     string
	Version string
	// File is the path inside the catalog's file system.
	File string
}

// Ref returns KEY@VERSION.
func (e Entry) Ref() string { return e.Key + "@" + e.Version }

// Keys lists the catalog keys, sorted.
func (c *Catalog) Keys() []string { return c.c.Keys() }

// Entries lists the versions of a key, oldest first.
func (c *Catalog) Entries(key string) []Entry {
	es := c.c.Entries(key)
	out := make([]Entry, len(es))
	for i, e := range es {
		out[i] = Entry(*e)
	}
	return out
}

// Resolve finds KEY@VERSION, or the newest version of KEY: its newest
// release, or its newest pre-release when it has no release. KEY matches
// case-insensitively.
func (c *Catalog) Resolve(ref string) (Entry, error) {
	e, err := c.c.Resolve(ref)
	if err != nil {
		return Entry{}, err
	}
	return Entry(*e), nil
}

// Source returns the YAML text of an entry.
func (c *Catalog) Source(e Entry) ([]byte, error) {
	ce := compiler.Entry(e)
	return c.c.Source(&ce)
}

// Compile compiles (once) and returns the blueprint at ref (KEY@VERSION or
// KEY). Diagnostics name files by their path in the catalog; when the
// blueprint does not compile, the error says so (and the blueprint is
// nil). Every caller gets the same *Blueprint.
func (c *Catalog) Compile(ref string) (*Blueprint, Diagnostics, error) {
	cb, ds, err := c.c.Compile(ref)
	if cb == nil {
		return nil, ds, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.wrapped[cb]
	if b == nil {
		b = &Blueprint{c: cb}
		c.wrapped[cb] = b
	}
	return b, ds, err
}
