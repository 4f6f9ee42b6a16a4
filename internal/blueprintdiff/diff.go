// Package blueprintdiff compares two compiled versions of a blueprint and
// says which of their differences break installs (a config an install
// holds is refused) or senders (an event that was delivered is now
// rejected, skipped or sent without a field, or in another shape), each
// with the semantic version bump it needs:
//
//   - major: something that worked can now fail or disappear: a config key
//     removed, made required, retyped or narrowed (pattern, bounds,
//     options); a body field removed, renamed, retyped, made required or no
//     longer read from a path; an event mapping, a variant or its vendor
//     event changed or dropped; a consent gate or filter added or changed.
//   - minor: new capability, or a change that refuses nothing accepted
//     before: new optional config, new fields, mappings and variants,
//     hosts, URLs, methods, headers and auth changed, a field that reads
//     one more path, a constraint relaxed.
//   - patch: text only (descriptions, labels, help texts, names,
//     warnings), and computations that read the same inputs (an
//     expression, a default, a constant).
//
// It works on the compiled form (internal/compiler), so overlays are
// compared merged, and event maps as each variant resolves them.
package blueprintdiff

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// Level is how far a change reaches: the semantic version bump it needs.
type Level int

// Levels, in order.
const (
	None Level = iota
	Patch
	Minor
	Major
)

var levelNames = [...]string{"none", "patch", "minor", "major"}

func (l Level) String() string { return levelNames[l] }

// MarshalText writes the level as none, patch, minor or major.
func (l Level) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// Change is one difference between two versions.
type Change struct {
	Level   Level  `json:"level"`
	Message string `json:"message"`
	// Where lists the event mappings (and, when the blueprint has several
	// variants, the variants) the change reaches: "Order Completed in
	// default, retail", or "in retail" for a variant's own change.
	Where []string `json:"where,omitempty"`
}

// String renders "LEVEL: message (where; where)".
func (c Change) String() string { return c.Level.String() + ": " + c.text() }

// text is the message and where it applies.
func (c Change) text() string {
	if len(c.Where) > 0 {
		return c.Message + " (" + strings.Join(c.Where, "; ") + ")"
	}
	return c.Message
}

// Side names one of the two blueprints compared.
type Side struct {
	Ref     string `json:"ref"`
	Version string `json:"version"`
	File    string `json:"file"`
}

// Report is the comparison of two versions.
type Report struct {
	Old Side `json:"old"`
	New Side `json:"new"`
	// Changes, the most far-reaching first (in the order found within a
	// level).
	Changes []Change `json:"changes"`
	// Needs is the largest level of the changes (None when there is none);
	// Bump is the step from Old.Version to New.Version.
	Needs Level `json:"needs"`
	Bump  Level `json:"bump"`
	// OK: Bump is at least Needs.
	OK bool `json:"ok"`
}

// Verdict is the final line of the text output:
// "needs: major; 0.1.0 -> 0.1.1 is a PATCH bump".
func (r *Report) Verdict() string {
	what := "not a bump"
	if r.Bump != None {
		what = "a " + strings.ToUpper(r.Bump.String()) + " bump"
	}
	return fmt.Sprintf("needs: %s; %s -> %s is %s", r.Needs, r.Old.Version, r.New.Version, what)
}

// NextVersion returns the smallest version after v with the given bump
// (1.2.3, Minor: 1.3.0), or "" when v is not a version or l is None.
func NextVersion(v string, l Level) string {
	p, ok := parseVersion(v)
	if !ok || l == None {
		return ""
	}
	c := p.core
	switch l {
	case Major:
		c = [3]int{c[0] + 1, 0, 0}
	case Minor:
		c = [3]int{c[0], c[1] + 1, 0}
	case Patch:
		c = [3]int{c[0], c[1], c[2] + 1}
	}
	return fmt.Sprintf("%d.%d.%d", c[0], c[1], c[2])
}

// BumpWarning returns the warning version_bump_too_small, at pos, when
// the step from old's version to new's is smaller than new's changes
// need; nil otherwise. hint says how to see every change (a command).
func BumpWarning(pos diag.Pos, old, new *compiler.Blueprint, hint string) diag.List {
	r := Compare(old, new)
	if r.OK {
		return nil
	}
	step := "not a bump"
	if r.Bump != None {
		step = "a " + r.Bump.String() + " bump"
	}
	first := r.Changes[0]
	more := ""
	if n := len(r.Changes) - 1; n > 0 {
		more = fmt.Sprintf(", and %d more", n)
	}
	if hint != "" {
		hint = "; " + hint
	}
	var ds diag.List
	ds.Warnf(pos, "version_bump_too_small", "version %s is %s from %s, but its changes need a %s bump (%s or later): %s%s%s", r.New.Version, step, r.Old.Version, r.Needs, NextVersion(r.Old.Version, r.Needs), first.text(), more, hint)
	return ds
}

// Compare reports what changed from old to new.
func Compare(old, new *compiler.Blueprint) *Report {
	d := &differ{o: old, n: new, byMsg: map[string]*change{}, multi: len(old.Variants) > 1}
	d.meta()
	d.config()
	d.hosts()
	d.consent()
	d.warnings()
	d.values()
	d.variants()
	r := &Report{
		Old:     Side{Ref: old.Ref(), Version: old.Version, File: old.File},
		New:     Side{Ref: new.Ref(), Version: new.Version, File: new.File},
		Changes: []Change{},
		Bump:    Bump(old.Version, new.Version),
	}
	sort.SliceStable(d.list, func(i, j int) bool { return d.list[i].level > d.list[j].level })
	for _, c := range d.list {
		r.Changes = append(r.Changes, Change{Level: c.level, Message: c.msg, Where: c.whereText(d.multi)})
		r.Needs = max(r.Needs, c.level)
	}
	r.OK = r.Bump >= r.Needs
	return r
}

// where is an event mapping in a variant ("" event: the variant itself).
type where struct{ event, variant string }

type change struct {
	level Level
	msg   string
	where []where
}

func (c *change) whereText(multi bool) []string {
	var events []string
	variants := map[string][]string{}
	for _, w := range c.where {
		if _, seen := variants[w.event]; !seen {
			events = append(events, w.event)
		}
		if !slices.Contains(variants[w.event], w.variant) {
			variants[w.event] = append(variants[w.event], w.variant)
		}
	}
	var out []string
	for _, e := range events {
		vs := strings.Join(variants[e], ", ")
		switch {
		case e == "" && multi:
			out = append(out, "in "+vs)
		case e == "":
		case multi:
			out = append(out, e+" in "+vs)
		default:
			out = append(out, e)
		}
	}
	return out
}

type differ struct {
	o, n  *compiler.Blueprint
	list  []*change
	byMsg map[string]*change
	multi bool
}

// add records a change; the same message found again (the same request
// reached from another event or variant) adds where it was found.
func (d *differ) add(l Level, w *where, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c := d.byMsg[msg]
	if c == nil {
		c = &change{level: l, msg: msg}
		d.byMsg[msg] = c
		d.list = append(d.list, c)
	}
	c.level = max(c.level, l)
	if w != nil && !slices.Contains(c.where, *w) {
		c.where = append(c.where, *w)
	}
}

func (d *differ) meta() {
	o, n := d.o, d.n
	if o.Key != n.Key {
		d.add(Major, nil, "key changed from %s to %s", o.Key, n.Key)
	}
	for _, f := range []struct{ name, a, b string }{
		{"name", o.Name, n.Name}, {"description", o.Description, n.Description},
		{"category", o.Category, n.Category}, {"status", o.Status, n.Status}, {"website", o.Website, n.Website},
	} {
		if f.a != f.b {
			d.add(Patch, nil, "%s changed", f.name)
		}
	}
}

// needed: an install must give the key.
func needed(f *compiler.ConfigField) bool { return f.Required && f.Default == nil }

func (d *differ) config() {
	for _, of := range d.o.Config {
		nf := d.n.ConfigField(of.Key)
		if nf == nil {
			d.add(Major, nil, "config key %s removed", of.Key)
			continue
		}
		d.configField(of, nf)
	}
	for _, nf := range d.n.Config {
		if d.o.ConfigField(nf.Key) != nil {
			continue
		}
		switch {
		case needed(nf):
			d.add(Major, nil, "config key %s added, required without default", nf.Key)
		case nf.RequiredWhen != nil && nf.Default == nil:
			d.add(Major, nil, "config key %s added, required when %s", nf.Key, nf.RequiredWhen.Text)
		default:
			d.add(Minor, nil, "config key %s added (optional)", nf.Key)
		}
	}
}

func (d *differ) configField(o, n *compiler.ConfigField) {
	k := "config key " + o.Key
	if o.Type != n.Type {
		d.add(Major, nil, "%s: type changed from %s to %s", k, o.Type, n.Type)
	}
	switch {
	case needed(n) && !needed(o) && o.Required:
		d.add(Major, nil, "%s: default removed, so it is now required", k)
	case needed(n) && !needed(o):
		d.add(Major, nil, "%s made required", k)
	case needed(o) && !needed(n):
		d.add(Minor, nil, "%s no longer required", k)
	}
	ow, nw := exprText(o.RequiredWhen), exprText(n.RequiredWhen)
	switch {
	case ow == nw:
	case nw == "":
		d.add(Minor, nil, "%s no longer required when %s", k, ow)
	case !needed(n) && n.Default == nil && ow == "":
		d.add(Major, nil, "%s now required when %s", k, nw)
	case !needed(n) && n.Default == nil:
		d.add(Major, nil, "%s: required_when changed from %s to %s", k, ow, nw)
	}
	var oo, no []string
	for _, x := range o.Options {
		oo = append(oo, x.Value)
	}
	for _, x := range n.Options {
		no = append(no, x.Value)
	}
	for _, v := range minus(oo, no) {
		d.add(Major, nil, "%s: option %s removed", k, v)
	}
	for _, v := range minus(no, oo) {
		d.add(Minor, nil, "%s: option %s added", k, v)
	}
	for _, x := range o.Options {
		if i := slices.IndexFunc(n.Options, func(y compiler.SelectOption) bool { return y.Value == x.Value }); i >= 0 && n.Options[i].Label != x.Label {
			d.add(Patch, nil, "%s: label of option %s changed", k, x.Value)
		}
	}
	d.pattern(k, patternText(o.Pattern), patternText(n.Pattern))
	d.bounds(k, o.Min, o.Max, n.Min, n.Max)
	od, nd := fmt.Sprint(o.Default), fmt.Sprint(n.Default)
	switch {
	case od == nd:
	case n.Default == nil && !n.Required:
		d.add(Minor, nil, "%s: default %s removed", k, od)
	case n.Default != nil && o.Default == nil:
		d.add(Minor, nil, "%s: default %s added", k, nd)
	case n.Default != nil:
		d.add(Minor, nil, "%s: default changed from %s to %s", k, od, nd)
	}
	for _, f := range []struct{ name, a, b string }{
		{"label", o.Label, n.Label}, {"placeholder", o.Placeholder, n.Placeholder}, {"help_text", o.HelpText, n.HelpText},
	} {
		if f.a != f.b {
			d.add(Patch, nil, "%s: %s changed", k, f.name)
		}
	}
}

// pattern compares two patterns (as written; "" for none): one added or
// changed may refuse what the old one accepted (whether it does is not
// decided: a regular expression's language is not compared).
func (d *differ) pattern(k, o, n string) {
	d.patternAt(k, o, n, nil)
}

func (d *differ) patternAt(k, o, n string, w *where) {
	switch {
	case o == n:
	case o == "":
		d.add(Major, w, "%s: pattern %s added", k, n)
	case n == "":
		d.add(Minor, w, "%s: pattern %s removed", k, o)
	default:
		d.add(Major, w, "%s: pattern changed from %s to %s", k, o, n)
	}
}

func (d *differ) bounds(k string, omin, omax, nmin, nmax *float64) {
	d.boundsAt(k, omin, omax, nmin, nmax, nil)
}

func (d *differ) boundsAt(k string, omin, omax, nmin, nmax *float64, w *where) {
	num := func(f *float64) string { return strconv.FormatFloat(*f, 'g', -1, 64) }
	switch {
	case nmin != nil && (omin == nil || *nmin > *omin):
		d.add(Major, w, "%s: minimum raised to %s", k, num(nmin))
	case omin != nil && (nmin == nil || *nmin < *omin):
		d.add(Minor, w, "%s: minimum lowered%s", k, orRemoved(nmin, num))
	}
	switch {
	case nmax != nil && (omax == nil || *nmax < *omax):
		d.add(Major, w, "%s: maximum lowered to %s", k, num(nmax))
	case omax != nil && (nmax == nil || *nmax > *omax):
		d.add(Minor, w, "%s: maximum raised%s", k, orRemoved(nmax, num))
	}
}

func orRemoved(f *float64, num func(*float64) string) string {
	if f == nil {
		return " (removed)"
	}
	return " to " + num(f)
}

func (d *differ) hosts() {
	oh, nh := slices.Clone(d.o.Hosts), slices.Clone(d.n.Hosts)
	for _, k := range d.o.HostConfigs {
		oh = append(oh, "{config."+k+"}")
	}
	for _, k := range d.n.HostConfigs {
		nh = append(nh, "{config."+k+"}")
	}
	for _, h := range minus(oh, nh) {
		d.add(Minor, nil, "host %s removed", h)
	}
	for _, h := range minus(nh, oh) {
		d.add(Minor, nil, "host %s added", h)
	}
}

func (d *differ) consent() {
	o, n := d.o, d.n
	gated := func(b *compiler.Blueprint) bool { return b.Consent != nil || b.ConsentConfig != "" }
	switch {
	case !gated(o) && !gated(n):
		return
	case !gated(o):
		d.add(Major, nil, "consent gate added (category %s): events without consent are skipped", consentCategory(n))
		return
	case !gated(n):
		d.add(Minor, nil, "consent gate removed")
		return
	case o.ConsentConfig != n.ConsentConfig:
		d.add(Major, nil, "consent category changed from %s to %s", consentCategory(o), consentCategory(n))
		return
	case o.ConsentConfig == "":
		d.gate(o.Consent, n.Consent, "consent")
		return
	}
	for _, opt := range n.ConfigField(n.ConsentConfig).Options {
		og, inOld := o.ConsentByOption[opt.Value]
		ng := n.ConsentByOption[opt.Value]
		if !inOld {
			continue // a new option: reported with the config
		}
		where := "consent for " + n.ConsentConfig + " " + opt.Value
		switch {
		case og == nil && ng != nil:
			d.add(Major, nil, "%s: gate added", where)
		case og != nil && ng == nil:
			d.add(Minor, nil, "%s: gate removed", where)
		case og != nil:
			d.gate(og, ng, where)
		}
	}
}

func consentCategory(b *compiler.Blueprint) string {
	if b.ConsentConfig != "" {
		return "{config." + b.ConsentConfig + "}"
	}
	return b.Consent.Category
}

func (d *differ) gate(o, n *compiler.Consent, k string) {
	if o.Category != n.Category {
		d.add(Major, nil, "%s category changed from %s to %s", k, o.Category, n.Category)
	}
	switch {
	case o.Allow && !n.Allow:
		d.add(Major, nil, "%s: events without a decision are now skipped (when_missing: deny)", k)
	case !o.Allow && n.Allow:
		d.add(Minor, nil, "%s: events without a decision are now sent (when_missing: allow)", k)
	}
	if removed := minus(o.Paths, n.Paths); len(removed) > 0 {
		d.add(Major, nil, "%s no longer read from %s", k, strings.Join(removed, ", "))
	}
	if added := minus(n.Paths, o.Paths); len(added) > 0 {
		d.add(Minor, nil, "%s also read from %s", k, strings.Join(added, ", "))
	} else if len(minus(o.Paths, n.Paths)) == 0 && !slices.Equal(o.Paths, n.Paths) {
		d.add(Minor, nil, "%s paths reordered", k)
	}
	if oe, ne := exprText(o.Expr), exprText(n.Expr); oe != ne {
		d.add(Major, nil, "%s expression changed", k)
	}
}

func (d *differ) warnings() {
	ow := map[string]string{}
	for _, w := range d.o.Warnings {
		ow[w.Code] = w.Description
	}
	nw := map[string]string{}
	for _, w := range d.n.Warnings {
		nw[w.Code] = w.Description
		if desc, ok := ow[w.Code]; !ok {
			d.add(Patch, nil, "warning %s added", w.Code)
		} else if desc != w.Description {
			d.add(Patch, nil, "warning %s: description changed", w.Code)
		}
	}
	for _, w := range d.o.Warnings {
		if _, ok := nw[w.Code]; !ok {
			d.add(Patch, nil, "warning %s removed", w.Code)
		}
	}
}

// values compares the shared values kept by name, each on what it reads
// directly: a value it reads is compared on its own.
func (d *differ) values() {
	for _, ov := range d.o.Values {
		if ov.Builtin {
			continue
		}
		i := slices.IndexFunc(d.n.Values, func(v *compiler.Value) bool { return v.Name == ov.Name && !v.Builtin })
		if i < 0 {
			continue // no longer used by name: what used it says so
		}
		nv := d.n.Values[i]
		k := "value " + ov.Name
		d.spec(k, &ov.Spec, &nv.Spec, false, nil)
		if ov.Description != nv.Description {
			d.add(Patch, nil, "%s: description changed", k)
		}
	}
}

// spec compares where a value comes from and its type rule. transitive:
// the paths read through shared values count as the spec's own.
func (d *differ) spec(k string, o, n *compiler.Spec, transitive bool, w *where) {
	ot, nt := typeText(o.Type), typeText(n.Type)
	if ot != nt {
		d.add(Major, w, "%s: type changed from %s to %s", k, ot, nt)
	} else {
		d.patternAt(k, patternText(o.Type.Pattern), patternText(n.Type.Pattern), w)
		d.boundsAt(k, o.Type.Min, o.Type.Max, n.Type.Min, n.Type.Max, w)
	}
	if sourcesText(o) != sourcesText(n) {
		or, nr := reads(o, transitive), reads(n, transitive)
		removed, added := minus(eventPaths(or), eventPaths(nr)), minus(eventPaths(nr), eventPaths(or))
		if len(removed) > 0 {
			d.add(Major, w, "%s no longer reads %s", k, strings.Join(removed, ", "))
		}
		if len(added) > 0 {
			d.add(Minor, w, "%s also reads %s", k, strings.Join(added, ", "))
		}
		if len(removed) == 0 && len(added) == 0 {
			d.add(Patch, w, "%s computed differently", k)
		}
	}
}

func (d *differ) variants() {
	for _, ov := range d.o.Variants {
		nv := d.n.Variant(ov.Key)
		if nv == nil {
			d.add(Major, nil, "variant %s removed", ov.Key)
			continue
		}
		k := "variant " + ov.Key
		if ov.Name != nv.Name {
			d.add(Patch, nil, "%s: name changed", k)
		}
		if ov.Description != nv.Description {
			d.add(Patch, nil, "%s: description changed", k)
		}
		for _, c := range minus(nv.RequiredConfig, ov.RequiredConfig) {
			d.add(Major, nil, "%s now requires config key %s", k, c)
		}
		for _, c := range minus(ov.RequiredConfig, nv.RequiredConfig) {
			d.add(Minor, nil, "%s no longer requires config key %s", k, c)
		}
		if fmt.Sprint(ov.DefaultConfig) != fmt.Sprint(nv.DefaultConfig) {
			d.add(Minor, nil, "%s: default_config changed", k)
		}
		vw := &where{variant: ov.Key}
		for _, oe := range ov.Events {
			ne := findEvent(nv.Events, oe.Key)
			if ne == nil {
				d.add(Major, vw, "event mapping %s removed", oe.Name)
				continue
			}
			d.event(oe, ne, ov.Key)
		}
		for _, ne := range nv.Events {
			if findEvent(ov.Events, ne.Key) == nil {
				d.add(Minor, vw, "event mapping %s added", ne.Name)
			}
		}
	}
	for _, nv := range d.n.Variants {
		if d.o.Variant(nv.Key) == nil {
			d.add(Minor, nil, "variant %s added", nv.Key)
		}
	}
}

func findEvent(es []*compiler.Event, key string) *compiler.Event {
	for _, e := range es {
		if e.Key == key {
			return e
		}
	}
	return nil
}

func (d *differ) event(o, n *compiler.Event, variant string) {
	vw := &where{variant: variant}
	k := "event mapping " + o.Name
	switch {
	case o.VendorSpec == nil && n.VendorSpec == nil:
		if o.VendorEvent != n.VendorEvent {
			d.add(Major, vw, "%s: vendor event changed from %s to %s", k, o.VendorEvent, n.VendorEvent)
		}
	case o.VendorSpec == nil || n.VendorSpec == nil:
		d.add(Major, vw, "%s: vendor event changed from %s to %s", k, vendorText(o), vendorText(n))
	default:
		d.spec(k+": vendor event", o.VendorSpec, n.VendorSpec, true, vw)
	}
	switch of, nf := exprText(o.Filter), exprText(n.Filter); {
	case of == nf:
	case of == "":
		d.add(Major, vw, "%s: filter added (events it refuses are skipped)", k)
	case nf == "":
		d.add(Minor, vw, "%s: filter removed", k)
	default:
		d.add(Major, vw, "%s: filter changed (it may skip events the old one sent)", k)
	}
	if o.Description != n.Description {
		d.add(Patch, vw, "%s: description changed", k)
	}
	if warnText(o.WarnWhen) != warnText(n.WarnWhen) {
		d.add(Patch, vw, "%s: warn_when changed", k)
	}
	if o.Request.Name != n.Request.Name {
		d.add(Minor, vw, "%s: sends request %s instead of %s", k, n.Request.Name, o.Request.Name)
	}
	d.request(o.Request, n.Request, &where{event: o.Name, variant: variant})
}

func vendorText(e *compiler.Event) string {
	if e.VendorSpec != nil {
		return "one computed per event"
	}
	return e.VendorEvent
}

func (d *differ) request(o, n *compiler.Request, w *where) {
	k := "request " + n.Name
	if om, nm := methodText(o), methodText(n); om != nm {
		d.add(Minor, w, "%s: method changed from %s to %s", k, om, nm)
	}
	if o.URL.Text != n.URL.Text {
		if vs := minus(mandatoryValues(n.URL), mandatoryValues(o.URL)); len(vs) > 0 {
			d.add(Major, w, "%s: URL now needs value %s (events without it are rejected)", k, strings.Join(vs, ", "))
		} else {
			d.add(Minor, w, "%s: URL changed from %s to %s", k, o.URL.Text, n.URL.Text)
		}
	}
	for _, h := range o.Headers {
		i := slices.IndexFunc(n.Headers, func(x *compiler.Header) bool { return strings.EqualFold(x.Name, h.Name) })
		switch {
		case i < 0:
			d.add(Minor, w, "%s: header %s no longer sent", k, h.Name)
		case n.Headers[i].Value.Text != h.Value.Text:
			d.add(Minor, w, "%s: header %s changed", k, h.Name)
		case n.Headers[i].Secret != h.Secret:
			d.add(Patch, w, "%s: header %s secret changed", k, h.Name)
		}
	}
	for _, h := range n.Headers {
		if !slices.ContainsFunc(o.Headers, func(x *compiler.Header) bool { return strings.EqualFold(x.Name, h.Name) }) {
			d.add(Minor, w, "%s: header %s added", k, h.Name)
		}
	}
	if authText(o.Auths) != authText(n.Auths) {
		d.add(Minor, w, "%s: auth changed", k)
	}
	if encName(o) != encName(n) {
		d.add(Major, w, "%s: body encoding changed from %s to %s", k, encName(o), encName(n))
	}
	if batchText(o.Batch) != batchText(n.Batch) {
		d.add(Minor, w, "%s: batching changed", k)
	}
	if or, nr := rulesText(o.Responses, false), rulesText(n.Responses, false); or != nr {
		d.add(Minor, w, "%s: response rules changed", k)
	} else if rulesText(o.Responses, true) != rulesText(n.Responses, true) {
		d.add(Patch, w, "%s: response messages changed", k)
	}
	if o.Description != n.Description {
		d.add(Patch, w, "%s: description changed", k)
	}
	switch {
	case o.BodyFromEvent && !n.BodyFromEvent:
		d.add(Major, w, "%s: body is no longer the event as received", k)
	case !o.BodyFromEvent && n.BodyFromEvent:
		d.add(Major, w, "%s: body is now the event as received", k)
	case !o.BodyFromEvent && o.Body != nil && n.Body != nil:
		d.object(o.Body, n.Body, k, w)
	}
}

func encName(r *compiler.Request) string {
	if r.Encoding == nil {
		return "json"
	}
	return r.Encoding.Name()
}

func methodText(r *compiler.Request) string {
	if r.MethodConfig != "" {
		return "{config." + r.MethodConfig + "}"
	}
	return r.Method
}

// mandatoryValues lists the values a template needs (not optional
// placeholders): absent, the event is rejected.
func mandatoryValues(t *compiler.Template) []string {
	var out []string
	if t == nil {
		return nil
	}
	for _, p := range t.Parts {
		if p.Value != nil && !p.Optional && !p.Value.Builtin && !slices.Contains(out, p.Value.Name) {
			out = append(out, p.Value.Name)
		}
	}
	return out
}

func fieldName(f *compiler.Field) string { return strings.ReplaceAll(f.Path, "\x01", "N") }

func member(o *compiler.Object, name string) *compiler.Field {
	for _, f := range o.Fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func (d *differ) object(o, n *compiler.Object, req string, w *where) {
	taken := map[string]bool{}
	for _, of := range o.Fields {
		k := req + ": body field " + fieldName(of)
		nf := member(n, of.Name)
		if nf != nil {
			taken[nf.Name] = true
			d.field(of, nf, k, req, w)
			continue
		}
		if of.Internal {
			d.add(Patch, w, "%s: internal field %s removed", req, fieldName(of))
			continue
		}
		// A field gone and one added that is the same in all but its
		// name: a rename.
		fp := fieldText(of)
		if i := slices.IndexFunc(n.Fields, func(f *compiler.Field) bool {
			return !taken[f.Name] && member(o, f.Name) == nil && !f.Internal && fieldText(f) == fp
		}); i >= 0 {
			taken[n.Fields[i].Name] = true
			d.add(Major, w, "%s renamed to %s", k, fieldName(n.Fields[i]))
			continue
		}
		d.add(Major, w, "%s removed", k)
	}
	for _, nf := range n.Fields {
		if taken[nf.Name] {
			continue
		}
		switch {
		case nf.Required && nf.Default == nil && nf.When == nil && readsEvent(nf):
			d.add(Major, w, "%s: body field %s added, required (events without it are rejected)", req, fieldName(nf))
		case nf.Internal:
			d.add(Patch, w, "%s: internal field %s added", req, fieldName(nf))
		default:
			d.add(Minor, w, "%s: body field %s added", req, fieldName(nf))
		}
	}
}

func (d *differ) field(o, n *compiler.Field, k, req string, w *where) {
	switch {
	case o.Internal && !n.Internal:
		d.add(Minor, w, "%s now written (no longer internal)", k)
	case !o.Internal && n.Internal:
		d.add(Major, w, "%s no longer written (internal)", k)
	}
	if os, ns := shapeText(o), shapeText(n); os != ns {
		d.add(Major, w, "%s now written as %s, was %s", k, ns, os)
	}
	d.spec(k, &o.Spec, &n.Spec, true, w)
	switch {
	case !o.Required && n.Required && readsEvent(n):
		d.add(Major, w, "%s made required (events without it are rejected)", k)
	case !o.Required && n.Required:
		d.add(Minor, w, "%s made required", k)
	case o.Required && !n.Required:
		d.add(Minor, w, "%s no longer required", k)
	}
	switch {
	case bytes.Equal(o.Default, n.Default):
	case n.Required && n.Default == nil:
		d.add(Major, w, "%s: default removed (events without it are rejected)", k)
	case o.Default == nil:
		d.add(Minor, w, "%s: default added", k)
	default:
		d.add(Patch, w, "%s: default changed", k)
	}
	switch ow, nw := exprText(o.When), exprText(n.When); {
	case ow == nw:
	case ow == "":
		d.add(Minor, w, "%s now written only when %s", k, nw)
	case nw == "":
		d.add(Minor, w, "%s: condition removed", k)
	default:
		d.add(Minor, w, "%s: condition changed to %s", k, nw)
	}
	if o.Secret != n.Secret {
		d.add(Patch, w, "%s: secret changed", k)
	}
	if o.WarnIfAbsent != n.WarnIfAbsent {
		d.add(Patch, w, "%s: warn_if_absent changed", k)
	}
	if o.Object != nil && n.Object != nil {
		d.object(o.Object, n.Object, req, w)
	}
}

// typeText is a type rule without its bounds: what a value is written as.
func typeText(t compiler.Type) string {
	s := t.Kind.String()
	var mods []string
	if t.Currency != nil {
		mods = append(mods, "with a currency")
	}
	if t.Kind == compiler.KindDecimal && t.Scale >= 0 && t.Currency == nil {
		mods = append(mods, "scale "+strconv.Itoa(t.Scale))
	}
	if t.Format != "" {
		mods = append(mods, "format "+t.Format)
	}
	if t.Text {
		mods = append(mods, "as text")
	}
	if len(mods) > 0 {
		s += " (" + strings.Join(mods, ", ") + ")"
	}
	return s
}

func shapeText(f *compiler.Field) string {
	switch {
	case f.Flatten:
		return "indexed keys"
	case f.HasJoin:
		return fmt.Sprintf("a list joined with %q", f.Join)
	case f.Each:
		return "a list of values"
	case f.List:
		return "a one-element list"
	}
	return "a single value"
}

// sourcesText identifies where a spec's value comes from.
func sourcesText(s *compiler.Spec) string {
	var b strings.Builder
	for _, src := range s.Sources {
		switch src.Kind {
		case compiler.SourcePath:
			b.WriteString("path " + src.Path)
		case compiler.SourceValue:
			b.WriteString("value " + src.Value.Name)
		case compiler.SourceConfig:
			b.WriteString("config " + src.Config)
		case compiler.SourceConst:
			b.WriteString("const " + string(src.Const))
		case compiler.SourceExpr:
			b.WriteString("expr " + exprText(src.Expr))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// fieldText identifies a field but for its name (for renames).
func fieldText(f *compiler.Field) string {
	s := fmt.Sprintf("%s|%s|%s|%v|%v|%s|%s|%s", sourcesText(&f.Spec), typeText(f.Type), shapeText(f), f.Required, f.Secret, f.Default, exprText(f.When), patternText(f.Type.Pattern))
	if f.Object != nil {
		for _, c := range f.Object.Fields {
			s += "{" + c.Name + ":" + fieldText(c) + "}"
		}
	}
	return s
}

// reads lists what a spec reads: "event:PATH" (event or item paths),
// "config:KEY", "value:NAME" (a shared value, when not transitive: the
// paths it reads otherwise), "builtin:NAME".
func reads(s *compiler.Spec, transitive bool) []string {
	var out []string
	seen := map[*compiler.Value]bool{}
	add := func(x string) {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	var spec func(s *compiler.Spec)
	value := func(v *compiler.Value) {
		switch {
		case v.Builtin:
			add("builtin:" + v.Name)
		case !transitive:
			add("value:" + v.Name)
		case !seen[v]:
			seen[v] = true
			spec(&v.Spec)
		}
	}
	spec = func(s *compiler.Spec) {
		for _, src := range s.Sources {
			switch src.Kind {
			case compiler.SourcePath:
				add("event:" + src.Path)
			case compiler.SourceValue:
				value(src.Value)
			case compiler.SourceConfig:
				add("config:" + src.Config)
			case compiler.SourceExpr:
				if src.Expr == nil {
					continue
				}
				for _, in := range src.Expr.Inputs {
					switch in.Kind {
					case compiler.InputEvent, compiler.InputItem:
						p := in.Path
						if p == "" {
							p = "(the whole event)"
							if in.Kind == compiler.InputItem {
								p = "(the whole item)"
							}
						}
						add("event:" + p)
					case compiler.InputConfig:
						add("config:" + in.Config)
					case compiler.InputValue:
						if in.Value != nil {
							value(in.Value)
						}
					}
				}
			}
		}
	}
	spec(s)
	return out
}

func eventPaths(rs []string) []string {
	var out []string
	for _, r := range rs {
		if p, ok := strings.CutPrefix(r, "event:"); ok {
			out = append(out, p)
		}
	}
	return out
}

// readsEvent: the field's value can be absent for an event (it reads the
// event, directly or through values), so requiring it can reject events.
func readsEvent(f *compiler.Field) bool {
	if len(eventPaths(reads(&f.Spec, true))) > 0 {
		return true
	}
	if f.Object != nil {
		for _, c := range f.Object.Fields {
			if readsEvent(c) {
				return true
			}
		}
	}
	return false
}

func exprText(e *compiler.Expr) string {
	if e == nil {
		return ""
	}
	return strings.TrimSpace(e.Text)
}

func warnText(ws []*compiler.WarnRule) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString(w.Code + "=" + exprText(w.Expr) + "\n")
	}
	return b.String()
}

func tmplText(t *compiler.Template) string {
	if t == nil {
		return ""
	}
	return t.Text
}

func authText(as []*compiler.Auth) string {
	var b strings.Builder
	for _, a := range as {
		fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s|%s|%s\n", a.Type, tmplText(a.Username), tmplText(a.Password), tmplText(a.Token), a.Name, tmplText(a.Value), exprText(a.When), fmt.Sprint(a.Signature != nil))
		if s := a.Signature; s != nil {
			fmt.Fprintf(&b, "%s|%s|%s|%s|%s|%s|%s\n", tmplText(s.Secret), s.Header, s.Prefix, s.Algorithm, s.TimestampHeader, s.TimestampFormat, s.Separator)
		}
	}
	return b.String()
}

func batchText(bt *compiler.Batch) string {
	if bt == nil {
		return ""
	}
	return fmt.Sprintf("%s %+v %+v %+v %+v", bt.Into, bt.Enabled, bt.MaxEvents, bt.MaxWaitMS, bt.MaxBytes)
}

// rulesText identifies the response rules: what they decide, and with
// messages (and descriptions) too.
func rulesText(r *compiler.Responses, messages bool) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	if messages {
		b.WriteString(r.MessagePath + "\n")
	}
	for _, x := range r.Rules {
		if x.Default {
			continue
		}
		fmt.Fprintf(&b, "%v|%s|%s", x.Statuses, exprText(x.When), x.Outcome)
		if messages {
			fmt.Fprintf(&b, "|%s|%s|%s", x.Message, exprText(x.MessageExpr), x.Description)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// patternText returns a pattern as written ("" for none): the compiler
// anchors it as ^(?:...)$.
func patternText(re *regexp.Regexp) string {
	if re == nil {
		return ""
	}
	s := re.String()
	if len(s) >= 6 && s[:4] == "^(?:" && s[len(s)-2:] == ")$" {
		return s[4 : len(s)-2]
	}
	return s
}

// minus lists the elements of a not in b, in a's order.
func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
