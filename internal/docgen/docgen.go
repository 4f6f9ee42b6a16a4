// Package docgen renders what a compiled blueprint says for people and for
// the platform: the integration's Markdown reference (configuration, event
// map, fields, identity, consent, hosts, warnings) and the platform's
// Catalog Vendor Object. Both come from the blueprint itself, never from a
// hand-kept copy.
package docgen

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blueprint-engine/blueprint/engine"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// VendorObject is the platform's Catalog Vendor Object, with exactly its
// keys (the platform may refuse any other): no version (the catalog is
// versioned with the platform's code), no config pattern or default (the
// engine checks the config when it binds it).
type VendorObject struct {
	Key          string          `json:"key"`
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	Category     string          `json:"category"`
	Status       string          `json:"status"`
	Website      string          `json:"website"`
	ConfigFields []ConfigObject  `json:"config_fields"`
	Variants     []VariantObject `json:"variants"`
}

// ConfigObject is one config field of the catalog.
type ConfigObject struct {
	Key         string `json:"key"`
	Label       string `json:"label"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Placeholder string `json:"placeholder,omitempty"`
	HelpText    string `json:"help_text,omitempty"`
	// Options: select fields only.
	Options []OptionObject `json:"options,omitempty"`
}

// OptionObject is one choice of a select field.
type OptionObject struct {
	Value string `json:"value"`
	Label string `json:"label,omitempty"`
}

// VariantObject is one variant of the catalog.
type VariantObject struct {
	Key           string         `json:"key"`
	Name          string         `json:"name"`
	Description   string         `json:"description"`
	DefaultConfig map[string]any `json:"default_config"`
}

// CatalogStatus maps a blueprint lifecycle to the catalog's vocabulary
// (ga | beta): alpha shows as beta, the nearest value the catalog has.
func CatalogStatus(status string) string {
	if status == "ga" {
		return "ga"
	}
	return "beta"
}

// Vendor builds the Catalog Vendor Object of a blueprint.
func Vendor(pub *engine.Blueprint) VendorObject {
	bp := compiler.Of(pub)
	v := VendorObject{
		Key:          bp.Key,
		Name:         bp.Name,
		Description:  strings.TrimSpace(bp.Description),
		Category:     bp.Category,
		Status:       CatalogStatus(bp.Status),
		Website:      bp.Website,
		ConfigFields: []ConfigObject{},
		Variants:     []VariantObject{},
	}
	for _, f := range bp.Config {
		label := f.Label
		if label == "" {
			label = f.Key // the platform shows a label for every field
		}
		co := ConfigObject{Key: f.Key, Label: label, Type: string(f.Type), Required: f.Required,
			Placeholder: f.Placeholder, HelpText: f.HelpText}
		for _, o := range f.Options {
			co.Options = append(co.Options, OptionObject{Value: o.Value, Label: o.Label})
		}
		v.ConfigFields = append(v.ConfigFields, co)
	}
	for _, va := range bp.Variants {
		dc := va.DefaultConfig
		if dc == nil {
			dc = map[string]any{}
		}
		v.Variants = append(v.Variants, VariantObject{Key: va.Key, Name: va.Name, Description: strings.TrimSpace(va.Description), DefaultConfig: dc})
	}
	return v
}

// Markdown renders the integration reference. variant "" documents every
// variant.
func Markdown(pub *engine.Blueprint, variant string) (string, error) {
	bp := compiler.Of(pub)
	variants := bp.Variants
	if variant != "" {
		v := bp.Variant(variant)
		if v == nil {
			return "", fmt.Errorf("%s has no variant %q (variants: %s)", bp.Ref(), variant, strings.Join(bp.VariantKeys(), ", "))
		}
		variants = []*compiler.Variant{v}
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# %s %s\n\n", bp.Name, bp.Version)
	if d := strings.TrimSpace(bp.Description); d != "" {
		w("%s\n\n", d)
	}
	w("| | |\n| --- | --- |\n")
	w("| Catalog key | `%s` |\n| Version | %s |\n| Status | %s", bp.Key, bp.Version, bp.Status)
	if bp.Status == "alpha" {
		w(" (schema and behaviour may change before GA)")
	}
	w(" |\n| Category | %s |\n", bp.Category)
	if bp.Website != "" {
		w("| Vendor docs | %s |\n", bp.Website)
	}
	if bp.Base != "" {
		w("| Extends | `%s` |\n", bp.Base)
	}
	if d := bp.Docs; d != nil && len(d.Prerequisites) > 0 {
		w("\n## Prerequisites\n\n")
		for _, p := range d.Prerequisites {
			w("- %s\n", indent(p, "  "))
		}
	}
	w("\n## Configuration\n\n")
	if len(bp.Config) == 0 {
		w("None.\n")
	} else {
		w("| key | label | type | required | rule | help |\n| --- | --- | --- | --- | --- | --- |\n")
		for _, f := range bp.Config {
			typ := string(f.Type)
			if f.Secret() {
				typ = "**secret** (never shown, logged or echoed)"
			}
			var rule []string
			if f.Pattern != nil {
				rule = append(rule, "matches `"+cell(patternText(f.Pattern))+"`")
			}
			if f.Placeholder != "" {
				rule = append(rule, "e.g. `"+cell(f.Placeholder)+"`")
			}
			for _, o := range f.Options {
				rule = append(rule, "`"+cell(o.Value)+"`")
			}
			if f.Default != nil {
				rule = append(rule, fmt.Sprintf("default `%v`", f.Default))
			}
			w("| `%s` | %s | %s | %s | %s | %s |\n", f.Key, cell(f.Label), typ, yesNo(f.Required), strings.Join(rule, "; "), cell(f.HelpText))
		}
	}
	w("\n## Variants and event map\n\n")
	w("Source event names match after normalisation: trimmed, lower-cased, and every run of spaces, `-` and `_` turned into one `_` (so `Order Completed`, `order_completed` and `ORDER-COMPLETED` are the same event). ")
	if selectors(variants) {
		w("An event without `type` counts as `track`. A key `TYPE:NAME` maps page or screen events by name, `TYPE:*` every event of that type, `*` every other track event, and `*:*` every event no other mapping takes.")
	} else {
		w("Only `track` events are mapped; an event without `type` counts as `track`.")
	}
	w(" Anything else is skipped with `event_not_mapped`.\n\n")
	w("| variant | source event | %s event | request |\n| --- | --- | --- | --- |\n", bp.Name)
	for _, v := range variants {
		for _, e := range v.Events {
			w("| `%s` | %s | %s | %s `%s` |\n", v.Key, cell(e.Name), vendorEventText(e), e.Request.Method, cell(e.Request.URL.Text))
		}
	}
	w("\n")
	for _, v := range variants {
		w("- **%s** (`%s`): %s\n", cell(v.Name), v.Key, cell(strings.TrimSpace(v.Description)))
	}
	w("\n## Order of checks\n\n")
	w("1. Not a JSON object, malformed, nested too deep or over the size limit: `reject` / `invalid_event`.\n")
	w("2. Not in the event map: `skip` / `event_not_mapped`.\n")
	if hasFilter(variants) {
		w("3. The mapping's filter is not true (false, or it cannot be evaluated): `skip` / `filtered`.\n")
	}
	if bp.Consent != nil {
		w("%d. Consent not granted: `skip` / `consent_denied`.\n", 3+b2i(hasFilter(variants)))
	}
	w("%d. Field rules: `reject` / `missing_required_field` (naming every missing field) or, when nothing is missing, `invalid_field` (naming every invalid field).\n", 3+b2i(hasFilter(variants))+b2i(bp.Consent != nil))
	w("%d. Otherwise `deliver`, with warnings where they apply.\n", 4+b2i(hasFilter(variants))+b2i(bp.Consent != nil))

	seen := map[*compiler.Event]bool{}
	for _, v := range variants {
		for _, e := range v.Events {
			if seen[e] {
				continue
			}
			seen[e] = true
			writeEvent(w, bp, e, inVariants(bp.Variants, e))
		}
	}

	writeValues(w, bp, variants)
	w("\n## Consent\n\n")
	if cs := bp.Consent; cs != nil {
		w("Category **%s**. ", cs.Category)
		if cs.Expr != nil {
			w("Decided by `%s`.", cell(cs.Expr.Text))
		} else {
			w("The first of these that holds a JSON boolean decides (`true` grants, `false` denies): %s.", codeList(cs.Paths, ", "))
		}
		missing := "consent missing: **denied** (`when_missing: deny`), `skip` / `consent_denied`"
		if cs.Allow {
			w(" When none does, consent is missing and missing means **allowed** (`when_missing: allow`).\n")
			missing = "consent missing: **allowed** (`when_missing: allow`)"
		} else {
			w(" When none does, consent is missing and missing means **denied** (`when_missing: deny`): `skip` / `consent_denied`.\n")
		}
		w("\n| category | order | from | decides |\n| --- | --- | --- | --- |\n")
		if cs.Expr != nil {
			w("| `%s` | 1 | `%s` | `true` grants, `false` denies |\n", cs.Category, cell(cs.Expr.Text))
		} else {
			for i, p := range cs.Paths {
				w("| `%s` | %d | `%s` | `true` grants, `false` denies; anything else (absent, `null`, text) passes to the next |\n", cs.Category, i+1, p)
			}
		}
		w("| `%s` | — | none of the above | %s |\n", cs.Category, missing)
	} else {
		w("No consent gate.\n")
	}
	w("\n## Hosts\n\nRequests may go only to: %s. Any other host is refused when the blueprint is compiled and again before sending.\n", codeList(bp.Hosts, ", "))
	if len(bp.Warnings) > 0 {
		w("\n## Warnings\n\nAttached to a delivered event; the event is still sent.\n\n| code | meaning |\n| --- | --- |\n")
		for _, x := range bp.Warnings {
			w("| `%s` | %s |\n", x.Code, cell(strings.TrimSpace(x.Description)))
		}
	}
	if d := bp.Docs; d != nil && d.Verify != "" {
		w("\n## Verify\n\n%s\n", d.Verify)
	}
	if d := bp.Docs; d != nil && len(d.Troubleshooting) > 0 {
		w("\n## Troubleshooting\n\n| symptom | meaning | fix |\n| --- | --- | --- |\n")
		for _, t := range d.Troubleshooting {
			meaning := cell(t.Meaning)
			if meaning == "" {
				meaning = "—"
			}
			w("| %s | %s | %s |\n", cell(t.Symptom), meaning, cell(t.Fix))
		}
	}
	return b.String(), nil
}

// selectors reports whether any variant maps events by type (page:*, a
// catch-all).
func selectors(vs []*compiler.Variant) bool {
	for _, v := range vs {
		if !v.NamesOnly() {
			return true
		}
	}
	return false
}

// vendorEventText shows a mapping's vendor event: its name, or how it is
// computed.
func vendorEventText(e *compiler.Event) string {
	if e.VendorSpec != nil {
		return "computed: " + describeSources(e.VendorSpec)
	}
	return "`" + e.VendorEvent + "`"
}

func hasFilter(vs []*compiler.Variant) bool {
	for _, v := range vs {
		for _, e := range v.Events {
			if e.Filter != nil {
				return true
			}
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// inVariants lists the variants whose event map holds e (a base mapping a
// variant replaces is not in that variant's map).
func inVariants(vs []*compiler.Variant, e *compiler.Event) []string {
	var keys []string
	for _, v := range vs {
		if slices.Contains(v.Events, e) {
			keys = append(keys, v.Key)
		}
	}
	return keys
}

func writeEvent(w func(string, ...any), bp *compiler.Blueprint, e *compiler.Event, in []string) {
	r := e.Request
	where := "every variant"
	switch {
	case e.Variant != "":
		where = "variant `" + e.Variant + "`"
	case len(in) < len(bp.Variants) && len(in) == 1:
		where = "variant `" + in[0] + "`"
	case len(in) < len(bp.Variants):
		where = "variants " + codeList(in, ", ")
	}
	if e.VendorSpec != nil {
		// A computed vendor event has no name to head its section with
		// (an empty code span is broken Markdown): say so.
		w("\n## Computed vendor event (%s, %s)\n\n", cell(e.Name), where)
	} else {
		w("\n## `%s` (%s, %s)\n\n", e.VendorEvent, cell(e.Name), where)
	}
	if d := strings.TrimSpace(e.Description); d != "" {
		w("%s ", cell(d))
	}
	if d := strings.TrimSpace(r.Description); d != "" {
		w("%s", cell(d))
	}
	w("\n\n- `%s %s`\n", r.Method, r.URL.Text)
	if e.Filter != nil {
		w("- Sent only when `%s`; otherwise `skip` / `filtered`.\n", cell(e.Filter.Text))
	}
	if r.MethodConfig != "" {
		w("- The method is config `%s`.\n", r.MethodConfig)
	}
	if r.BodyFromEvent {
		w("- The body is the event as received, byte for byte.\n")
	}
	if b := r.Batch; b != nil {
		w("- Batched (%s): events are joined into `%s`; a request holds at most %s events and %s bytes, and waits at most %s ms.\n",
			settingText(b.Enabled), b.Into, settingText(b.MaxEvents), settingText(b.MaxBytes), settingText(b.MaxWaitMS))
	}
	if len(r.Auths) == 0 {
		w("- No authentication.\n")
	}
	for _, a := range r.Auths {
		if a.When != nil {
			w("- When `%s`:\n  ", cell(a.When.Text))
		}
		switch a.Type {
		case compiler.AuthBasic:
			w("- `Authorization: Basic base64(%s:%s)` (redacted in every output)\n", tmplText(a.Username), tmplText(a.Password))
		case compiler.AuthBearer:
			w("- `Authorization: Bearer %s` (redacted in every output)\n", tmplText(a.Token))
		case compiler.AuthHeader:
			w("- `%s: %s` (redacted in every output)\n", a.Name, tmplText(a.Value))
		case compiler.AuthQuery:
			w("- query parameter `%s=%s` (redacted in every output)\n", a.Name, tmplText(a.Value))
		case compiler.AuthOAuth2:
			w("- `Authorization: Bearer TOKEN`, TOKEN from `%s` (OAuth 2.0 client credentials, client `%s`), fetched at send time and cached (redacted in every output)\n", tmplText(a.TokenURL), tmplText(a.ClientID))
		case compiler.AuthSignature:
			sg := a.Signature
			signed := "body"
			if sg.TimestampHeader != "" {
				w("- `%s`: the time of signing (%s)\n", sg.TimestampHeader, sg.TimestampFormat)
				signed = sg.TimestampHeader + " + `" + sg.Separator + "` + body"
			}
			w("- `%s: %s` + hex HMAC-%s(%s, %s), computed for every attempt (redacted in every output)\n", sg.Header, sg.Prefix, strings.ToUpper(sg.Algorithm), tmplText(sg.Secret), signed)
		}
	}
	for _, h := range r.Headers {
		sec := ""
		if h.Secret {
			sec = " (secret, redacted)"
		}
		w("- `%s: %s`%s\n", h.Name, h.Value.Text, sec)
	}
	if len(e.Warnings) > 0 {
		w("- Warnings: %s\n", codeList(e.Warnings, ", "))
	}
	w("\nBody (%s; a field that is absent is left out, never `null`):\n\n| field | from | rule | required | when absent |\n| --- | --- | --- | --- | --- |\n", r.Encoding.Title())
	writeFields(w, r.Body, "", "", false)
	if rs := r.Responses; rs != nil {
		rules := reachable(rs.Rules)
		w("\nResponses (first match wins; network errors and timeouts are retried")
		if n := len(rs.Rules) - len(rules); n > 0 {
			w("; %s that can never match, as earlier rules take every status %s names, %s not shown", plural(n, "1 rule", fmt.Sprintf("%d rules", n)), plural(n, "it", "each"), plural(n, "is", "are"))
		}
		w("):\n\n| status | when | outcome | note |\n| --- | --- | --- | --- |\n")
		for _, rule := range rules {
			var st []string
			for _, x := range rule.Statuses {
				switch {
				case x.Lo == x.Hi:
					st = append(st, fmt.Sprint(x.Lo))
				case x.Hi-x.Lo == 99 && x.Lo%100 == 0:
					st = append(st, fmt.Sprintf("%dxx", x.Lo/100))
				default:
					st = append(st, fmt.Sprintf("%d-%d", x.Lo, x.Hi))
				}
			}
			status := strings.Join(st, ", ")
			if status == "" {
				status = "any other"
			}
			when := ""
			if rule.When != nil {
				when = "`" + cell(rule.When.Text) + "`"
			}
			note := cell(strings.TrimSpace(rule.Description))
			if rule.Message != "" {
				note = strings.TrimSpace(note + " Reported as: " + cell(rule.Message) + ".")
			}
			if rule.Default {
				note = "(default) " + note
			}
			w("| %s | %s | %s | %s |\n", status, when, rule.Outcome, note)
		}
		if rs.MessagePath != "" {
			w("\nThe vendor's error message is read from `%s` in the response body.\n", rs.MessagePath)
		}
	}
}

// writeFields writes a row per field, named by its path as written in
// the request: prefix is its parent's, faultPrefix the parent's name in
// faults (as the compiler builds Path), flat whether the parent is an
// indexed list (whose item keys are written ItemSku{n}).
func writeFields(w func(string, ...any), o *compiler.Object, prefix, faultPrefix string, flat bool) {
	if o == nil {
		return
	}
	for _, f := range o.Fields {
		written := prefix + f.Name
		if flat {
			written += "{n}"
		}
		from := describeSources(&f.Spec)
		rule := describeType(&f.Type)
		if f.Type.Kind == compiler.KindAny && len(f.Sources) == 1 && f.Sources[0].Value != nil {
			if v := f.Sources[0].Value; v.Builtin {
				rule = "the " + strings.ReplaceAll(v.Name, "_", " ")
			} else {
				rule = describeType(&v.Type)
			}
		}
		if f.Type.Kind == compiler.KindArray && f.Object != nil {
			rule = "a non-empty list, mapped item by item"
			if f.Each {
				rule = "a non-empty list, one entry per element (null when absent)"
			}
			if f.Flatten {
				rule += ", written as indexed flat keys from 1"
			}
			rule += lengthRule(&f.Type)
		}
		if f.Type.Kind == compiler.KindObject && f.Object != nil {
			from = "its fields"
			rule = "object"
			if len(f.Object.OmitUnless) > 0 {
				var names []string
				for _, i := range f.Object.OmitUnless {
					names = append(names, f.Object.Fields[i].Name)
				}
				rule += "; left out unless " + codeList(names, " and ") + " present"
			}
		}
		if f.List {
			rule += "; written as a one-element list"
		}
		if f.HasJoin {
			rule += "; written as one text, joined with `" + f.Join + "` (an absent entry empty; left out when all are)"
		}
		if f.Secret {
			rule += "; secret (redacted)"
		}
		if f.When != nil {
			rule += "; sent only when `" + strings.TrimSpace(f.When.Text) + "`"
		}
		if !flat && f.Path != faultPrefix+f.Name {
			if f.Path == "" {
				rule += "; left out of its fields' names in faults"
			} else {
				rule += "; faults name it `" + docPath(f.Path) + "`"
			}
		}
		if f.Internal {
			rule = "not sent: a helper the fields beside it read; " + rule
		}
		absent := "omitted"
		switch {
		case f.Default != nil:
			absent = "default `" + string(f.Default) + "`"
		case f.Required:
			absent = "`missing_required_field`"
		case f.WarnIfAbsent != "":
			absent = "omitted, warning `" + f.WarnIfAbsent + "`"
		}
		w("| `%s` | %s | %s | %s | %s |\n", docPath(written), from, cell(rule), yesNo(f.Required), absent)
		switch {
		case f.Object == nil:
		case f.Type.Kind == compiler.KindObject:
			fp := f.Path + "."
			if f.Path == "" {
				fp = ""
			}
			writeFields(w, f.Object, written+".", fp, false)
		case f.Flatten:
			writeFields(w, f.Object, written, "", true)
		case f.Each:
			writeFields(w, f.Object, written+"[]", f.Path+"[]", false)
		default:
			writeFields(w, f.Object, written+"[].", f.Path+"[].", false)
		}
	}
}

// docPath writes an item's index as [i].
func docPath(p string) string { return strings.ReplaceAll(p, "[]", "[i]") }

// lengthRule says how min and max bound a list.
func lengthRule(t *compiler.Type) string {
	s := ""
	if t.Min != nil {
		s += fmt.Sprintf(", at least %v elements", *t.Min)
	}
	if t.Max != nil {
		s += fmt.Sprintf(", at most %v elements", *t.Max)
	}
	return s
}

func describeSources(s *compiler.Spec) string {
	var parts []string
	for _, src := range s.Sources {
		switch src.Kind {
		case compiler.SourcePath:
			parts = append(parts, "`"+cell(src.Path)+"`")
		case compiler.SourceValue:
			if src.Value != nil {
				parts = append(parts, "value `"+src.Value.Name+"`")
			}
		case compiler.SourceConfig:
			parts = append(parts, "config `"+src.Config+"`")
		case compiler.SourceConst:
			parts = append(parts, "`"+cell(string(src.Const))+"`")
		case compiler.SourceExpr:
			if src.Expr != nil {
				parts = append(parts, "`"+cell(strings.TrimSpace(src.Expr.Text))+"`")
			}
		}
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", else ")
}

func describeType(t *compiler.Type) string {
	s := describeKind(t)
	if t.Pattern != nil && (t.Kind == compiler.KindString || t.Kind == compiler.KindID) {
		s += ", matching `" + cell(patternText(t.Pattern)) + "`"
	}
	switch t.Kind {
	case compiler.KindInteger, compiler.KindNumber, compiler.KindDecimal:
		if t.Min != nil {
			s += fmt.Sprintf(", at least %v", *t.Min)
		}
		if t.Max != nil {
			s += fmt.Sprintf(", at most %v", *t.Max)
		}
	case compiler.KindTime:
		at := func(secs float64) string {
			return time.Unix(int64(secs), 0).UTC().Format("2006-01-02T15:04:05Z")
		}
		if t.Min != nil {
			s += ", not before " + at(math.Ceil(*t.Min))
		}
		if t.Max != nil {
			s += ", not after " + at(math.Floor(*t.Max))
		}
	case compiler.KindArray:
		s += lengthRule(t)
	}
	return s
}

func describeKind(t *compiler.Type) string {
	switch t.Kind {
	case compiler.KindAny:
		return "copied unchanged"
	case compiler.KindString:
		return "text (numbers and booleans as their text)"
	case compiler.KindID:
		return "text, or an integer as its decimal text"
	case compiler.KindInteger:
		return "integer (2.0 and \"2\" accepted)"
	case compiler.KindNumber:
		return "number (decimal text accepted)"
	case compiler.KindMoney:
		cur := "exponent 2"
		if t.Currency != nil {
			cur = "currency `" + t.Currency.Name + "` (exponent 2 when it is absent or invalid)"
		}
		return "money: integer minor units of " + cur + ", from the decimal text, half away from zero; negative is invalid"
	case compiler.KindDecimal:
		var d string
		switch {
		case t.Currency != nil:
			d = "decimal in major units, rounded half away from zero to the exponent of currency `" + t.Currency.Name + "` (2 when it is absent or invalid); negative is invalid"
		case t.Scale >= 0:
			d = fmt.Sprintf("decimal, rounded half away from zero to %d fraction digits", t.Scale)
		default:
			d = "decimal, exact as written"
		}
		d += ", from the decimal text, written without exponent"
		if t.Text {
			d += ", as text"
		}
		return d
	case compiler.KindCurrency:
		return "upper-cased; three letters A–Z"
	case compiler.KindTime:
		switch t.Format {
		case "":
		case compiler.TimeUnixSeconds, compiler.TimeUnixMillis, compiler.TimeUnixMicros:
			return "RFC 3339, written as " + strings.ReplaceAll(t.Format, "_", " ") + " (digits below dropped)"
		default:
			return "RFC 3339, written in UTC as `" + t.Format + "` (a Go layout)"
		}
		return "RFC 3339, written in UTC as `2006-01-02T15:04:05Z` (fraction dropped)"
	case compiler.KindEmailSHA256:
		return "hex SHA-256 of the trimmed, lower-cased text"
	}
	return t.Kind.String()
}

func tmplText(t *compiler.Template) string {
	if t == nil {
		return ""
	}
	return t.Text
}

func codeList(s []string, sep string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = "`" + x + "`"
	}
	return strings.Join(q, sep)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

// patternText is a pattern as the blueprint wrote it (the compiler
// anchors it as ^(?:...)$).
func patternText(re *regexp.Regexp) string {
	return strings.TrimSuffix(strings.TrimPrefix(re.String(), "^(?:"), ")$")
}

// settingText writes a batch setting: its number, or the config key.
func settingText(s compiler.Setting) string {
	if s.Config != "" {
		return "config `" + s.Config + "`"
	}
	return strconv.FormatInt(s.Const, 10)
}
