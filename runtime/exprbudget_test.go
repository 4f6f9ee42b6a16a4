package runtime_test

// Expression budgets (issue #11, finding 8): an expression that would
// build or do without bound is refused, at compile time when it provably
// exceeds the budget, else at run time, naming its field, quickly and in
// little memory.
//
// The regressions run their evaluation in a child process (this test
// binary, run again for one test) with a time limit and a heap watchdog:
// before the budget, they allocated gigabytes (fatal error: out of memory)
// or ran for tens of seconds, and that must fail the test, not kill the
// test binary.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

const (
	budgetChildEnv = "BLUEPRINT_EXPRBUDGET_CHILD"
	// budgetChildHeap is the heap past which the child gives up: the
	// budget lets one event build 8 MiB.
	budgetChildHeap = 512 << 20
	// budgetChildTime is how long the child may run (before the budget,
	// the reduce of the finding took 11 to 23 s).
	budgetChildTime = 20 * time.Second
)

// budgetEvalTime is how long one evaluation may take: generous, for a
// loaded machine and the race detector (it takes milliseconds).
var budgetEvalTime = map[bool]time.Duration{false: 3 * time.Second, true: 15 * time.Second}[raceEnabled]

// budgetOutcome is what the child reports of one evaluation.
type budgetOutcome struct {
	Outcome, Reason, Message string
	Fields                   []string
	Millis                   int64
	Bytes                    int64
	Err                      string // the blueprint does not compile
}

// runBudgetChild evaluates event against the blueprint src in a child
// process and returns what it reported. The child stops itself when its
// heap passes budgetChildHeap, and is killed after budgetChildTime: either
// fails the test.
func runBudgetChild(t *testing.T, src string, event []byte) budgetOutcome {
	t.Helper()
	if os.Getenv(budgetChildEnv) == t.Name() {
		budgetChild(src, event) // never returns
	}
	ctx, cancel := context.WithTimeout(context.Background(), budgetChildTime)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), budgetChildEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(line, "BUDGET-RESULT "); ok {
			var o budgetOutcome
			if err := json.Unmarshal([]byte(j), &o); err != nil {
				t.Fatalf("child output %q: %v", j, err)
			}
			if o.Err != "" {
				t.Fatalf("the blueprint does not compile: %s", o.Err)
			}
			return o
		}
	}
	tail := string(out)
	if len(tail) > 2000 {
		tail = "..." + tail[len(tail)-2000:]
	}
	if ctx.Err() != nil {
		t.Fatalf("the evaluation did not end within %v (killed)\n%s", budgetChildTime, tail)
	}
	t.Fatalf("the evaluation did not end well (%v)\n%s", err, tail)
	return budgetOutcome{}
}

// budgetChild is the child's side: evaluate, report, exit.
func budgetChild(src string, event []byte) {
	debug.SetMemoryLimit(budgetChildHeap / 2)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if n := s[0].Value.Uint64(); n > budgetChildHeap {
				fmt.Printf("BUDGET-ABORT the heap holds %d MiB, over %d MiB\n", n>>20, budgetChildHeap>>20)
				os.Exit(3)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var o budgetOutcome
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		o.Err = fmt.Sprint(ds)
	} else if in, err := runtime.Bind(bp, "", nil); err != nil {
		o.Err = err.Error()
	} else {
		start := time.Now()
		res := in.Evaluate(event)
		o.Millis = time.Since(start).Milliseconds()
		o.Outcome, o.Reason, o.Message, o.Fields = string(res.Outcome), res.Reason, res.Message, res.Fields
		for _, r := range res.Requests {
			o.Bytes += int64(len(r.Body))
		}
	}
	b, _ := json.Marshal(o)
	fmt.Printf("BUDGET-RESULT %s\n", b)
	os.Exit(0)
}

func nestedReplace(n int, inner, old, new string) string {
	s := inner
	for range n {
		s = "replace(" + s + ", " + old + ", " + new + ")"
	}
	return s
}

const budgetText100 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzAB"

// expectCompileBudget compiles src and wants one expr_budget error at
// line:col.
func expectCompileBudget(t *testing.T, src string, line, col int, msg string) {
	t.Helper()
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp != nil {
		t.Fatalf("compiled: evaluating it would build without bound (want expr_budget at %d:%d)", line, col)
	}
	want := fmt.Sprintf("demo.yaml:%d:%d: error expr_budget: ", line, col)
	if got := fmt.Sprint(ds); !strings.Contains(got, want) || !strings.Contains(got, msg) {
		t.Fatalf("got\n%s\nwant %s...%s", got, want, msg)
	}
}

// The filter of the finding: replace(…, "a", "aaaaaaaaaa") nested nine
// times over event data passed validate, then eval died (fatal error: out
// of memory on an event holding "a"). It is now refused where the
// replacements pass the budget.
func TestExprBudgetNestedReplaceFilter(t *testing.T) {
	filter := "len(" + nestedReplace(9, "event.properties.x", `"a"`, `"aaaaaaaaaa"`) + ") > 0"
	src := demoHead + `      x: {from: properties.x}
events:
  E:
    vendor_event: e
    request: r
    filter: '` + filter + `'
`
	// The seventh replace from the inside turns "a" into 10^7 bytes, over
	// 8 MiB: it is the third call written, at column 14 + 4 + 2*8.
	expectCompileBudget(t, src, 17, 34, `these replace calls turn each "a" of their input into at least 11111110 bytes, over the budget of 8388608 bytes per event`)
}

// The same nesting, with the pattern and replacement read from the event:
// nothing to prove at compile time, and the budget refuses it at run time
// before building past it. A filter that cannot be evaluated skips the
// event (filtered), saying why.
func TestExprBudgetNestedReplaceFilterRuntime(t *testing.T) {
	p := "event.properties.p"
	r := "event.properties.r"
	filter := "len(" + nestedReplace(9, "event.properties.x", p, r) + ") > 0"
	src := demoHead + `      x: {from: properties.x}
events:
  E:
    vendor_event: e
    request: r
    filter: '` + filter + `'
`
	o := runBudgetChild(t, src, []byte(`{"type":"track","event":"E","properties":{"x":"a","p":"a","r":"aaaaaaaaaa"}}`))
	if o.Outcome != "skip" || o.Reason != "filtered" || !strings.Contains(o.Message, "expression exceeded its budget of 8388608 bytes") {
		t.Errorf("got %s %s %q", o.Outcome, o.Reason, o.Message)
	}
	if o.Millis > budgetEvalTime.Milliseconds() {
		t.Errorf("took %d ms", o.Millis)
	}
}

// The finding's event-driven case: three nested replace calls over a 900
// KB order_id reached a gigabyte (8 GB of RSS, 54 s). The field is now
// invalid, named, as soon as the first replacement would pass the budget.
func TestExprBudgetReplaceOver900KBOrderID(t *testing.T) {
	src := demoHead + `      order_id: {expr: '` + nestedReplace(3, "event.properties.order_id", `"a"`, `"aaaaaaaaaa"`) + `', required: true}
events:
  E: {vendor_event: e, request: r}
`
	ev := []byte(`{"type":"track","event":"E","properties":{"order_id":"` + strings.Repeat("a", 900_000) + `"}}`)
	o := runBudgetChild(t, src, ev)
	if o.Outcome != "reject" || o.Reason != "invalid_field" || len(o.Fields) != 1 || o.Fields[0] != "order_id" ||
		o.Message != "order_id: expression exceeded its budget of 8388608 bytes" {
		t.Errorf("got %s %s %v %q", o.Outcome, o.Reason, o.Fields, o.Message)
	}
	if o.Millis > budgetEvalTime.Milliseconds() {
		t.Errorf("took %d ms", o.Millis)
	}
	// An order_id the replacements keep small is delivered.
	small := bindInline(t, src)
	if res := small.Evaluate([]byte(`{"type":"track","event":"E","properties":{"order_id":"o-1a"}}`)); res.Outcome != runtime.Deliver ||
		!strings.Contains(string(res.Requests[0].Body), `"o-1`+strings.Repeat("a", 1000)+`"`) {
		t.Errorf("a small order_id: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
}

// The finding's reduce over 1..20000 concatenating 100 characters took
// 11.5 s per event (copying the text it grows at every element: 20 GB).
// The constant range proves it: refused at compile time, at the reduce.
func TestExprBudgetReduceConstantRange(t *testing.T) {
	src := demoHead + `      s: {expr: 'reduce(1..20000, #acc + "` + budgetText100 + `", "")'}
events:
  E: {vendor_event: e, request: r}
`
	expectCompileBudget(t, src, 12, 18, "reduce over 20000 elements grows its text by at least 100 bytes at each of them, and copies it each time: at least 8425500 bytes built, over the budget of 8388608 bytes per event")
}

// The same reduce with its range read from the event: the runtime budget
// stops it after a few hundred elements, in milliseconds.
func TestExprBudgetReduceDynamicRange(t *testing.T) {
	src := demoHead + `      s: {expr: 'reduce(1..(event.properties.n ?? 0), #acc + "` + budgetText100 + `", "")'}
events:
  E: {vendor_event: e, request: r}
`
	o := runBudgetChild(t, src, []byte(`{"type":"track","event":"E","properties":{"n":20000}}`))
	if o.Outcome != "reject" || o.Reason != "invalid_field" || len(o.Fields) != 1 || o.Fields[0] != "s" ||
		o.Message != "s: expression exceeded its budget of 8388608 bytes" {
		t.Errorf("got %s %s %v %q", o.Outcome, o.Reason, o.Fields, o.Message)
	}
	if o.Millis > budgetEvalTime.Milliseconds() {
		t.Errorf("took %d ms", o.Millis)
	}
	// Within the budget, the same expression works.
	in := bindInline(t, src)
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"n":3}}`))
	if res.Outcome != runtime.Deliver || string(res.Requests[0].Body) != `{"s":"`+strings.Repeat(budgetText100, 3)+`"}` {
		t.Errorf("n = 3: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
}

// A regular expression whose pattern is read from the event runs in time
// of the text times the pattern's program: matches, regex_find and
// regex_replace with a pattern of 60 000 bytes over a text of 60 000 took
// 3 to 14 s per event (quadratic: a 500 KB event, over 15 minutes), all
// charged as if the pattern were a literal. The pattern is now charged for
// its program, times the text, before it is compiled or run.
func TestExprBudgetPatternFromEvent(t *testing.T) {
	n := 60_000
	ev := []byte(`{"type":"track","event":"E","properties":{"s":"` + strings.Repeat("a", n) +
		`","p":"` + strings.Repeat("a", n-1) + `b"}}`)
	for _, tt := range []struct{ name, expr string }{
		{"matches", `event.properties.s matches event.properties.p`},
		{"regex_find", `regex_find(event.properties.s, event.properties.p)`},
		{"regex_replace", `regex_replace(event.properties.s, event.properties.p, "x")`},
		// A short pattern compiling to a large program.
		{"short pattern", `event.properties.s matches (event.properties.p == "" ? "" : "\\pL{1000}b")`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src := demoHead + "      x: {expr: '" + tt.expr + "'}\nevents:\n  E: {vendor_event: e, request: r}\n"
			o := runBudgetChild(t, src, ev)
			if o.Outcome != "reject" || o.Reason != "invalid_field" || len(o.Fields) != 1 || o.Fields[0] != "x" ||
				o.Message != "x: expression exceeded its budget of 1000000 steps" {
				t.Errorf("got %s %s %v %q", o.Outcome, o.Reason, o.Fields, o.Message)
			}
			if o.Millis > budgetEvalTime.Milliseconds() {
				t.Errorf("took %d ms", o.Millis)
			}
			// A pattern from the event over a short text still works.
			in := bindInline(t, src)
			res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"s":"ab-12","p":"[a-z]+-[0-9]+"}}`))
			if res.Outcome != runtime.Deliver {
				t.Errorf("a short text: %s %s %q", res.Outcome, res.Reason, res.Message)
			}
		})
	}
}

// budgetFuzzBlueprint reads event data with the operations the budget
// bounds: replace chains, a reduce over a range read from the event,
// join, toJSON, nested loops, case changes, split.
const budgetFuzzBlueprint = demoHead + `      a: {expr: 'replace(replace(replace(event.properties.s ?? "", event.properties.p ?? "a", event.properties.r ?? "b"), "a", "aaaaaaaaaa"), "a", "aaaaaaaaaa")'}
      b: {expr: 'reduce(1..(event.properties.n ?? 0), #acc + (event.properties.s ?? ""), "")'}
      c: {expr: 'join(map(event.properties.list ?? [], string(#)), event.properties.sep ?? ",")'}
      d: {expr: 'toJSON(event.properties)'}
      e: {expr: 'count(event.properties.list ?? [], count(event.properties.list ?? [], # == event.properties.s) > 0)'}
      f: {expr: 'upper(event.properties.s ?? "") + lower(event.properties.s ?? "")'}
      g: {expr: 'split(event.properties.s ?? "", event.properties.sep ?? "")'}
events:
  E:
    vendor_event: e
    request: r
    filter: 'len(replace(event.properties.s ?? "", "x", "xx")) >= 0'
`

// FuzzExprBudget: whatever the event, expressions that build and loop on
// its data end quickly, in bounded memory, with a well-formed result.
// Seeds: the finding's cases (issue #11, finding 8).
//
//	go test ./runtime -run '^$' -fuzz FuzzExprBudget -fuzztime 60s
func FuzzExprBudget(f *testing.F) {
	for _, s := range []string{
		`{"type":"track","event":"E","properties":{"s":"a","p":"a","r":"aaaaaaaaaa"}}`,
		`{"type":"track","event":"E","properties":{"s":"` + strings.Repeat("a", 900_000) + `"}}`,
		`{"type":"track","event":"E","properties":{"n":20000,"s":"` + budgetText100 + `"}}`,
		`{"type":"track","event":"E","properties":{"list":[` + strings.Repeat(`"x",`, 50_000) + `"x"],"s":"x","sep":"` + budgetText100 + `"}}`,
		`{"type":"track","event":"E","properties":{"s":"İ ſ ǅ ⱥ","p":"","r":"aa","sep":""}}`,
		`{"type":"track","event":"E","properties":{"n":-9223372036854775807,"s":"x"}}`,
		`{"type":"track","event":"E","properties":{"s":"ok"}}`,
	} {
		f.Add([]byte(s))
	}
	bp, ds := engine.Compile("demo.yaml", []byte(budgetFuzzBlueprint))
	if bp == nil {
		f.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		start := time.Now()
		res := in.Evaluate(event)
		if took := time.Since(start); took > budgetEvalTime {
			t.Errorf("took %v", took)
		}
		switch res.Outcome {
		case runtime.Deliver, runtime.Skip, runtime.Reject:
		default:
			t.Errorf("outcome %q", res.Outcome)
		}
		if strings.Contains(res.Message, "internal error") {
			t.Errorf("Evaluate recovered from a panic: %s", res.Message)
		}
		if res.Outcome == runtime.Reject && res.Reason == runtime.ReasonInvalidField && len(res.Fields) == 0 {
			t.Errorf("invalid_field names no field: %s", res.Message)
		}
		for _, r := range res.Requests {
			if len(r.Body) > 4*runtime.DefaultExprBytes {
				t.Errorf("a body of %d bytes", len(r.Body))
			}
		}
	})
}

// The budget is shared by one event's expressions, reset for the next
// event, set by WithExprBudget; a refused operation uses none of it.
func TestExprBudgetPerEvent(t *testing.T) {
	src := demoHead + `      a: {expr: 'replace(event.properties.s ?? "", "a", event.properties.ra ?? "")'}
      b: {expr: 'replace(event.properties.s ?? "", "a", event.properties.rb ?? "")'}
events:
  E: {vendor_event: e, request: r}
`
	s := strings.Repeat("a", 1000)
	five := strings.Repeat("x", 5000) // 1000 x 5000 = 5 MB per field
	ev := func(ra, rb string) []byte {
		return []byte(`{"type":"track","event":"E","properties":{"s":"` + s + `","ra":"` + ra + `","rb":"` + rb + `"}}`)
	}
	in := bindInline(t, src)
	// Each field alone fits; both do not: the second is named.
	if res := in.Evaluate(ev(five, "")); res.Outcome != runtime.Deliver {
		t.Errorf("one field of 5 MB: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
	res := in.Evaluate(ev(five, five))
	if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || len(res.Fields) != 1 || res.Fields[0] != "b" ||
		res.Message != "b: expression exceeded its budget of 8388608 bytes" {
		t.Errorf("two fields of 5 MB: %s %s %v %q", res.Outcome, res.Reason, res.Fields, res.Message)
	}
	// The next event has a whole budget again.
	if res := in.Evaluate(ev("", five)); res.Outcome != runtime.Deliver {
		t.Errorf("the next event: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
	// A refused replacement (10 MB) uses nothing: the other field builds
	// its 5 MB.
	ten := five + five
	res = in.Evaluate(ev(ten, five))
	if res.Outcome != runtime.Reject || len(res.Fields) != 1 || res.Fields[0] != "a" {
		t.Errorf("10 MB then 5 MB: %s %s %v %q", res.Outcome, res.Reason, res.Fields, res.Message)
	}
	// A smaller budget, set at Bind.
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	small, err := runtime.Bind(bp, "", nil, runtime.WithExprBudget(1<<20, 100))
	if err != nil {
		t.Fatal(err)
	}
	res = small.Evaluate(ev(five, ""))
	if res.Outcome != runtime.Reject || res.Message != "a: expression exceeded its budget of 1048576 bytes" {
		t.Errorf("a budget of 1 MiB: %s %s %v %q", res.Outcome, res.Reason, res.Fields, res.Message)
	}
	loops := demoHead + `      n: {expr: 'count(1..(event.properties.n ?? 0), # > 0)'}
events:
  E: {vendor_event: e, request: r}
`
	bp, ds = engine.Compile("demo.yaml", []byte(loops))
	if bp == nil {
		t.Fatal(ds)
	}
	small, err = runtime.Bind(bp, "", nil, runtime.WithExprBudget(0, 1000))
	if err != nil {
		t.Fatal(err)
	}
	if res := small.Evaluate([]byte(`{"type":"track","event":"E","properties":{"n":100}}`)); res.Outcome != runtime.Deliver {
		t.Errorf("100 elements: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
	if res := small.Evaluate([]byte(`{"type":"track","event":"E","properties":{"n":1000}}`)); res.Message != "n: expression exceeded its budget of 1000 steps" {
		t.Errorf("1000 elements with 1000 steps: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
}

// An expression in the items of a list reads a long text of the event at
// every item: each run copies it, and the copies are counted, so a
// hundred thousand items do not copy a megabyte each (100 GB).
func TestExprBudgetItemsReadingTheEvent(t *testing.T) {
	src := demoHead + `      lines:
        from: properties.items
        type: array
        items:
          note: {expr: 'len(event.properties.note ?? "")'}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	note := strings.Repeat("n", 400_000)
	ev := []byte(`{"type":"track","event":"E","properties":{"note":"` + note + `","items":[` + strings.Repeat(`{},`, 100_000) + `{}]}}`)
	start := time.Now()
	res := in.Evaluate(ev)
	if took := time.Since(start); took > budgetEvalTime {
		t.Errorf("took %v", took)
	}
	if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidField || !strings.Contains(res.Message, "expression exceeded its budget of 8388608 bytes") {
		t.Errorf("got %s %s %.200q", res.Outcome, res.Reason, res.Message)
	}
	// The first items fit: 20 copies of 400 KB are 8 MB.
	if len(res.Fields) == 0 || res.Fields[0] != "lines[20].note" {
		t.Errorf("the first item over budget: %.100v", res.Fields)
	}
	few := []byte(`{"type":"track","event":"E","properties":{"note":"` + note + `","items":[{},{}]}}`)
	if res := in.Evaluate(few); res.Outcome != runtime.Deliver || string(res.Requests[0].Body) != `{"lines":[{"note":400000},{"note":400000}]}` {
		t.Errorf("two items: %s %s %q", res.Outcome, res.Reason, res.Message)
	}
}
