package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/encoding"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Runner runs vector files against blueprints from a catalog.
type Runner struct {
	Catalog *engine.Catalog
	// Options are passed to runtime.Bind.
	Options []runtime.Option
	// Validated evaluates each event as a service that validates events
	// once at ingestion does: runtime.Valid, then EvaluateValid (an event
	// Valid refuses goes to Evaluate). The decisions must be the same.
	Validated bool
}

// CaseResult is the outcome of one case.
type CaseResult struct {
	File *File
	Case *Case
	// Problems lists every difference from the expectation; empty means
	// the case passed.
	Problems []string
	// Got is the result the runtime gave (redacted when printed).
	Got runtime.Result
}

// Passed reports whether the case met its expectation.
func (r CaseResult) Passed() bool { return len(r.Problems) == 0 }

// Blueprint compiles the blueprint a vector file tests.
func (r *Runner) Blueprint(f *File) (*engine.Blueprint, error) {
	if f.BlueprintFile != "" {
		name, src, err := f.read(f.BlueprintFile)
		if err != nil {
			return nil, fmt.Errorf("blueprint_file %s: %w", f.BlueprintFile, err)
		}
		bp, ds := engine.Compile(name, src, engine.WithCatalog(r.Catalog))
		if bp == nil {
			return nil, fmt.Errorf("blueprint_file %s does not compile:\n%s", f.BlueprintFile, ds.Error())
		}
		return bp, nil
	}
	bp, ds, err := r.Catalog.Compile(f.Ref())
	if err != nil {
		return nil, err
	}
	if bp == nil {
		return nil, fmt.Errorf("blueprint %s does not compile:\n%s", f.Ref(), ds.Error())
	}
	return bp, nil
}

// Run runs every case of f whose name matches filter (nil: all).
func (r *Runner) Run(f *File, filter *regexp.Regexp) []CaseResult {
	bp, err := r.Blueprint(f)
	var out []CaseResult
	for _, c := range f.Cases {
		if filter != nil && !filter.MatchString(c.Name) {
			continue
		}
		if err != nil {
			out = append(out, CaseResult{File: f, Case: c, Problems: []string{err.Error()}})
			continue
		}
		out = append(out, r.RunCase(bp, f, c))
	}
	return out
}

// RunCase runs one case against bp.
func (r *Runner) RunCase(bp *engine.Blueprint, f *File, c *Case) CaseResult {
	res := CaseResult{File: f, Case: c}
	variant, config := f.Variant, f.Config
	if c.Variant != "" {
		variant = c.Variant
	}
	if c.HasConfig {
		config = c.Config
	}
	now := caseNow(f, c)
	opts := append(slices.Clip(r.Options), runtime.WithClock(func() time.Time { return now }))
	in, err := runtime.Bind(bp, variant, config, opts...)
	var got runtime.Result
	var cerr *runtime.ConfigError
	switch {
	case errors.As(err, &cerr):
		got = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidConfig, Fields: cerr.Keys, Message: cerr.Error()}
	case err != nil:
		res.Problems = append(res.Problems, err.Error())
		return res
	default:
		got = in.Evaluate(c.Event)
		if r.Validated {
			if v, err := runtime.Valid(c.Event); err == nil {
				got = in.EvaluateValid(v)
			}
		}
	}
	res.Got = got
	res.Problems = compare(c.Expect, got)
	if in != nil {
		for i, p := range res.Problems {
			res.Problems[i] = in.Redact(p)
		}
	}
	return res
}

func compare(want Expect, got runtime.Result) []string {
	var ps []string
	add := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if string(got.Outcome) != want.Outcome {
		detail := got.Reason
		if len(got.Fields) > 0 {
			detail += " [" + strings.Join(got.Fields, ", ") + "]"
		}
		if got.Message != "" {
			detail += ": " + got.Message
		}
		add("outcome: expected %s, got %s %s", want.Outcome, got.Outcome, detail)
		return ps
	}
	if want.Outcome != "deliver" && got.Reason != want.Reason {
		add("reason: expected %s, got %s (%s)", want.Reason, got.Reason, got.Message)
	}
	if want.HasFields && !sameSet(want.Fields, got.Fields) {
		add("fields: expected %s, got %s", setString(want.Fields), setString(got.Fields))
	}
	if want.HasWarnings && !sameSet(want.Warnings, got.Warnings) {
		add("warnings: expected %s, got %s", setString(want.Warnings), setString(got.Warnings))
	}
	if want.Outcome == "deliver" && want.HasRequests {
		if len(want.Requests) != len(got.Requests) {
			add("requests: expected %d, got %d", len(want.Requests), len(got.Requests))
			return ps
		}
		for i, wr := range want.Requests {
			ps = append(ps, compareRequest(fmt.Sprintf("requests[%d]", i), wr, got.Requests[i])...)
		}
	}
	return ps
}

func compareRequest(at string, want ExpectRequest, got *runtime.Request) []string {
	var ps []string
	if want.Method != got.Method {
		ps = append(ps, fmt.Sprintf("%s.method: expected %s, got %s", at, want.Method, got.Method))
	}
	if want.Query == nil {
		if want.URL != got.URL {
			ps = append(ps, fmt.Sprintf("%s.url: expected %s, got %s", at, want.URL, got.URL))
		}
	} else {
		// The query as pairs, in any order; the URL without it.
		base, rawQuery, _ := strings.Cut(got.URL, "?")
		rawQuery, _, _ = strings.Cut(rawQuery, "#")
		if want.URL != base {
			ps = append(ps, fmt.Sprintf("%s.url: expected %s (without its query), got %s", at, want.URL, base))
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			ps = append(ps, fmt.Sprintf("%s.query: got a query that does not parse: %v", at, err))
		} else {
			ps = append(ps, comparePairs(at+".query", want.Query, q)...)
		}
	}
	for _, h := range want.Headers {
		v, ok := got.Header(h.Name)
		switch {
		case h.Absent && ok:
			ps = append(ps, fmt.Sprintf("%s.headers.%s: expected absent, got %q", at, h.Name, v))
		case !h.Absent && !ok:
			ps = append(ps, fmt.Sprintf("%s.headers.%s: expected %q, got nothing", at, h.Name, h.Value))
		case !h.Absent && v != h.Value:
			ps = append(ps, fmt.Sprintf("%s.headers.%s: expected %q, got %q", at, h.Name, h.Value, v))
		}
	}
	if want.BodyText != nil && *want.BodyText != string(got.Body) {
		ps = append(ps, fmt.Sprintf("%s.body_text: expected %q, got %q", at, *want.BodyText, got.Body))
	}
	if want.Body != nil {
		var w any
		if err := decode(want.Body, &w); err != nil {
			ps = append(ps, fmt.Sprintf("%s.body: expected body is not JSON: %v", at, err))
			return ps
		}
		// The request's encoding reads what was sent into the form the
		// expected body is compared with.
		enc, ok := encoding.Lookup(got.Encoding())
		if !ok {
			return append(ps, fmt.Sprintf("%s.body: got a body in an unknown encoding %q", at, got.Encoding()))
		}
		g, err := enc.Decode(got.Body)
		if err != nil {
			return append(ps, fmt.Sprintf("%s.body: got a body that is not %s: %v", at, enc.Title(), err))
		}
		if pairs, ok := g.(url.Values); ok {
			wm, isMap := w.(map[string]any)
			if !isMap {
				return append(ps, fmt.Sprintf("%s.body: the body is %s pairs: expect a mapping of names to values", at, enc.Title()))
			}
			return append(ps, comparePairs(at+".body", wm, pairs)...)
		}
		ps = append(ps, Diff(at+".body", w, g)...)
	}
	return ps
}

// comparePairs compares name=value pairs (a form body, a query string) as
// a multiset: every pair sent expected, every expected pair sent, in any
// order. An expected value is text (compared exactly), a number (the
// pair's text must be a decimal number equal to it: 12.5 matches 12.50),
// a boolean, or a list of those (the name repeats).
func comparePairs(at string, want map[string]any, got url.Values) []string {
	var ps []string
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		wv := want[k]
		ws, isList := wv.([]any)
		if !isList {
			ws = []any{wv}
		}
		gs := slices.Clone(got[k])
		var missing []string
		for _, w := range ws {
			i := slices.IndexFunc(gs, func(g string) bool { return pairValueEqual(w, g) })
			if i < 0 {
				missing = append(missing, show(w))
				continue
			}
			gs = slices.Delete(gs, i, i+1)
		}
		switch {
		case len(got[k]) == 0:
			ps = append(ps, fmt.Sprintf("%s.%s: expected %s, got nothing", at, k, show(wv)))
		case len(missing) > 0 || len(gs) > 0:
			ps = append(ps, fmt.Sprintf("%s.%s: expected %s, got %s", at, k, show(wv), showPairValues(got[k])))
		}
	}
	extra := make([]string, 0)
	for k := range got {
		if _, ok := want[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		ps = append(ps, fmt.Sprintf("%s.%s: expected nothing, got %s", at, k, showPairValues(got[k])))
	}
	return ps
}

func pairValueEqual(want any, got string) bool {
	switch w := want.(type) {
	case string:
		return w == got
	case json.Number:
		return plainNumber(got) && sameNumber(w, json.Number(got))
	case bool:
		return strconv.FormatBool(w) == got
	}
	return false
}

// plainNumber reports text written as a JSON number.
func plainNumber(s string) bool {
	var v any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if d.Decode(&v) != nil || d.More() {
		return false
	}
	_, ok := v.(json.Number)
	return ok
}

func showPairValues(vs []string) string {
	if len(vs) == 1 {
		return strconv.Quote(vs[0])
	}
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func decode(b []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

// Diff compares two JSON values (decoded with UseNumber) and describes each
// difference with its path: numbers compare as numbers (2550 equals 2550.0),
// objects by key, arrays by position.
func Diff(at string, want, got any) []string {
	var out []string
	diff(at, want, got, &out)
	return out
}

func diff(at string, want, got any, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: expected an object %s, got %s", at, show(want), show(got)))
			return
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			wv, inW := w[k]
			gv, inG := g[k]
			p := at + "." + k
			switch {
			case !inG:
				*out = append(*out, fmt.Sprintf("%s: missing, expected %s", p, show(wv)))
			case !inW:
				*out = append(*out, fmt.Sprintf("%s: unexpected, got %s", p, show(gv)))
			default:
				diff(p, wv, gv, out)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: expected a list %s, got %s", at, show(want), show(got)))
			return
		}
		for i := 0; i < len(w) || i < len(g); i++ {
			p := fmt.Sprintf("%s[%d]", at, i)
			switch {
			case i >= len(g):
				*out = append(*out, fmt.Sprintf("%s: missing, expected %s", p, show(w[i])))
			case i >= len(w):
				*out = append(*out, fmt.Sprintf("%s: unexpected, got %s", p, show(g[i])))
			default:
				diff(p, w[i], g[i], out)
			}
		}
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || !sameNumber(w, g) {
			*out = append(*out, fmt.Sprintf("%s: expected %s, got %s", at, show(want), show(got)))
		}
	default:
		if !equalScalar(want, got) {
			*out = append(*out, fmt.Sprintf("%s: expected %s, got %s", at, show(want), show(got)))
		}
	}
}

func equalScalar(a, b any) bool {
	switch a := a.(type) {
	case string:
		s, ok := b.(string)
		return ok && a == s
	case bool:
		x, ok := b.(bool)
		return ok && a == x
	case nil:
		return b == nil
	}
	return false
}

func sameNumber(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

func show(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	s := string(b)
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

func sameSet(a, b []string) bool {
	x := slices.Compact(slices.Sorted(slices.Values(a)))
	y := slices.Compact(slices.Sorted(slices.Values(b)))
	return slices.Equal(x, y)
}

func setString(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	return "[" + strings.Join(slices.Sorted(slices.Values(s)), ", ") + "]"
}

// caseNow is a case's clock: its now, else the file's, else the event's
// timestamp (RFC 3339), else DefaultNow.
func caseNow(f *File, c *Case) time.Time {
	switch {
	case !c.Now.IsZero():
		return c.Now
	case !f.Now.IsZero():
		return f.Now
	}
	if ts := gjson.GetBytes(c.Event, "timestamp"); ts.Type == gjson.String {
		if t, err := time.Parse(time.RFC3339Nano, ts.Str); err == nil {
			return t
		}
	}
	return DefaultNow
}
