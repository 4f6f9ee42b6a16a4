package compiler

import (
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/expr-lang/expr/vm"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/encoding"
)

// The compiled form. Everything here is built once by Compile and is
// read-only afterwards: a *Blueprint and everything it points to may be
// shared by any number of goroutines. Callers must not modify it.

// Blueprint is a compiled blueprint.
type Blueprint struct {
	Key         string
	Version     string
	Name        string
	Description string
	Category    string
	// Status is the blueprint's lifecycle: alpha, beta or ga.
	Status  string
	Website string
	// Docs holds the integration page's own sections (docs:), for
	// blueprint docs only: nothing at run time reads it. Nil when absent.
	Docs *Docs
	// File is the name the blueprint was compiled from.
	File string
	// Base is KEY@VERSION of the blueprint this overlay extends, or "".
	Base string

	Config []*ConfigField
	// Hosts are the hosts requests may go to; HostConfigs the url config
	// keys whose host is allowed too ({config.KEY} in hosts).
	Hosts       []string
	HostConfigs []string
	Consent     *Consent // nil: no consent gate
	// ConsentConfig, when set, names the select config key choosing the
	// consent category: ConsentByOption holds the gate of each option (nil
	// for the option meaning no gate), and Consent is nil.
	ConsentConfig   string
	ConsentByOption map[string]*Consent
	Warnings        []Warning
	// Values holds every shared value, identities included, in
	// declaration order; Identity is the subset declared under identity.
	Values   []*Value
	Identity []*Value
	Requests []*Request
	Variants []*Variant

	// Diagnostics holds the warnings the compiler reported.
	Diagnostics diag.List

	// Paths lists every field path read on the event, across all variants:
	// each SourcePath source and expression input on the event, and each
	// consent path, has a Slot into it. Slots 0 and 1 are "type" and
	// "event". The runtime scans an event once for all of them.
	Paths []string

	variants map[string]*Variant
	config   map[string]*ConfigField

	// derived is what the runtime derives once per compiled blueprint
	// (Derived): it lives and dies with the blueprint, so nothing global
	// keeps a dropped blueprint alive.
	derived struct {
		once sync.Once
		v    any
	}
}

// Derived returns what build derives from b, building it at most once per
// blueprint. The runtime keeps its per-blueprint plan here.
func (b *Blueprint) Derived(build func(*Blueprint) any) any {
	b.derived.once.Do(func() { b.derived.v = build(b) })
	return b.derived.v
}

// of is set by package engine (SetUnwrap): it returns the compiled form
// behind an *engine.Blueprint.
var of func(any) *Blueprint

// SetUnwrap is called once, by package engine's init, so that packages of
// this module reach the compiled form behind the opaque *engine.Blueprint
// without it being part of engine's public API.
func SetUnwrap(f func(any) *Blueprint) { of = f }

// Of returns the compiled form behind bp, an *engine.Blueprint (nil for a
// nil one).
func Of(bp any) *Blueprint { return of(bp) }

// VendorEventValue returns the builtin value vendor_event (the compiler
// declares the builtins first, vendor_event at index 0).
func (b *Blueprint) VendorEventValue() *Value { return b.Values[0] }

// Ref returns KEY@VERSION.
func (b *Blueprint) Ref() string { return b.Key + "@" + b.Version }

// Variant returns the named variant, or nil.
// Keys are lower case: key matches case-insensitively ("Retail" is
// "retail", as integration pages spell it).
func (b *Blueprint) Variant(key string) *Variant {
	if v := b.variants[key]; v != nil {
		return v
	}
	return b.variants[strings.ToLower(key)]
}

// ConfigField returns the named config field, or nil.
func (b *Blueprint) ConfigField(key string) *ConfigField { return b.config[key] }

// VariantKeys lists the variant keys in declaration order.
func (b *Blueprint) VariantKeys() []string {
	keys := make([]string, len(b.Variants))
	for i, v := range b.Variants {
		keys[i] = v.Key
	}
	return keys
}

// ConfigType is the type of a configuration key.
type ConfigType string

// Config types.
const (
	ConfigString  ConfigType = "string"
	ConfigSecret  ConfigType = "secret"
	ConfigSelect  ConfigType = "select"
	ConfigInteger ConfigType = "integer"
	ConfigNumber  ConfigType = "number"
	ConfigBoolean ConfigType = "boolean"
	ConfigURL     ConfigType = "url"
)

// ConfigField is one configuration key.
type ConfigField struct {
	Key         string
	Type        ConfigType
	Label       string
	Required    bool
	Pattern     *regexp.Regexp // nil: any
	Default     any            // nil: none; else string, int64, float64 or bool
	Placeholder string
	HelpText    string
	Options     []SelectOption
	// Min and Max bound an integer or number.
	Min, Max *float64
	// RequiredWhen, an expression over config, makes the key required
	// when it is true.
	RequiredWhen *Expr
	Pos          diag.Pos
}

// Secret reports whether the value must never be shown.
func (f *ConfigField) Secret() bool { return f.Type == ConfigSecret }

// SelectOption is one choice of a select.
type SelectOption struct {
	Value string
	Label string
}

// Consents returns every consent gate of the blueprint: its one gate, or
// the gate of each option of the config choosing the category, in option
// order.
func (bp *Blueprint) Consents() []*Consent {
	if bp.Consent != nil {
		return []*Consent{bp.Consent}
	}
	var out []*Consent
	if f := bp.ConfigField(bp.ConsentConfig); f != nil {
		for _, o := range f.Options {
			if cs := bp.ConsentByOption[o.Value]; cs != nil {
				out = append(out, cs)
			}
		}
	}
	return out
}

// Consent is the consent gate.
type Consent struct {
	Category string
	// Paths are read in order; the first holding a JSON boolean decides.
	// Slots are their slots in Blueprint.Paths.
	Paths []string
	Slots []int
	// Expr decides instead of Paths when set: true, false or nil (missing).
	Expr *Expr
	// Allow is the decision when nothing decides (when_missing: allow).
	Allow bool
}

// Warning is a declared warning code.
type Warning struct {
	Code        string
	Description string
}

// Docs is the integration page's own text, which the blueprint states
// because no other part of it can: what a customer needs first, how to
// verify the integration, and what a symptom means. Markdown, trimmed.
type Docs struct {
	Prerequisites   []string
	Verify          string
	Troubleshooting []Trouble
}

// Trouble is one row of a troubleshooting table. Meaning may be "".
type Trouble struct {
	Symptom, Meaning, Fix string
}

// Variant is one variant with its whole event map resolved.
type Variant struct {
	Key           string
	Name          string
	Description   string
	DefaultConfig map[string]any
	// RequiredConfig are config keys this variant needs besides those
	// every variant needs.
	RequiredConfig []string
	// Events in declaration order: the base's first, then the variant's.
	Events []*Event
	// byKey holds the track events mapped by name (normalised); sel the
	// other selectors, by Event.Key ("page:home", "page:*", "*:*").
	byKey map[string]*Event
	sel   map[string]*Event
}

// Lookup finds the mapping of a track event by its normalised name.
func (v *Variant) Lookup(normalized string) *Event { return v.byKey[normalized] }

// NamesOnly reports that the variant maps track events by name only: an
// event whose name it does not map needs nothing else read.
func (v *Variant) NamesOnly() bool { return len(v.sel) == 0 }

// Select finds the mapping of an event that Lookup did not map, by its
// type (lower case; "" when the type is not text) and normalised name:
// TYPE:NAME (page and screen), then TYPE:*, then *:*.
func (v *Variant) Select(typ, normalized string) *Event {
	if len(v.sel) == 0 {
		return nil
	}
	if typ != "" {
		if normalized != "" && (typ == "page" || typ == "screen") {
			if e := v.sel[typ+":"+normalized]; e != nil {
				return e
			}
		}
		if e := v.sel[typ+":*"]; e != nil {
			return e
		}
	}
	return v.sel["*:*"]
}

// Event maps one source event to one vendor request.
type Event struct {
	// Name is the event map key as written. Key is its normalised form:
	// the normalised name of a track event mapped by name, else the
	// selector TYPE:NAME (page, screen), TYPE:* or *:* (Type "*").
	Name string
	Key  string
	// Type is the event type it selects (track, page, screen, identify,
	// group, another type, or "*" for every type).
	Type string
	// VendorEvent is the vendor event as written, or "" when VendorSpec
	// computes it per event (the shared value vendor_event).
	VendorEvent string
	VendorSpec  *Spec
	Description string
	Filter      *Expr // nil: no filter
	Request     *Request
	// Warnings are the codes this event can attach.
	Warnings []string
	// WarnWhen attaches a warning when its expression is true (the
	// request's rules, then the mapping's).
	WarnWhen []*WarnRule
	// Variant is the variant that declared the mapping, "" for the base.
	Variant string
	Pos     diag.Pos
	// src is the mapping as written, compiled again for a variant that
	// changes its request.
	src kv
}

// WarnRule attaches a warning code when its expression is true.
type WarnRule struct {
	Code string
	Expr *Expr
}

// Request is one vendor HTTP request, with the body of the event that
// sends it.
type Request struct {
	Name        string
	Description string
	Method      string
	URL         *Template
	Headers     []*Header
	// MethodConfig, when set, names the select config key whose value is
	// the method.
	MethodConfig string
	// Auths are the request's auths: one, or alternatives with When;
	// the first that holds at Bind is used. None: no auth.
	Auths []*Auth
	// BodyFromEvent: the body is the received event, byte for byte.
	BodyFromEvent bool
	// Batch, when set, lets the sender join events into one request.
	Batch *Batch
	Body  *Object
	// Encoding writes the body on the wire (the blueprint's encoding:,
	// JSON by default).
	Encoding encoding.Encoder
	// Responses says how to read the vendor's answers.
	Responses *Responses
	// WarnWhen are the request's conditional warnings.
	WarnWhen []*WarnRule
	Pos      diag.Pos
}

// Template is text with {config.KEY} and {values.NAME} placeholders,
// split into parts at compile time.
type Template struct {
	Text  string
	Parts []TemplatePart
	// HasOptional: some placeholder is optional ({values.NAME?}).
	HasOptional bool
}

// TemplatePart is a literal or one placeholder.
type TemplatePart struct {
	Literal string
	Config  string // config key, or ""
	Value   *Value // shared value, or nil
	// Escape says how the placeholder's text is written (URLs only).
	Escape Escape
	// Optional placeholders ({values.NAME?}) that are absent leave out
	// what holds them: their query parameter, their header, or nothing
	// in a path; a plain one absent is a missing field.
	Optional bool
}

// Header is one request header.
type Header struct {
	Name   string
	Value  *Template
	Secret bool
}

// AuthType says how a request authenticates.
type AuthType string

// Auth types.
const (
	AuthBasic  AuthType = "basic"
	AuthBearer AuthType = "bearer"
	AuthHeader AuthType = "header"
	AuthQuery  AuthType = "query"
	// AuthSignature signs the exact body bytes sent with an HMAC, once
	// per attempt (see Signature).
	AuthSignature AuthType = "signature"
	// AuthOAuth2 gets a bearer token from a token endpoint with the OAuth
	// 2.0 client credentials grant (RFC 6749 §4.4), cached and refreshed
	// by the sender.
	AuthOAuth2 AuthType = "oauth2_client_credentials"
)

// Auth is a request's authentication. Its rendered values are always
// treated as secret.
type Auth struct {
	Type     AuthType
	Username *Template // basic
	Password *Template // basic
	Token    *Template // bearer
	Name     string    // header or query parameter name
	Value    *Template // header, query
	// When, over config only, chooses this auth among a request's
	// alternatives (the first that holds); nil holds.
	When *Expr
	// Signature is set for AuthSignature.
	Signature *Signature
	// TokenURL, ClientID, ClientSecret and Scopes: AuthOAuth2.
	TokenURL, ClientID, ClientSecret *Template
	Scopes                           []string
}

// Signature is an HMAC over the exact body bytes sent: hex of
// HMAC-Algorithm(Secret, [TIMESTAMP Separator] BODY), written as Prefix +
// hex into Header, and the time of signing into TimestampHeader when set.
// It is computed for every attempt, so a retry carries a fresh timestamp.
type Signature struct {
	Secret          *Template
	Header          string
	Prefix          string
	Algorithm       string // sha256, sha1, sha512
	TimestampHeader string
	TimestampFormat string // unix_millis, unix_seconds
	Separator       string
}

// Batch says how events of one request are sent together.
type Batch struct {
	// Into is the top-level body array the events' arrays are joined
	// into.
	Into string
	// Enabled, MaxEvents, MaxWaitMS and MaxBytes are constants or config
	// keys, decided at Bind.
	Enabled                        Setting
	MaxEvents, MaxWaitMS, MaxBytes Setting
}

// Setting is a constant or the value of a config key.
type Setting struct {
	Const  int64 // booleans: 1 true, 0 false
	Config string
}

// Object is an ordered set of fields.
type Object struct {
	Fields []*Field
	// Order lists field indices in evaluation order: every field after the
	// sibling fields its expressions read.
	Order []int
	// OmitUnless lists field indices that must all be present for the
	// object to be written.
	OmitUnless []int
	// InOrder reports that Order is the declaration order.
	InOrder bool
	// Reads: some field of the object is Read (by a sibling, or by
	// omit_unless).
	Reads bool
	// ItemPaths, for the fields of an array's items, lists the paths read
	// on each item; sources and inputs inside have slots into it.
	ItemPaths []string
}

// Kind is the type rule of a value.
type Kind uint8

// Kinds.
const (
	KindAny Kind = iota
	KindString
	KindID
	KindInteger
	KindNumber
	KindBoolean
	KindMoney
	KindCurrency
	KindTime
	KindEmailSHA256
	KindObject
	KindArray
	KindDecimal
)

var kindNames = [...]string{"any", "string", "id", "integer", "number", "boolean", "money", "currency", "time", "email_sha256", "object", "array", "decimal"}

func (k Kind) String() string { return kindNames[k] }

func kindByName(s string) (Kind, bool) {
	for i, n := range kindNames {
		if n == s {
			return Kind(i), true
		}
	}
	return 0, false
}

// Type is a type rule with its parameters.
type Type struct {
	Kind Kind
	// Currency is the value of kind currency that money and decimal are
	// rounded with (its ISO 4217 exponent; 2 when absent or invalid).
	Currency *Value
	Min, Max *float64
	Pattern  *regexp.Regexp
	// Scale is the fraction digits a decimal is rounded to and written
	// with; -1: as written (or the currency's exponent with Currency).
	Scale int
	// Format writes a time: "" (RFC 3339 UTC to the second),
	// unix_seconds, unix_millis, unix_micros, or a Go time layout.
	Format string
	// Text writes a decimal, number, integer or unix time as a JSON
	// string instead of a number.
	Text bool
	// Keep, for an object, lists the JSON types of the members kept
	// ("string", "number", ...); nil keeps every member.
	Keep []string
}

// Time formats besides RFC 3339 and Go layouts.
const (
	TimeUnixSeconds = "unix_seconds"
	TimeUnixMillis  = "unix_millis"
	TimeUnixMicros  = "unix_micros"
)

// SourceKind says where a source reads from.
type SourceKind uint8

// Source kinds.
const (
	SourcePath SourceKind = iota
	SourceValue
	SourceConfig
	SourceConst
	SourceExpr
)

// Source is one place a value may come from.
type Source struct {
	Kind   SourceKind
	Path   string // gjson path
	Slot   int    // the path's slot (Blueprint.Paths, or the items' ItemPaths)
	Value  *Value
	Config string
	Const  []byte // JSON
	Expr   *Expr
}

// Spec says where a value comes from and what rule it follows.
type Spec struct {
	// Sources in order: the first present and non-empty wins.
	Sources []Source
	Type    Type
	// Default is the JSON used when every source is absent, or nil.
	Default []byte
	Pos     diag.Pos
	// PathsOnly: every source is a path (the runtime's shortest route).
	PathsOnly bool
	// AsValue is set when the spec is exactly one shared value, of any
	// type, without default: its result is the value's.
	AsValue *Value
}

// Value is a named shared value, computed at most once per event.
type Value struct {
	Name        string
	Index       int
	Description string
	Identity    bool
	// Builtin values (vendor_event, source_event) have no sources: the
	// runtime supplies them.
	Builtin bool
	Spec
	// Deps are the values this one reads.
	Deps []*Value
}

// Field is one vendor field of a request body.
type Field struct {
	Name string
	// JSONKey is the name written as a JSON object key, with its colon.
	JSONKey string
	// CommaKey is JSONKey after a comma: the key of every field written
	// after the first of its object, in one append.
	CommaKey string
	// Path names the field in faults: "order_id", "customer.id",
	// "line_items[].total" (the runtime writes the index between the
	// brackets), "ItemSku\x01" (an indexed list's item: the runtime
	// writes the item's number from 1 in place of \x01).
	Path string
	Spec
	Required     bool
	WarnIfAbsent string
	List         bool
	Secret       bool
	// When, if set, must be true for the field to be written; otherwise
	// the field is absent, with no fault and no warning.
	When *Expr
	// Internal fields are evaluated and read by siblings, never written.
	Internal bool
	// Object is set for kind object (its fields) and kind array with items
	// (the fields of each item), or with each (its one field, whose value
	// is written bare: a list of single values).
	Object *Object
	Each   bool
	// Join writes a list as one text, its values joined with Join.
	Join    string
	HasJoin bool
	// Flatten writes the list as indexed flat keys in pairs encodings.
	Flatten bool
	// Deps are the indices of sibling fields this field's expressions read.
	Deps []int
	// Read: a sibling reads this field (Deps) or the object's omit_unless
	// names it; the runtime keeps its value while writing the object.
	Read bool
	// Route is the runtime's way of writing the field, decided once here
	// from the flags above (routeOf) so that the writer dispatches on one
	// byte per field instead of testing When, Internal, Secret, HasJoin,
	// PathsOnly, Kind, Object and Pattern in turn for every event.
	Route Route
}

// Route says which of the runtime's writers a field takes. Every route
// but RouteGeneral is a shorter form of the general one for fields
// without when, internal, secret or join (which only the general route
// handles): it makes the same decisions and writes the same bytes.
type Route uint8

// Routes.
const (
	// RouteGeneral: anything else.
	RouteGeneral Route = iota
	// RoutePaths: read from event or item paths only, of kind string,
	// id, integer or money without a pattern: the event's text is copied
	// (or the amount converted) when it can be, as it is.
	RoutePaths
	// RouteValue: exactly one shared value, taken as it is (AsValue).
	RouteValue
	// RouteArith: one expression that is native integer arithmetic
	// (Expr.Arith), of kind integer, without default or list.
	RouteArith
	// RouteObject: a nested object (kind object with fields).
	RouteObject
	// RouteItems: a list of objects or of single values (kind array with
	// items or each).
	RouteItems
	// RouteSpec: any other field without an object: its spec's value,
	// type rule applied.
	RouteSpec
)

// routeOf decides a field's Route; its spec's PathsOnly and AsValue must
// be set.
func routeOf(f *Field) Route {
	if f.When != nil || f.Internal || f.Secret || f.HasJoin {
		return RouteGeneral
	}
	switch {
	case f.Object != nil && f.Type.Kind == KindObject:
		return RouteObject
	case f.Object != nil && f.Type.Kind == KindArray:
		return RouteItems
	case f.Object != nil:
		return RouteGeneral
	case f.PathsOnly && f.Type.Pattern == nil:
		switch f.Type.Kind {
		case KindString, KindID, KindInteger, KindMoney:
			return RoutePaths
		}
	case f.AsValue != nil:
		return RouteValue
	case len(f.Sources) == 1 && f.Sources[0].Kind == SourceExpr && f.Sources[0].Expr != nil && f.Sources[0].Expr.Arith != nil &&
		f.Default == nil && f.Type.Kind == KindInteger && !f.List:
		return RouteArith
	}
	return RouteSpec
}

// Member implements encoding.Shape: the named field, or nil.
func (o *Object) Member(name string) encoding.Shape {
	if o == nil {
		return nil
	}
	for _, f := range o.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Indexed implements encoding.Shape: an object is not a list.
func (o *Object) Indexed() bool { return false }

// Member implements encoding.Shape: the named field of the field's
// object or items, or nil.
func (f *Field) Member(name string) encoding.Shape { return f.Object.Member(name) }

// Indexed implements encoding.Shape.
func (f *Field) Indexed() bool { return f.Flatten }

// InputKind says what an expression input reads.
type InputKind uint8

// Input kinds.
const (
	InputEvent  InputKind = iota // a path on the raw event ("" = all of it)
	InputItem                    // a path on the current array item
	InputConfig                  // a config value
	InputValue                   // a shared value
	InputField                   // a sibling field's output
	InputStatus                  // response rules: the HTTP status
	InputBody                    // response rules: a path on the response body ("" = all of it)
	InputHeader                  // response rules: a response header (lower-case name)
	InputText                    // response rules: the response body as text
)

// Input is one variable of a compiled expression, resolved at compile time.
type Input struct {
	Kind   InputKind
	Name   string // env variable name in the program
	Path   string // gjson path for InputEvent, InputItem, InputBody; header name for InputHeader
	Slot   int    // slot of Path for InputEvent and InputItem (-1 for the whole event or item)
	Config string
	Value  *Value
	Field  int
}

// Expr is a compiled expression.
type Expr struct {
	Text    string
	Pos     diag.Pos
	Program *vm.Program
	Inputs  []Input
	// Arith is set when the whole expression is checked integer arithmetic
	// on two inputs (fields.amount * fields.quantity): the runtime computes
	// it natively, without the VM.
	Arith *Arith
}

// Arith is a checked integer operation on two inputs of an expression.
type Arith struct {
	Op   byte // '+', '-' or '*'
	A, B int  // indices into Inputs
}

// ResponseOutcome is what a vendor's answer means for an attempt.
type ResponseOutcome string

// Response outcomes.
const (
	// OutcomeDelivered: the vendor accepted the request.
	OutcomeDelivered ResponseOutcome = "delivered"
	// OutcomeDuplicate: the vendor already had it; counted as delivered.
	OutcomeDuplicate ResponseOutcome = "duplicate"
	// OutcomeRetry: try again later.
	OutcomeRetry ResponseOutcome = "retry"
	// OutcomeFailed: a permanent failure, never retried: a dead letter.
	OutcomeFailed ResponseOutcome = "failed"
)

// Responses says how to read a vendor's answers to one request.
type Responses struct {
	// MessagePath is the gjson path of the vendor's error message in a
	// JSON body, or "".
	MessagePath string
	// Rules, first match wins: the request's own, then the blueprint's,
	// then the defaults (2xx delivered; 408, 429, 5xx retry; else failed).
	Rules []*ResponseRule
}

// ResponseRule matches a status (and optionally an expression over the
// status, the body and the headers).
type ResponseRule struct {
	// Statuses are inclusive ranges; empty matches any status.
	Statuses []StatusRange
	When     *Expr
	Outcome  ResponseOutcome
	Message  string
	// MessageExpr gives the message to report (nil result: Message, or
	// the vendor's message).
	MessageExpr *Expr
	Description string
	// Default marks the built-in rules.
	Default bool
	Pos     diag.Pos
}

// StatusRange is an inclusive range of HTTP statuses.
type StatusRange struct{ Lo, Hi int }

// Match reports whether the rule's statuses cover status.
func (r *ResponseRule) Match(status int) bool {
	if len(r.Statuses) == 0 {
		return true
	}
	for _, s := range r.Statuses {
		if status >= s.Lo && status <= s.Hi {
			return true
		}
	}
	return false
}

// DefaultResponseRules returns the rules that apply after a blueprint's
// own, as new values: a compiled blueprint owns its copies, so nothing a
// caller does to one changes another (or the defaults).
func DefaultResponseRules() []*ResponseRule {
	out := make([]*ResponseRule, len(defaultResponseRules))
	for i, r := range defaultResponseRules {
		c := *r
		c.Statuses = slices.Clone(r.Statuses)
		out[i] = &c
	}
	return out
}

var defaultResponseRules = []*ResponseRule{
	{Statuses: []StatusRange{{200, 299}}, Outcome: OutcomeDelivered, Default: true, Description: "2xx: accepted"},
	{Statuses: []StatusRange{{408, 408}, {429, 429}, {500, 599}}, Outcome: OutcomeRetry, Default: true, Description: "timeout, throttled or server error: retried"},
	{Outcome: OutcomeFailed, Default: true, Description: "any other status: a permanent failure"},
}
