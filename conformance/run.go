package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/encoding"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Runner runs vector files against blueprints from a catalog.
type Runner struct {
	Catalog *engine.Catalog
	// Options are passed to runtime.Bind.
	Options []runtime.Option
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
	in, err := runtime.Bind(bp, variant, config, r.Options...)
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
	if want.URL != got.URL {
		ps = append(ps, fmt.Sprintf("%s.url: expected %s, got %s", at, want.URL, got.URL))
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
		ps = append(ps, Diff(at+".body", w, g)...)
	}
	return ps
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
