package conformance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/boundtest"
	"github.com/blueprint-engine/blueprint/internal/syntax"
	"github.com/blueprint-engine/blueprint/runtime"
)

const vectorHead = "blueprint: button\nconfig: {application_id: app-abc123def456, api_key: sk-test-123}\ncases:\n"

// unmapped is a case whose event (given as "event: E" or "event_json: E")
// is a valid track event nobody maps: it is skipped once read, or rejected
// when the event itself is refused.
func unmapped(name, event, outcome, reason string) string {
	return fmt.Sprintf("- name: %s\n  %s\n  expect: {outcome: %s, reason: %s}\n", name, event, outcome, reason)
}

// nestedJSON is a track event nesting depth levels (objects and arrays,
// the event itself counted).
func nestedJSON(depth int) string {
	return `{"type":"track","event":"Unmapped","deep":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
}

// A vector file is at most 16 MiB: exactly that is read, one byte more is
// refused, and a huge file on disk is refused without being read whole.
func TestVectorFileSize(t *testing.T) {
	ok := vectorHead + unmapped("ok", "event: {type: track, event: Unmapped}", "skip", "event_not_mapped")
	pad := func(n int) string {
		line := "# " + strings.Repeat("x", 77) + "\n"
		var b strings.Builder
		b.WriteString(ok)
		for b.Len()+len(line) <= n {
			b.WriteString(line)
		}
		b.WriteString(strings.Repeat("#", n-b.Len()))
		return b.String()
	}
	at := pad(syntax.MaxVectorFileSize)
	if f, ds := conformance.Parse("at.yaml", []byte(at), nil); f == nil || len(ds) != 0 {
		t.Errorf("a file of exactly %d bytes: %v", len(at), ds)
	}
	past := pad(syntax.MaxVectorFileSize + 1)
	want := fmt.Sprintf("past.yaml:1:1: error file_too_large: file is %d bytes; the limit is %d bytes (16 MiB)", len(past), syntax.MaxVectorFileSize)
	if f, ds := conformance.Parse("past.yaml", []byte(past), nil); f != nil || len(ds) != 1 || ds[0].String() != want {
		t.Errorf("a file of %d bytes: %v\nwant %s", len(past), ds, want)
	}

	// On disk: exactly the limit loads; a 1 GiB file is refused after
	// reading 16 MiB of it (the test has 256 MiB).
	dir := t.TempDir()
	atPath := filepath.Join(dir, "at.vectors.yaml")
	if err := os.WriteFile(atPath, []byte(at), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, ds := conformance.LoadFile(atPath); f == nil || len(ds) != 0 {
		t.Errorf("LoadFile of exactly %d bytes: %v", len(at), ds)
	}
	huge := filepath.Join(dir, "huge.vectors.yaml")
	if err := os.WriteFile(huge, []byte(ok), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 1<<30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
		want := fmt.Sprintf("%s:1:1: error file_too_large: file is %d bytes; the limit is %d bytes (16 MiB)", huge, 1<<30, syntax.MaxVectorFileSize)
		if f, ds := conformance.LoadFile(huge); f != nil || len(ds) != 1 || ds[0].String() != want {
			t.Errorf("LoadFile of 1 GiB: %v\nwant %s", ds, want)
		}
	})
}

// A vector file nests at most 64 levels, as a blueprint: an event written
// in YAML under cases[].event starts at level 4 (file, cases, case,
// event), so it can nest 61 levels; event_json takes events as deep as the
// runtime does.
func TestVectorFileDepth(t *testing.T) {
	event := func(depth int) string { // YAML flow, depth levels
		return "event: {type: track, event: Unmapped, deep: " + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
	}
	at := vectorHead + unmapped("deepest event in YAML", event(syntax.MaxDepth-3), "skip", "event_not_mapped")
	f, ds := conformance.Parse("at.yaml", []byte(at), nil)
	if f == nil || len(ds) != 0 {
		t.Fatalf("an event nesting %d levels in a vector file: %v", syntax.MaxDepth-3, ds)
	}
	if got, want := string(f.Cases[0].Event), nestedJSON(syntax.MaxDepth-3); got != want {
		t.Errorf("the event as JSON:\n%s\nwant\n%s", got, want)
	}
	runAll(t, f)

	past := vectorHead + unmapped("one level more", event(syntax.MaxDepth-2), "skip", "event_not_mapped")
	want := fmt.Sprintf("past.yaml:5:%d: error too_deep: nesting is deeper than 64 levels", len("  event: {type: track, event: Unmapped, deep: ")+syntax.MaxDepth-3)
	if f, ds := conformance.Parse("past.yaml", []byte(past), nil); f != nil || len(ds) != 1 || !strings.HasPrefix(ds[0].String(), want) {
		t.Errorf("diagnostics: %v\nwant %s", ds, want)
	}
}

// Finding 7 of issue #11: a 200 KB vector file nesting 100,000 deep ran
// out of memory under 4 GB (goccy placing yaml.v3's error). It is refused
// at once.
func TestVectorFileDeepRefusedBeforeParsing(t *testing.T) {
	src := vectorHead + "- name: deep\n  event: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + "\n  expect: {outcome: skip, reason: event_not_mapped}\n"
	boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
		f, ds := conformance.Parse("deep.vectors.yaml", []byte(src), nil)
		if f != nil || len(ds) != 1 || ds[0].Code != "too_deep" || ds[0].Line != 5 {
			t.Errorf("diagnostics: %v", ds)
		}
	})
}

// event_json is given to the runtime as it is: its limits are the
// runtime's, depth 64 and the event size (1 MiB by default).
func TestVectorEventJSONLimits(t *testing.T) {
	quote := func(s string) string { return "event_json: '" + s + "'" }
	src := vectorHead +
		unmapped("at the depth limit", quote(nestedJSON(runtime.DefaultMaxDepth)), "skip", "event_not_mapped") +
		unmapped("one level more", quote(nestedJSON(runtime.DefaultMaxDepth+1)), "reject", "invalid_event")
	f, ds := conformance.Parse("v.yaml", []byte(src), nil)
	if f == nil || ds.HasErrors() {
		t.Fatal(ds)
	}
	res := runAll(t, f)
	if m := res[1].Got.Message; m != "event nests deeper than 64 levels (the limit)" {
		t.Errorf("message: %q", m)
	}

	// Size, with a small limit so that the file stays small.
	ev := `{"type":"track","event":"Unmapped"}`
	src = vectorHead +
		unmapped("at the size limit", quote(ev), "skip", "event_not_mapped") +
		unmapped("one byte more", quote(ev+" "), "reject", "invalid_event")
	f, ds = conformance.Parse("v.yaml", []byte(src), nil)
	if f == nil || ds.HasErrors() {
		t.Fatal(ds)
	}
	res = runAll(t, f, runtime.WithMaxEventSize(len(ev)))
	if m, want := res[1].Got.Message, fmt.Sprintf("event is %d bytes; the limit is %d", len(ev)+1, len(ev)); m != want {
		t.Errorf("message: %q, want %q", m, want)
	}
}

// The runtime's default event size limit (1 MiB, button-0.1.0.md: events
// over it are invalid_event) can be tested by a vector file as shipped: an
// event of 1 MiB and one byte, as event_json or as event, makes the file
// larger than 1 MiB, and the file is still read.
func TestVectorDefaultEventSizeLimit(t *testing.T) {
	ev := func(n int) string {
		head := `{"type":"track","event":"Unmapped","pad":"`
		return head + strings.Repeat("a", n-len(head)-2) + `"}`
	}
	at, past := ev(runtime.DefaultMaxEventSize), ev(runtime.DefaultMaxEventSize+1)
	src := vectorHead +
		unmapped("at the default limit", "event_json: '"+at+"'", "skip", "event_not_mapped") +
		unmapped("one byte more", "event_json: '"+past+"'", "reject", "invalid_event") +
		unmapped("one byte more, as event", "event: "+past, "reject", "invalid_event")
	dir := t.TempDir()
	p := filepath.Join(dir, "size.vectors.yaml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	f, ds := conformance.LoadFile(p)
	if f == nil || ds.HasErrors() {
		t.Fatal(ds)
	}
	runAll(t, f)
}

// runAll runs every case of f against the embedded catalog and fails t
// for each case that does not pass.
func runAll(t *testing.T, f *conformance.File, opts ...runtime.Option) []conformance.CaseResult {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	r := &conformance.Runner{Catalog: cat, Options: opts}
	res := r.Run(f, nil)
	for _, cr := range res {
		if !cr.Passed() {
			t.Errorf("%s: %s", cr.Case.Name, strings.Join(cr.Problems, "; "))
		}
	}
	return res
}

// The blueprint_file a vector file names is read as a blueprint: a 1 GiB
// file is refused without being read whole.
func TestVectorBlueprintFileSize(t *testing.T) {
	dir := t.TempDir()
	bp := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(bp, []byte("extends: button@0.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(bp, 1<<30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	vf := filepath.Join(dir, "big.vectors.yaml")
	src := "blueprint_file: big.yaml\nconfig: {application_id: app-abc123def456, api_key: sk-test-123}\ncases:\n" +
		unmapped("x", "event: {type: track, event: Unmapped}", "skip", "event_not_mapped")
	if err := os.WriteFile(vf, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
		f, ds := conformance.LoadFile(vf)
		if f == nil {
			t.Fatal(ds)
		}
		cat, err := engine.NewCatalog(blueprints.FS)
		if err != nil {
			t.Fatal(err)
		}
		_, err = (&conformance.Runner{Catalog: cat}).Blueprint(f)
		if want := fmt.Sprintf("error file_too_large: file is %d bytes", 1<<30); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error: %v\nwant it to hold %q", err, want)
		}
	})
}

// DESIGN §4: a vector file is YAML, anchors, aliases and merge keys
// included (a case often reuses an event): they are expanded, and the
// cases run on the expanded values.
func TestVectorAnchorsAndAliases(t *testing.T) {
	src := `blueprint: button
config: &cfg {application_id: app-abc123def456, api_key: sk-test-123}
cases:
- name: base order
  event: &order
    type: track
    event: Order Completed
    timestamp: '2026-11-24T10:15:30Z'
    context: {consent: {advertising: true}}
    properties: &props {order_id: o, total: 1, currency: USD, products: [{product_id: p, price: 1}]}
  expect: &delivered {outcome: deliver, requests: [{method: POST, url: 'https://api.usebutton.com/v1/order'}]}
- name: the same event through an alias
  config: *cfg
  event: *order
  expect: *delivered
- name: a merge key, its own consent winning
  event: {<<: *order, context: {consent: {advertising: false}}}
  expect: {outcome: skip, reason: consent_denied}
- name: merged properties with a bad currency
  event: {<<: *order, properties: {<<: *props, currency: XX}}
  expect: {outcome: reject, reason: invalid_field, fields: [currency]}
`
	f, ds := conformance.Parse("anchors.yaml", []byte(src), nil)
	if f == nil || ds.HasErrors() {
		t.Fatal(ds)
	}
	if res := runAll(t, f); len(res) != 4 {
		t.Errorf("%d cases ran, want 4", len(res))
	}
}
