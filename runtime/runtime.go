// Package runtime evaluates a compiled blueprint against events.
//
// Bind checks an integration's config once and returns an *Integration;
// Evaluate turns one raw JSON event into exactly one Result: deliver (with
// the vendor requests, built byte for byte), skip or reject, each with a
// stable reason code. An *Integration is immutable and safe for concurrent
// use by any number of goroutines.
//
//	in, err := runtime.Bind(bp, "default", map[string]any{"application_id": "app-1", "api_key": key})
//	res := in.Evaluate(eventJSON)
//	switch res.Outcome {
//	case runtime.Deliver: // res.Requests
//	case runtime.Skip, runtime.Reject: // res.Reason, res.Fields
//	}
//
// Evaluate checks, in this order, and the first that fails decides:
//
//  1. the event: at most the size limit (Options.MaxEventSize), well-formed
//     JSON, an object, at most MaxDepth deep, no key the blueprint reads
//     twice in its top-level object (else reject invalid_event);
//  2. the type: absent, or track (else skip event_not_mapped);
//  3. the event name, normalised, in the variant's event map (else skip
//     event_not_mapped);
//  4. no key the blueprint reads twice in its object, at any level (else
//     reject invalid_event, naming the path, e.g.
//     context.consent.advertising);
//  5. the mapping's filter, if any: only true passes; false, nil or a
//     filter that cannot be evaluated skip filtered;
//  6. consent, when the blueprint is gated (else skip consent_denied);
//  7. the requests' fields and URLs: when any required one is missing,
//     reject missing_required_field naming every missing field; else, when
//     any is invalid, reject invalid_field naming every invalid one (a
//     field is named for its own source, never for what is derived from
//     it; a URL placeholder for its value). At most 100 are named; past
//     them Fields ends with "and N more";
//  8. deliver, with the requests and any warnings.
//
// invalid_config never comes from Evaluate: Bind refuses such a config,
// with a *ConfigError. Evaluate does not keep the event buffer: the caller
// may reuse it once Evaluate returns.
//
// Duplicate keys. JSON readers disagree about an object holding one key
// twice: JavaScript, Python and Go's encoding/json read the last; gjson,
// its Value (what expressions see of an object) and a scan that stops at
// the first match, the first. The platform would then check one value and
// this engine deliver another (a consent of
// {"advertising":true,"advertising":false} is denied there). So an event
// is refused when an object holds twice a key this engine reads: a key on
// one of the blueprint's paths, at any level (context, context.consent,
// context.consent.advertising; type and event), or any key inside a value
// read whole (an expression input or a value or field an expression
// reads, items scanned again, or the whole event when a path has
// wildcards or an expression reads the event). Duplicates nothing here
// reads are left alone: the engine reads neither, and the platform and the
// vendor read them as they would without it (an object an any field
// passes on reaches the vendor as it came).
// Keys are compared as text after their escapes are undone ("a" and
// "\u0061" are one key; lone surrogates read as U+FFFD). A duplicate in
// the top-level object refuses any event (step 1: type and event decide
// everything else); one deeper refuses an event the variant maps (step
// 4): an unmapped event is skipped whatever it holds below its top level,
// as nothing of it is read. The check is part of the one validating scan:
// a key of the blueprint's paths costs a bit in its object's frame; below
// a value read whole, small objects are checked key by key against a
// one-word set of fingerprints, wide ones (over 24 keys) with a hash table
// when they close.
//
// URLs. A URL placeholder's text is checked for where it sits: one DNS
// label in the host, a port number in the port, and no dot segment (. or
// .., also once percent-decoded, with \ read as / or a ;parameter cut) in
// the path; and every URL built from event data is parsed and its host
// checked against the integration's allow-list before Evaluate returns
// it. A request that would leave the allow-list is never produced: the
// event is invalid_field, naming the value.
//
// Events are read as raw bytes in one validating scan that records where
// each value the blueprint reads sits (a trie of its paths, built once per
// blueprint; array items get a window of slots each in the same pass);
// gjson resolves only paths the scan cannot express (wildcards, queries).
// An event the variant does not map stops recording once its name is
// read: the rest is only validated. Fields that are a path to plain text,
// an integer or an amount are written straight from the event bytes.
// Nothing is unmarshalled into maps unless an expression reads a whole
// object. A delivered event costs two allocations (its request and body),
// a skipped one none.
//
// Validating once. A service that checks every event at ingestion, or
// sends one event to many integrations, calls Valid once (size, UTF-8, one
// well-formed object, nothing after it, depth) and EvaluateValid per
// integration: the same decision as Evaluate, without scanning the bytes
// to check them again; an event a name-only variant does not map is
// skipped from its type and name alone, without being read further. A
// ValidEvent is made only by Valid (its fields are unexported): arbitrary
// bytes cannot be passed as checked. Keys twice in one object are checked
// by EvaluateValid, as by Evaluate, for the keys each blueprint reads.
// EvaluateEach is EvaluateValid for many integrations at once, in one
// call: integrations bound to the same variant of one compiled blueprint
// (thousands of tenants share a few) read an event alike, so it is
// scanned once for all of them, and each integration computes only what
// its config decides.
//
// # Redaction
//
// A request holds the real credentials; every view this package gives of
// a result, a request or a vendor answer is scrubbed of the integration's
// secrets: Result.String, MarshalJSON (AppendJSON), LogValue and Message,
// Integration.Redacted, RedactURL, Redact and RedactJSON, and
// Verdict.Message from Classify (runtime/send adds the sender's attempt
// messages and errors, and so what reaches logs and dead letters). What
// is scrubbed, for each config value of type secret:
//
//   - the value as written, url.QueryEscape'd, url.PathEscape'd, inside a
//     JSON string (HTML-escaped or not) or a Go-quoted one, and behind JSON
//     string escapes in any mix (sk\u002d..., \u0073k...) or behind
//     percent-escapes of either case in any mix (sk%2d..., %73k...), with
//     '+' for a space or not (form bodies and query strings, whichever
//     characters their encoder escapes), in any text, JSON or not;
//   - its base64, standard or URL alphabet, padded or not, at any offset of
//     any base64 text: for each of its 3 alignments in a 3-byte group, the
//     characters that depend on the value alone, with the last, partial
//     character and the padding when the value ends the text; and the
//     whole encodings of value, value+":" and ":"+value;
//   - every credential rendered from config at Bind, as a unit, in the
//     same text forms: the Authorization credential after its scheme word
//     (shown Basic ***), the user:password a Basic credential decodes to,
//     the value of an auth header or of a header marked secret, the query
//     auth value as sent and decoded;
//   - the start of a secret form, 4 bytes or more, right before a cut mark
//     ("..." or "…"), after any number of marks: values cut to 40 bytes in
//     messages keep no start of a secret; a vendor's text is scrubbed
//     before it is cut to 200.
//
// Every occurrence is masked (***), overlapping ones as one, in one pass
// linear in the text (an Aho-Corasick automaton over every form, built at
// Bind); a text holding none costs a few substring searches. A secret that
// holds the mask's character cannot form again around a mask.
//
// Residual limits: a form shorter than 4 bytes is not scrubbed from free
// text, so a secret shorter than 4 characters is masked only where it is
// known to be (auth, secret headers and fields) and in its longer
// encodings; before a cut mark up to 3 bytes of a secret form may show,
// and in base64 the one character on each side of an embedded secret that
// mixes its bits with its neighbours' (a few bits each); the start of a
// secret at the end of a text that a vendor cut without a mark is not
// masked; a secret header whose value reads event data is masked in the
// views of its request but not scrubbed from other text (its value is not
// known at Bind); other encodings (hex, percent-escapes mixed with JSON
// escapes, base64 of an escaped form, encryption) are not recognised.
package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/conv"
	"github.com/blueprint-engine/blueprint/internal/encoding"
)

// Outcome is one word of the single vocabulary that says what happened to
// an event and to each of its requests, from the decision to the final
// state:
//
//	stage            outcomes                              where
//	decision         deliver, skip, reject                 Result.Outcome (Evaluate)
//	vendor answer    delivered, duplicate, retry, failed   Verdict.Outcome (Classify); a blueprint's responses rules
//	final state      delivered, skipped, dead              outbox.State (pending until then)
//
// A decision of deliver puts each request on its way: every attempt's
// answer is classified (duplicate counts as delivered, retry waits for the
// next attempt, failed is final), and each request ends delivered, skipped
// (consent withdrawn before an attempt) or dead (a dead letter: failed, or
// out of attempts). The CLI's summary line counts the same words: N
// delivered, N skipped, N rejected, N dead-lettered.
type Outcome string

// Decisions: what Evaluate makes of an event.
const (
	Deliver Outcome = "deliver" // one or more vendor requests are built
	Skip    Outcome = "skip"    // intentionally not sent (Result.Reason says why)
	Reject  Outcome = "reject"  // cannot be sent as is (Result.Reason and Fields say why)
)

// Vendor answers: what Classify makes of one attempt's response.
const (
	Delivered Outcome = "delivered" // the vendor accepted the request
	Duplicate Outcome = "duplicate" // the vendor already had it: counted as delivered
	Retry     Outcome = "retry"     // try again later (timeout, throttled, server error)
	Failed    Outcome = "failed"    // a permanent failure, never retried: a dead letter
)

// Reason codes (stable).
const (
	ReasonConsentDenied        = "consent_denied"
	ReasonEventNotMapped       = "event_not_mapped"
	ReasonFiltered             = "filtered"
	ReasonMissingRequiredField = "missing_required_field"
	ReasonInvalidField         = "invalid_field"
	ReasonInvalidEvent         = "invalid_event"
	ReasonInvalidConfig        = "invalid_config"
)

// Defaults for Options.
const (
	DefaultMaxEventSize = 1 << 20 // 1 MiB
	DefaultMaxDepth     = 64
	// DefaultExprBytes is what one event's expressions may build (8 MiB).
	// It is the compiler's default too (TestPublicDocsHideInternals).
	DefaultExprBytes = 8 << 20
	// DefaultExprSteps is how many steps one event's expressions may take.
	DefaultExprSteps = 1_000_000
)

// Options tune an Integration.
type Options struct {
	// MaxEventSize is the largest event accepted, in bytes.
	MaxEventSize int
	// MaxDepth is the deepest nesting of objects and arrays accepted.
	MaxDepth int
	// ExprBytes and ExprSteps are the budget one event's expressions
	// share: the bytes they may build and the steps they may take (0:
	// DefaultExprBytes, DefaultExprSteps). An expression that would
	// exceed it fails: its field is invalid_field.
	ExprBytes, ExprSteps int64
	// Clock gives the time of signing of a signature auth at Evaluate
	// (nil: time.Now). The sender signs every attempt again, with its own
	// clock.
	Clock func() time.Time
	// AllowPrivateAddresses accepts a url config value whose host is a
	// private, loopback or link-local IP literal, refused by default
	// (invalid_config). Set it with the sender's AllowPrivateAddresses:
	// the operator allows internal receivers.
	AllowPrivateAddresses bool
}

// Option sets an Option.
type Option func(*Options)

// WithMaxEventSize sets the largest event accepted (default 1 MiB).
func WithMaxEventSize(n int) Option { return func(o *Options) { o.MaxEventSize = n } }

// WithMaxDepth sets the deepest nesting accepted (default 64).
func WithMaxDepth(n int) Option { return func(o *Options) { o.MaxDepth = n } }

// WithExprBudget sets the budget one event's expressions share: the bytes
// they may build and the steps they may take (defaults DefaultExprBytes
// and DefaultExprSteps; 0 keeps a default).
func WithExprBudget(bytes, steps int64) Option {
	return func(o *Options) { o.ExprBytes, o.ExprSteps = bytes, steps }
}

// WithClock sets the clock that signs requests at Evaluate (default
// time.Now): conformance vectors fix it with now.
func WithClock(now func() time.Time) Option { return func(o *Options) { o.Clock = now } }

// WithAllowPrivateAddresses accepts url config values that are private,
// loopback or link-local IP literals (default: refused), for an operator
// whose sender allows such receivers (send.Options.AllowPrivateAddresses).
func WithAllowPrivateAddresses(allow bool) Option {
	return func(o *Options) { o.AllowPrivateAddresses = allow }
}

// Integration is a blueprint bound to one variant and one checked config.
type Integration struct {
	// hosts is the blueprint's host allow-list, as it was at Bind.
	hosts   []string
	pub     *engine.Blueprint
	bp      *compiler.Blueprint
	variant *compiler.Variant
	opts    Options
	// config holds checked values (string, int64, float64, bool).
	config map[string]any
	// configText is each value as it is written into templates.
	configText map[string]string
	red        *redactor
	// plan and requests are derived once: the paths to scan, and each
	// request's URL and headers as far as config decides them.
	plan     *bpPlan
	requests map[*compiler.Request]*requestPlan
	// unmapped caches, per event name the variant does not map, the
	// result's Event and Message, scrubbed: skipping such an event (the
	// commonest outcome on a busy source) then allocates nothing.
	unmapped atomic.Pointer[map[string]skipText]
	// consentDenied, consentMissing, noNameMsg and filteredMsg are skip
	// messages that hold no event data, scrubbed once.
	consentDenied, consentMissing, noNameMsg, filteredMsg string
	// eventNames are the variant's event names as the blueprint writes
	// them, scrubbed.
	eventNames map[*compiler.Event]string
	// exactNames maps an event name written exactly as the blueprint
	// writes one to what Lookup finds for it: the commonest name an event
	// carries is found with one map access, without normalising it
	// (AppendNormalizedName and the lookup of its result measured about
	// 900 instructions for "Order Completed", this about 100).
	exactNames map[string]*compiler.Event
	// exactLens has bit n set when a name of exactNames is n bytes long
	// (n < 64): most names not mapped are not looked up there at all
	// (the map's miss measured about 150 instructions, a quarter of the
	// prevalidated skip of an unmapped event).
	exactLens uint64
	// consent is the consent gate, chosen at Bind when config chooses
	// the category; nil: no gate.
	consent *compiler.Consent
	// hasOAuth: some request fetches a token at send time, which vendor
	// messages are scrubbed of.
	hasOAuth bool
}

// skipText is the scrubbed Event and Message of an unmapped event.
type skipText struct{ event, msg string }

// maxUnmappedNames and maxCachedName bound the unmapped-name cache (to
// about 100 KB): past 256 names (a source sending ever new names), or for
// a name longer than 128 bytes (not a name but data), names are rendered
// per event.
const (
	maxUnmappedNames = 256
	maxCachedName    = 128
)

// unmappedText returns the Event and Message of an event whose name the
// variant does not map, from the cache when it can.
func (in *Integration) unmappedText(name []byte) skipText {
	old := in.unmapped.Load()
	if old != nil {
		if t, ok := (*old)[string(name)]; ok { // no allocation: a lookup
			return t
		}
	}
	event := string(name)
	if len(name) > maxCachedName {
		return in.renderUnmapped(event)
	}
	t := in.renderUnmapped(event)
	for old == nil || len(*old) < maxUnmappedNames {
		m := make(map[string]skipText, 1+len(mapOrNil(old)))
		for k, v := range mapOrNil(old) {
			m[k] = v
		}
		m[event] = t
		if in.unmapped.CompareAndSwap(old, &m) {
			break
		}
		old = in.unmapped.Load()
	}
	return t
}

// renderUnmapped renders the scrubbed Event and Message of an unmapped
// event.
func (in *Integration) renderUnmapped(event string) skipText {
	return skipText{
		event: in.red.String(event),
		msg:   in.red.String("event " + strconv.Quote(event) + " is not in the event map of " + in.bp.Ref() + " variant " + in.variant.Key),
	}
}

func mapOrNil(m *map[string]skipText) map[string]skipText {
	if m == nil {
		return nil
	}
	return *m
}

// ConfigError refuses a config: reason invalid_config. It never holds a
// secret value.
type ConfigError struct {
	// Keys are the config keys at fault, sorted.
	Keys []string
	// Problems says what is wrong with each key.
	Problems map[string]string
}

func (e *ConfigError) Error() string {
	parts := make([]string, len(e.Keys))
	for i, k := range e.Keys {
		parts[i] = k + " " + e.Problems[k]
	}
	return "invalid_config: " + strings.Join(parts, "; ")
}

// ErrUnknownVariant is returned by Bind for a variant the blueprint lacks.
var ErrUnknownVariant = errors.New("unknown variant")

// Bind checks config against the blueprint's config fields for the variant
// ("" means "default") and returns the integration. The variant's
// default_config and each field's default fill keys that are not given. A
// refused config returns a *ConfigError naming every key at fault: missing
// required keys, values that break their type or pattern, unknown keys, and
// values that cannot stand in a URL host.
func Bind(blueprint *engine.Blueprint, variant string, config map[string]any, opts ...Option) (*Integration, error) {
	bp := compiler.Of(blueprint)
	if bp == nil {
		return nil, errors.New("runtime: Bind: nil blueprint (it did not compile?)")
	}
	if variant == "" {
		variant = "default"
	}
	v := bp.Variant(variant)
	if v == nil {
		return nil, fmt.Errorf("%w %q: %s has %s", ErrUnknownVariant, variant, bp.Ref(), strings.Join(bp.VariantKeys(), ", "))
	}
	in := &Integration{
		hosts:      slices.Clone(bp.Hosts), // a snapshot: the allow-list cannot be widened after Bind
		pub:        blueprint,
		bp:         bp,
		variant:    v,
		opts:       Options{MaxEventSize: DefaultMaxEventSize, MaxDepth: DefaultMaxDepth},
		config:     map[string]any{},
		configText: map[string]string{},
	}
	for _, o := range opts {
		o(&in.opts)
	}
	problems := map[string]string{}
	var secrets []string
	for _, f := range bp.Config {
		raw, given := config[f.Key]
		if !given || raw == nil {
			raw, given = v.DefaultConfig[f.Key]
		}
		if !given || raw == nil {
			if f.Default != nil {
				raw, given = f.Default, true
			}
		}
		if !given || raw == nil || raw == "" {
			if f.Required {
				problems[f.Key] = "is required"
			}
			continue
		}
		val, err := compiler.CheckConfigValueAllowing(f, raw, in.opts.AllowPrivateAddresses)
		if err != nil {
			problems[f.Key] = err.Error()
			continue
		}
		in.config[f.Key] = val
		in.configText[f.Key] = fmt.Sprint(val)
		if f.Secret() {
			secrets = append(secrets, val.(string))
		}
	}
	for _, k := range v.RequiredConfig {
		if _, ok := in.config[k]; !ok && problems[k] == "" {
			problems[k] = "is required by variant " + v.Key
		}
	}
	for _, f := range bp.Config {
		if _, ok := in.config[f.Key]; ok || f.RequiredWhen == nil || problems[f.Key] != "" {
			continue
		}
		if in.configHolds(f.RequiredWhen) {
			problems[f.Key] = "is required when " + f.RequiredWhen.Text
		}
	}
	// A request's method from config must be given. The chosen auth is
	// rendered from config: a key it reads must be given, or the credential is sent empty (a signature keyed with
	// nothing, which anyone can forge; "Bearer " with no token).
	for _, e := range v.Events {
		if k := e.Request.MethodConfig; k != "" && problems[k] == "" {
			if _, ok := in.config[k]; !ok {
				// Else the method is "", which net/http sends as GET.
				problems[k] = "is required: it is the method of request " + e.Request.Name
			}
		}
		a := in.chooseAuth(e.Request)
		if a == nil {
			continue
		}
		ts := []*compiler.Template{a.Username, a.Password, a.Token, a.Value, a.TokenURL, a.ClientID, a.ClientSecret}
		if a.Signature != nil {
			ts = append(ts, a.Signature.Secret)
		}
		for _, t := range ts {
			if t == nil {
				continue
			}
			for _, p := range t.Parts {
				if _, ok := in.config[p.Config]; p.Config != "" && !ok && problems[p.Config] == "" {
					problems[p.Config] = "is required by the auth of request " + e.Request.Name
				}
			}
		}
	}
	// A url config's host is allowed ({config.KEY} in hosts).
	for _, k := range bp.HostConfigs {
		if s, ok := in.config[k].(string); ok {
			if h := compiler.URLHost(s); h != "" && !slices.Contains(in.hosts, h) {
				in.hosts = append(in.hosts, h)
			}
		}
	}
	in.consent = bp.Consent
	if k := bp.ConsentConfig; k != "" {
		if s, ok := in.config[k].(string); ok {
			in.consent = bp.ConsentByOption[s]
		} else if problems[k] == "" {
			// Without a category there is no gate: consent would fail
			// open, every event sent whatever its consent says.
			problems[k] = "is required: it chooses the consent category"
		}
	}
	for k := range config {
		if bp.ConfigField(k) == nil {
			problems[k] = "is not a config key of " + bp.Ref()
		}
	}
	// A config value written into a URL must fit where it sits: one DNS
	// label in the host, a number in the port, no dot segment in the path.
	for _, e := range v.Events {
		for _, p := range e.Request.URL.Parts {
			s, ok := in.configText[p.Config]
			if p.Config == "" || !ok {
				continue
			}
			switch {
			case p.Escape == compiler.EscapeHost && !dnsLabel(s):
				problems[p.Config] = "cannot stand in the request host (one DNS label: letters, digits and '-', 1 to 63 of them, not starting or ending with '-')"
			case p.Escape == compiler.EscapePort && !portText(s):
				problems[p.Config] = "cannot stand in the request port (a number from 1 to 65535)"
			case p.Escape == compiler.EscapePath && dotSegment(sbytes(url.PathEscape(s))):
				problems[p.Config] = "would make a dot segment (. or ..) of the request path"
			}
		}
		// And one written into a header value, as is, must not end it.
		ts := []*compiler.Template{}
		for _, h := range e.Request.Headers {
			ts = append(ts, h.Value)
		}
		for _, a := range e.Request.Auths {
			// Basic is base64 and query escaped: any byte goes there.
			if a.Type == compiler.AuthBearer || a.Type == compiler.AuthHeader {
				ts = append(ts, a.Token, a.Value)
			}
		}
		for _, t := range ts {
			if t == nil {
				continue
			}
			for _, p := range t.Parts {
				if s, ok := in.configText[p.Config]; ok && p.Config != "" && !headerText(s) {
					problems[p.Config] = "cannot stand in a header value: " + headerTextProblem
				}
			}
		}
	}
	if len(problems) == 0 {
		in.plan = planOf(bp)
		in.requests = map[*compiler.Request]*requestPlan{}
		for _, e := range v.Events {
			if in.requests[e.Request] == nil {
				rp := in.planRequest(e.Request)
				in.requests[e.Request] = rp
				// A URL that reads config only is built once, here: it is
				// checked as Evaluate checks the others, once.
				if msg := in.urlProblem(rp.url); rp.staticURL && msg != "" {
					for _, k := range rp.hostNames {
						problems[k] = msg
					}
					if len(rp.hostNames) == 0 {
						problems["url of request "+e.Request.Name] = msg
					}
				}
			}
		}
	}
	// The secrets, and every credential rendered from config (a vendor may
	// echo an Authorization header whole), are scrubbed from all the
	// integration shows.
	in.red = newRedactor(append(secrets, in.authSecrets()...), in.credentials()...)
	in.noNameMsg = in.red.String("the track event has no event name")
	in.filteredMsg = in.red.String("the mapping's filter is false")
	in.eventNames = map[*compiler.Event]string{}
	in.exactNames = map[string]*compiler.Event{}
	for _, e := range v.Events {
		in.eventNames[e] = in.red.String(e.Name)
		if found := v.Lookup(conv.NormalizeName(e.Name)); found != nil {
			in.exactNames[e.Name] = found
			if len(e.Name) < 64 {
				in.exactLens |= 1 << len(e.Name)
			}
		}
	}
	if cs := in.consent; cs != nil {
		in.consentDenied = in.red.String(cs.Category + " consent is denied")
		in.consentMissing = in.red.String(cs.Category + " consent is missing, and missing means denied")
	}
	if len(problems) > 0 {
		keys := make([]string, 0, len(problems))
		for k := range problems {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		// A key can be anything the caller passed, the secret included.
		clean := make(map[string]string, len(problems))
		for i, k := range keys {
			keys[i] = in.red.String(k)
			clean[keys[i]] = in.red.String(problems[k])
		}
		return nil, &ConfigError{Keys: keys, Problems: clean}
	}
	return in, nil
}

func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Blueprint returns the compiled blueprint.
func (in *Integration) Blueprint() *engine.Blueprint { return in.pub }

// Variant returns the bound variant's key, in its canonical lower-case
// spelling (Bind matches the variant case-insensitively).
func (in *Integration) Variant() string { return in.variant.Key }

// Redact replaces every secret config value, every credential rendered
// from config, and their encodings (see Redaction in the package doc) in s
// with ***.
func (in *Integration) Redact(s string) string {
	if in.hasOAuth {
		return in.scrubTokens(in.red.String(s))
	}
	return in.red.String(s)
}

// HostAllowed reports whether a request may go to host: the blueprint's
// hosts, as they were when the integration was bound.
func (in *Integration) HostAllowed(host string) bool { return compiler.HostAllowed(in.hosts, host) }

// Hosts returns a copy of the host allow-list.
func (in *Integration) Hosts() []string { return slices.Clone(in.hosts) }

// CarriesSecret reports whether an event holds a secret config value or
// a credential rendered from config, in any form the redaction knows (raw,
// URL- or JSON-escaped, base64 at any offset, or written with \u escapes;
// see Redaction). A sender should not store such an event (the outbox
// keeps events as they are): send rejects it.
func (in *Integration) CarriesSecret(event []byte) bool {
	// Escapes can hide a secret (\u for any character, \/ for a slash):
	// only events with a backslash pay for undoing them.
	return in.red.holds(bstr(event)) // no copy
}

// RedactJSON scrubs secret config values from JSON text, forms written
// with \u escapes included (its strings are unescaped first); text that is
// not JSON is scrubbed as it is.
func (in *Integration) RedactJSON(b []byte) []byte {
	if !in.red.active() {
		return b
	}
	return in.red.Bytes(encoding.CanonicalJSON(b))
}

// Result is the decision for one event.
type Result struct {
	Outcome Outcome
	// Reason is the reason code of a skip or reject ("" for deliver).
	Reason string
	// Fields names the fields at fault (vendor field paths such as
	// line_items[1].quantity, or the value a URL placeholder reads): every
	// one up to 100; past them, a last entry "and N more" says how many
	// more there are (the message ends the same way).
	Fields []string
	// Warnings are codes attached to a delivered event.
	Warnings []string
	// Message explains a skip or reject for humans.
	Message string
	// Event is the source event name; VendorEvent the mapped vendor type.
	Event       string
	VendorEvent string
	// Requests are the vendor requests, in order (deliver only).
	Requests []*Request

	red *redactor
	// msgClean and eventClean: Message, Event hold no secret (scrubbed
	// before: at Bind, or in a cache).
	msgClean, eventClean bool
}

// LogValue is the result for a structured log line (log/slog): outcome,
// reason, fields at fault, event and vendor event names, warnings and the
// number of requests, secrets redacted; never a request body or the
// message (which may quote event values).
func (r Result) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("outcome", string(r.Outcome))}
	if r.Reason != "" {
		attrs = append(attrs, slog.String("reason", r.Reason))
	}
	if len(r.Fields) > 0 {
		attrs = append(attrs, slog.Any("fields", r.Fields))
	}
	if r.Event != "" {
		attrs = append(attrs, slog.String("event", r.red.String(r.Event)))
	}
	if r.VendorEvent != "" {
		attrs = append(attrs, slog.String("vendor_event", r.VendorEvent))
	}
	if len(r.Warnings) > 0 {
		attrs = append(attrs, slog.Any("warnings", r.Warnings))
	}
	if len(r.Requests) > 0 {
		attrs = append(attrs, slog.Int("requests", len(r.Requests)))
	}
	return slog.GroupValue(attrs...)
}

// printable is s, or s quoted when it holds characters a terminal would
// act on (an event name is event data: "\x1b[2J" must not clear a screen,
// nor a newline forge a line of output).
func printable(s string) string {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return strconv.Quote(s)
		}
	}
	return s
}

// String renders the result for humans, with secrets redacted: the
// decision, then each request (method, URL, headers, body). It holds event
// data (ids, addresses); LogValue is the one-line form for logs.
func (r Result) String() string {
	var b strings.Builder
	b.WriteString(string(r.Outcome))
	if r.Reason != "" {
		b.WriteString(" " + r.Reason)
	}
	if len(r.Fields) > 0 {
		b.WriteString(" [" + strings.Join(r.Fields, ", ") + "]")
	}
	if r.Event != "" || r.VendorEvent != "" {
		fmt.Fprintf(&b, " (%s", printable(r.Event))
		if r.VendorEvent != "" {
			b.WriteString(" -> " + printable(r.VendorEvent)) // computed from event data, maybe
		}
		b.WriteString(")")
	}
	if r.Message != "" {
		b.WriteString(": " + r.Message)
	}
	for _, w := range r.Warnings {
		b.WriteString("\n  warning " + w)
	}
	for _, q := range r.Requests {
		b.WriteString("\n")
		b.WriteString(indent(q.redactedText(r.red), "  "))
	}
	return r.red.String(b.String())
}

func indent(s, pre string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// Request is one built vendor request. Its header values and body are the
// real ones, secrets included: print only Redacted views.
type Request struct {
	Method  string
	URL     string
	Headers []Header
	Body    []byte

	// spec is the blueprint's request: its host list and response rules.
	spec *compiler.Request

	// secretRanges are byte ranges of Body holding secret fields.
	secretRanges [][2]int
	// secretQuery is the query parameter carrying auth, or "".
	secretQuery string
}

// Header is one request header.
type Header struct {
	Name  string
	Value string
	// Secret headers (auth, or marked secret) are redacted in every view.
	Secret bool
}

// Header returns the value of the named header (case-insensitive).
func (r *Request) Header(name string) (string, bool) {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value, true
		}
	}
	return "", false
}

// RedactedRequest is a request safe to print, log or store.
type RedactedRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	// Body is the body as sent, with secret fields replaced by "***".
	Body []byte `json:"-"`
}

// Redacted returns a view of the request without secrets: auth and secret
// headers keep their scheme word only (Basic ***), secret body fields and
// auth query parameters become ***, and any secret config value appearing
// anywhere (even inside event data) is replaced.
func (in *Integration) Redacted(r *Request) RedactedRequest { return r.redacted(in.red) }

func (r *Request) redacted(red *redactor) RedactedRequest {
	out := RedactedRequest{Method: r.Method, URL: red.String(r.redactedURL()), Headers: map[string]string{}}
	for _, h := range r.Headers {
		v := h.Value
		if h.Secret {
			v = maskHeader(v)
		}
		out.Headers[h.Name] = red.String(v)
	}
	enc := r.encoder()
	body := encoding.Redact(enc, r.Body, r.secretRanges)
	if red.active() {
		// Undo escapes first so that "sk\u002d..." cannot slip by.
		body = enc.Canonical(body)
	}
	out.Body = red.Bytes(body)
	return out
}

// encoder is the encoding the body is written in.
func (r *Request) encoder() encoding.Encoder {
	if r.spec == nil || r.spec.Encoding == nil {
		return encoding.JSON
	}
	return r.spec.Encoding
}

// Encoding names how the body is written (json), as the blueprint's
// encoding: key does.
func (r *Request) Encoding() string { return r.encoder().Name() }

func (r *Request) redactedText(red *redactor) string {
	rr := r.redacted(red)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rr.Method, rr.URL)
	names := make([]string, 0, len(rr.Headers))
	for _, h := range r.Headers {
		if !slices.Contains(names, h.Name) {
			names = append(names, h.Name)
		}
	}
	for _, n := range names {
		fmt.Fprintf(&b, "\n%s: %s", n, rr.Headers[n])
	}
	if len(rr.Body) > 0 {
		b.WriteString("\n")
		b.Write(r.encoder().Pretty(rr.Body))
	}
	return b.String()
}

// maskHeader keeps an auth scheme word: "Basic abc" -> "Basic ***".
func maskHeader(v string) string {
	if scheme, _, ok := strings.Cut(v, " "); ok && scheme != "" && !strings.ContainsAny(scheme, "=:") {
		return scheme + " ***"
	}
	return "***"
}

func (r *Request) redactedURL() string { return maskQuery(r.URL, r.secretQuery) }

// maskQuery masks the value of the query parameter name in u.
func maskQuery(u, name string) string {
	if name == "" {
		return u
	}
	base, query, ok := strings.Cut(u, "?")
	if !ok {
		return u
	}
	parts := strings.Split(query, "&")
	for i, p := range parts {
		if n, _, _ := strings.Cut(p, "="); n == name {
			parts[i] = n + "=***"
		}
	}
	return base + "?" + strings.Join(parts, "&")
}

// RedactURL returns u, a URL req was sent to (rewritten for a sandbox, or
// a redirect's target), as it may be shown: req's auth query parameter
// masked and every secret scrubbed, like Redacted(req).URL.
func (in *Integration) RedactURL(req *Request, u string) string {
	return in.red.String(maskQuery(u, req.secretQuery))
}

// MarshalJSON writes the result with secrets redacted, bodies as JSON.
func (r Result) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// AppendJSON appends the machine-readable view of the result, with
// secrets redacted: {"outcome", "reason", "fields", "warnings", "message",
// "event", "vendor_event", "requests": [{"method", "url", "headers",
// "body"}]} (empty keys left out, warnings always present, header names
// sorted, bodies as JSON).
func (r Result) AppendJSON(b []byte) []byte {
	b = append(b, `{"outcome":`...)
	b = appendJSONString(b, string(r.Outcome))
	if r.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, r.Reason)
	}
	if len(r.Fields) > 0 {
		b = append(b, `,"fields":`...)
		b = appendStrings(b, r.Fields)
	}
	b = append(b, `,"warnings":`...)
	b = appendStrings(b, r.Warnings)
	if r.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, r.red.String(r.Message))
	}
	if r.Event != "" {
		b = append(b, `,"event":`...)
		b = appendJSONString(b, r.red.String(r.Event))
	}
	if r.VendorEvent != "" {
		b = append(b, `,"vendor_event":`...)
		b = appendJSONString(b, r.VendorEvent)
	}
	if len(r.Requests) > 0 {
		b = append(b, `,"requests":[`...)
		for i, q := range r.Requests {
			if i > 0 {
				b = append(b, ',')
			}
			rr := q.redacted(r.red)
			b = append(b, `{"method":`...)
			b = appendJSONString(b, rr.Method)
			b = append(b, `,"url":`...)
			b = appendJSONString(b, rr.URL)
			b = append(b, `,"headers":{`...)
			names := make([]string, 0, len(rr.Headers))
			for n := range rr.Headers {
				names = append(names, n)
			}
			slices.Sort(names)
			for k, n := range names {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, n)
				b = append(b, ':')
				b = appendJSONString(b, rr.Headers[n])
			}
			b = append(b, '}')
			switch {
			case len(rr.Body) == 0:
			case q.encoder() == encoding.JSON && json.Valid(rr.Body):
				b = append(b, `,"body":`...)
				b = append(b, rr.Body...)
			default: // a body that is not JSON is shown as text
				b = append(b, `,"body":`...)
				b = appendJSONString(b, string(rr.Body))
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendStrings(b []byte, s []string) []byte {
	b = append(b, '[')
	for i, x := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, x)
	}
	return append(b, ']')
}
