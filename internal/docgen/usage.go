package docgen

import (
	"slices"
	"strings"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// What a page says a variant sends, and which of its response rules can
// ever apply: derived from the compiled blueprint, so that the page never
// lists an identifier a variant does not forward or a rule that never
// matches.

// valueUse is what one variant's mappings read of the shared values.
type valueUse struct {
	// sent: the values whose data the variant's requests send (in a
	// body field, the URL or a header, directly or through other values),
	// each identity among them when a request sends the event whole.
	sent map[*compiler.Value]bool
	// read: sent, plus what filters, warning conditions and computed
	// vendor events read.
	read map[*compiler.Value]bool
}

// variantUse walks a variant's event map: each mapping's request (URL,
// headers, body fields, their sources, expressions and currencies) and the
// values those read in turn.
func variantUse(bp *compiler.Blueprint, v *compiler.Variant) valueUse {
	u := valueUse{sent: map[*compiler.Value]bool{}, read: map[*compiler.Value]bool{}}
	for _, e := range v.Events {
		into := func(m map[*compiler.Value]bool) func(*compiler.Value) {
			var f func(*compiler.Value)
			f = func(x *compiler.Value) {
				if x == nil || m[x] {
					return
				}
				m[x] = true
				for _, d := range x.Deps {
					f(d)
				}
				// The vendor event a mapping computes reads what its spec
				// reads.
				if x == bp.VendorEventValue() && e.VendorSpec != nil {
					specValues(e.VendorSpec, f)
				}
			}
			return f
		}
		add := into(u.sent)
		r := e.Request
		templateValues(r.URL, add)
		for _, h := range r.Headers {
			templateValues(h.Value, add)
		}
		objectValues(r.Body, add)
		if r.BodyFromEvent {
			// The event as received carries what every identity is read
			// from.
			for _, id := range bp.Identity {
				add(id)
			}
		}
		read := into(u.read)
		for x := range u.sent {
			read(x)
		}
		exprValues(e.Filter, read)
		for _, ww := range e.WarnWhen {
			exprValues(ww.Expr, read)
		}
		if e.VendorSpec != nil {
			specValues(e.VendorSpec, read)
		}
	}
	return u
}

func templateValues(t *compiler.Template, add func(*compiler.Value)) {
	if t == nil {
		return
	}
	for _, p := range t.Parts {
		if p.Value != nil {
			add(p.Value)
		}
	}
}

// objectValues adds what every field of o reads, internal fields included
// (a sibling writes what they compute). A field's when condition decides
// whether it is written, not what: it is not counted.
func objectValues(o *compiler.Object, add func(*compiler.Value)) {
	if o == nil {
		return
	}
	for _, f := range o.Fields {
		specValues(&f.Spec, add)
		objectValues(f.Object, add)
	}
}

func specValues(s *compiler.Spec, add func(*compiler.Value)) {
	for _, src := range s.Sources {
		if src.Value != nil {
			add(src.Value)
		}
		exprValues(src.Expr, add)
	}
	if s.Type.Currency != nil {
		add(s.Type.Currency)
	}
}

func exprValues(x *compiler.Expr, add func(*compiler.Value)) {
	if x == nil {
		return
	}
	for _, in := range x.Inputs {
		if in.Kind == compiler.InputValue && in.Value != nil {
			add(in.Value)
		}
	}
}

// variantGroup is variants that send the same values, in the order the
// first of them is documented.
type variantGroup struct {
	keys   []string
	values []*compiler.Value
}

// groupVariants groups variants by the values pick chooses for each, from
// all (in declaration order).
func groupVariants(variants []*compiler.Variant, all []*compiler.Value, pick func(*compiler.Variant) map[*compiler.Value]bool) []variantGroup {
	var groups []variantGroup
	for _, v := range variants {
		m := pick(v)
		var vals []*compiler.Value
		for _, x := range all {
			if m[x] {
				vals = append(vals, x)
			}
		}
		i := slices.IndexFunc(groups, func(g variantGroup) bool { return slices.Equal(g.values, vals) })
		if i < 0 {
			groups = append(groups, variantGroup{values: vals})
			i = len(groups) - 1
		}
		groups[i].keys = append(groups[i].keys, v.Key)
	}
	return groups
}

// writeValues writes the identity and shared value tables: one table when
// every documented variant uses the same values, else one per group of
// variants that do, each listing only what those variants use.
func writeValues(w func(string, ...any), bp *compiler.Blueprint, variants []*compiler.Variant) {
	uses := map[*compiler.Variant]valueUse{}
	for _, v := range variants {
		uses[v] = variantUse(bp, v)
	}
	var shared []*compiler.Value
	for _, v := range bp.Values {
		if !v.Builtin && !v.Identity {
			shared = append(shared, v)
		}
	}
	section := func(all []*compiler.Value, pick func(*compiler.Variant) map[*compiler.Value]bool, head, absent string, row func(*compiler.Value)) {
		groups := groupVariants(variants, all, pick)
		for _, g := range groups {
			if len(groups) > 1 || len(variants) < len(bp.Variants) {
				w("\n### %s %s\n", plural(len(g.keys), "Variant", "Variants"), codeList(g.keys, ", "))
			}
			if len(g.values) == 0 {
				w("\nNone.\n")
			} else {
				w("\n%s", head)
				for _, x := range g.values {
					row(x)
				}
			}
			var not []string
			for _, x := range all {
				if !slices.Contains(g.values, x) {
					not = append(not, x.Name)
				}
			}
			if len(not) > 0 {
				w("\n%s: %s.\n", absent, codeList(not, ", "))
			}
		}
	}
	if len(bp.Identity) > 0 {
		w("\n## Identity\n\nIdentifiers forwarded to %s: those the requests send, in a field, the URL or a header, directly or through another value.\n", bp.Name)
		section(bp.Identity, func(v *compiler.Variant) map[*compiler.Value]bool { return uses[v].sent },
			"| identifier | from | rule |\n| --- | --- | --- |\n", "Not sent",
			func(v *compiler.Value) {
				w("| `%s` | %s | %s |\n", v.Name, describeSources(&v.Spec), describeType(&v.Type))
			})
	}
	if len(shared) > 0 {
		w("\n## Shared values\n\nComputed at most once per event; the first source present and non-empty wins (absent, `null`, `\"\"` and `[]` count as absent). Only the values the mappings read are listed.\n")
		section(shared, func(v *compiler.Variant) map[*compiler.Value]bool { return uses[v].read },
			"| value | from | rule | meaning |\n| --- | --- | --- | --- |\n", "Not read",
			func(v *compiler.Value) {
				w("| `%s` | %s | %s | %s |\n", v.Name, describeSources(&v.Spec), describeType(&v.Type), cell(strings.TrimSpace(v.Description)))
			})
	}
}

// reachable returns the rules that can match some answer, in order. First
// match wins, so a rule is left out when the rules before it that have no
// when condition already take every status it matches (a 401 rule after a
// 4xx one, the default 5xx retry after a blueprint's own). A rule with a
// when condition takes nothing (it may not hold), and a rule matching any
// status is taken only by an earlier rule matching any status: only rules
// that certainly never match are left out.
func reachable(rules []*compiler.ResponseRule) []*compiler.ResponseRule {
	const lo, hi = 100, 599 // the statuses a rule can name
	var taken [hi + 1]bool
	anyTaken := false
	var out []*compiler.ResponseRule
	for _, r := range rules {
		if anyTaken {
			continue
		}
		covered := len(r.Statuses) > 0
		for _, s := range r.Statuses {
			for st := max(s.Lo, lo); st <= min(s.Hi, hi) && covered; st++ {
				covered = taken[st]
			}
			if s.Lo < lo || s.Hi > hi {
				covered = false
			}
		}
		if covered {
			continue
		}
		out = append(out, r)
		if r.When != nil {
			continue
		}
		if len(r.Statuses) == 0 {
			anyTaken = true
		}
		for _, s := range r.Statuses {
			for st := max(s.Lo, lo); st <= min(s.Hi, hi); st++ {
				taken[st] = true
			}
		}
	}
	return out
}

// indent indents every line of s after the first, so that it stays inside
// a list item.
func indent(s, by string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if i > 0 && l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "\n")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
