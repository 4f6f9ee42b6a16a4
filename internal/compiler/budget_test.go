package compiler

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	exprcompiler "github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// compileBudgetTest compiles text as compileExpr does (same options, same
// passes), with or without the budget rewrite. Variables: n (int) and str
// (string) are typed, as config values are; the others are of unknown
// type, as event values are.
func compileBudgetTest(t *testing.T, text string, patch bool) *vm.Program {
	t.Helper()
	prog, err := compileBudgetExpr(text, patch)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	return prog
}

func compileBudgetExpr(text string, patch bool) (prog *vm.Program, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	cfg := conf.CreateNew()
	for _, op := range exprOptions {
		op(cfg)
	}
	expr.AllowUndefinedVariables()(cfg)
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.MaxNodes = 2000
	tree, err := parser.ParseWithConfig(text, cfg)
	if err != nil {
		return nil, err
	}
	// As the rewriter does: only known functions are called.
	var unknown []string
	ast.Find(tree.Node, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallNode); ok {
			if id, ok := c.Callee.(*ast.IdentifierNode); ok && !knownFunction(id.Value) {
				unknown = append(unknown, c.Callee.String())
			}
		}
		return false
	})
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown functions %v", unknown)
	}
	cfg.WithEnv(map[string]any{"n": 0, "str": ""})
	cfg.Strict = false
	if _, err := new(checker.Checker).Check(tree, cfg); err != nil {
		return nil, err
	}
	if _, err := new(checker.Checker).PatchAndCheck(tree, cfg); err != nil {
		return nil, err
	}
	if patch {
		budgetPatch(&tree.Node, cfg, loopWeights(tree.Node), foldedNodes(tree.Node))
	}
	if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
		return nil, err
	}
	return exprcompiler.Compile(tree, cfg)
}

var budgetLocRE = regexp.MustCompile(` \(\d+:\d+\)$`)

func firstLine(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return budgetLocRE.ReplaceAllString(strings.TrimSpace(msg), "")
}

// The budget rewrite changes nothing but the budget: every rewritten
// operation gives what expr-lang gives, the same value or the same error,
// on texts, numbers, nil, lists and maps.
func TestBudgetPatchKeepsSemantics(t *testing.T) {
	for _, text := range budgetExprs {
		plain := compileBudgetTest(t, text, false)
		patched := compileBudgetTest(t, text, true)
		for i, env := range budgetEnvs {
			if msg := budgetCompare(plain, patched, env); msg != "" {
				t.Errorf("%s, env %d:\n%s", text, i, msg)
			}
		}
	}
}

// budgetCompare runs both programs on env and describes any difference;
// a run over the budget is not compared (the plain one could take long).
func budgetCompare(plain, patched *vm.Program, env map[string]any) string {
	e := map[string]any{BudgetVar: budgetForTest()}
	for k, v := range env {
		e[k] = v
	}
	got, gotErr := vm.Run(patched, e)
	var be *BudgetError
	if errors.As(gotErr, &be) {
		return ""
	}
	want, wantErr := vm.Run(plain, env)
	// Equal, or printed the same (NaN, a method value).
	same := reflect.DeepEqual(got, want) || fmt.Sprintf("%#v", got) == fmt.Sprintf("%#v", want)
	if firstLine(gotErr) != firstLine(wantErr) || !same {
		return fmt.Sprintf(" got  %#v, %v\n want %#v, %v", got, gotErr, want, wantErr)
	}
	return ""
}

// FuzzBudgetPatch: for any expression that compiles, the budget rewrite
// changes nothing but the budget (see TestBudgetPatchKeepsSemantics).
//
//	go test ./internal/compiler -run '^$' -fuzz FuzzBudgetPatch -fuzztime 60s
func FuzzBudgetPatch(f *testing.F) {
	for _, e := range budgetExprs {
		f.Add(e)
	}
	f.Fuzz(func(t *testing.T, text string) {
		plain, err := compileBudgetExpr(text, false)
		if err != nil {
			return
		}
		patched, err := compileBudgetExpr(text, true)
		if err != nil {
			t.Fatalf("%s compiles, and not with the budget: %v", text, err)
		}
		for i, env := range budgetEnvs {
			if msg := budgetCompare(plain, patched, env); msg != "" {
				t.Errorf("%s, env %d:\n%s", text, i, msg)
			}
		}
	})
}

var (
	budgetExprs = []string{
		`a + b`, `s + "x"`, `str + s`, `str + str`, `n + n`, `a + 1`, `a..b`, `1..n`,
		`a == b`, `a != b`, `a < b`, `a >= b`, `a > b`, `a <= b`, `s == a`, `str == s`, `s == "lit"`, `arr == arr`,
		`s contains "x"`, `s contains a`, `s startsWith a`, `s endsWith a`, `not (s contains a)`,
		`s matches "^b"`, `s matches a`, `a in arr`, `a in m`, `s in m`, `a in 1..3`, `n in 1..3`, `n in 1..n`, `sum(1..4)`, `sum(1..4, # * 2)`, `s in ["a", "banana"]`, `a in ["", "x"]`, `n in [1, 3]`,
		`upper(s)`, `lower(s)`, `trim(s)`, `trim(s, "a")`, `trim(s, str)`, `sortBy(arr, #, "desc")`, `trimPrefix(s, "b")`, `trimSuffix(s)`,
		`split(s, ",")`, `split(s, "")`, `split(s, a, 2)`, `splitAfter(s, "a")`,
		`replace(s, "a", "bb")`, `replace(s, a, b)`, `replace(s, "a", "", 1)`, `replace(s, "", "-")`,
		`join(arr, ",")`, `join(arr)`, `toJSON(arr)`, `toJSON(m)`, `toJSON(s)`, `fromJSON(s)`,
		`toBase64(s)`, `fromBase64(s)`, `string(arr)`, `string(m)`, `string(s)`, `string(a)`,
		`len(s)`, `len(arr)`, `len(m)`, `sort(keys(m))`, `sort(values(m))`, `sort(arr)`, `reverse(arr)`, `uniq(arr)`,
		`concat(arr, arr)`, `flatten([arr, arr])`, `max(arr)`, `min(arr)`, `mean(arr)`, `median(arr)`,
		`map(arr, # + 1)`, `filter(arr, # > 1)`, `reduce(arr, #acc + #, 0)`, `reduce(1..5, #acc + "x", "")`,
		`count(arr, # > 0)`, `all(arr, # > 0)`, `any(arr, # == a)`, `sum(arr)`, `sortBy(arr, #)`, `groupBy(arr, # == a)`,
		`find(arr, # == a)`, `findIndex(arr, # == a)`, `one(arr, # == a)`, `none(arr, # == a)`,
		`m[s]`, `m[a]`, `arr[0]`, `int(s)`, `float(s)`, `indexOf(s, a)`, `lastIndexOf(s, "a")`, `hasPrefix(s, a)`, `hasSuffix(s, "a")`,
		`sha256_hex(s)`, `email_sha256(s)`, `url_query(s, "q")`, `utc_time(s)`, `parse_time(s).Format(a)`, `parse_time(s).Year()`,
		`base64(s)`, `minor_units(a, "USD")`, `currency_exponent(s)`, `coalesce(a, s)`, `date(s)`, `duration(s)`,
		`first(arr)`, `last(arr)`, `get(m, s)`, `s[1:3]`, `let x = s + s; x + x`, `a ?? (s + "x")`, `type(a)`, `abs(a)`,
		`map(arr, ({"k": #}))`, `filter(arr, # in arr)`, `reduce(arr, #acc + string(#), "")`,
	}
	budgetEnvs = []map[string]any{
		{"a": 1, "b": 2, "s": "a,b", "str": "x", "n": 3, "arr": []any{1, 2, 3}, "m": map[string]any{"a,b": 1, "x": 2}},
		{"a": "a", "b": "bb", "s": "banana", "str": "b", "n": 0, "arr": []any{"a", "b", "a"}, "m": map[string]any{"banana": "x"}},
		{"a": nil, "b": nil, "s": nil, "str": "", "n": -2, "arr": nil, "m": nil},
		{"a": 1.5, "b": "x", "s": "2026-02-25T14:30:00Z", "str": "é", "n": 1, "arr": []any{1.5, "x", nil}, "m": map[string]any{}},
		{"a": []any{1}, "b": map[string]any{"k": "v"}, "s": "Ä É ß ﬁ İ K <&>", "str": "ﬁ", "n": 2, "arr": []any{[]any{1, 2}, 3}, "m": map[string]any{"k": []any{1}}},
		{"a": "2006", "b": "", "s": "https://x.example/?q=1&q=2", "str": "q", "n": 5, "arr": []any{"x", "y"}, "m": map[string]any{"q": nil}},
		{"a": "25.50", "b": true, "s": `{"a":[1,2,{"b":null}]}`, "str": "\x00\xff", "n": 4, "arr": []any{true, false}, "m": map[string]any{"a": 1.5}},
	}
)

func budgetForTest() *Budget {
	b := new(Budget)
	b.Reset(0, 0)
	return b
}

// Every rewritten operation refuses to start what the budget cannot pay
// for, before building it, and then the budget is unchanged.
func TestBudgetRefusesBeforeBuilding(t *testing.T) {
	big := strings.Repeat("a", 1<<20)
	env := map[string]any{"s": big, "a": "a", "b": "aaaaaaaaaa", "n": 100, "arr": []any{big, big, big, big, big, big, big, big, big}}
	for _, tt := range []struct {
		text, unit string
	}{
		{`replace(replace(replace(s, a, b), a, b), a, b)`, "bytes"},
		{`join(arr, b)`, "bytes"},
		{`join(concat(arr, arr), "")`, "bytes"},
		{`s + s + s + s + s + s + s + s + s`, "bytes"},
		{`let x = s + s; let y = x + x; let z = y + y; z + z`, "bytes"},
		{`toJSON(arr)`, "bytes"},
		{`string(arr)`, "bytes"},
		{`upper(s + s + s + s + s + s + s + s)`, "bytes"},
		{`split(s + s + s + s + s + s + s, "")`, "bytes"},
		{`toBase64(s + s + s + s + s)`, "bytes"},
		{`0..(n * 100000)`, "bytes"},
		{`map(1..(n * 10000), s)`, "bytes"},
		{`reduce(1..(n * 100), #acc + s, "")`, "bytes"},
		{`count(1..(n * 1000), s contains "b")`, "steps"},
		{`count(1..(n * 10000), s == s + "")`, "steps"},
		{`count(1..n, s == s + "")`, "bytes"},
		{`all(1..(n*10), all(1..(n*10), all(1..(n*10), true)))`, "steps"},
		{`count(1..(n * 1000), s matches "b")`, "steps"},
		{`count(1..(n * 1000), sha256_hex(s) != "")`, "bytes"},
		{`count(1..(n * 3000), sha256_hex(a) != "")`, "steps"},
	} {
		prog := compileBudgetTest(t, tt.text, true)
		b := budgetForTest()
		e := map[string]any{BudgetVar: b}
		for k, v := range env {
			e[k] = v
		}
		start := time.Now()
		_, err := vm.Run(prog, e)
		took := time.Since(start)
		var be *BudgetError
		if !errors.As(err, &be) || be.Unit != tt.unit {
			t.Errorf("%s: got %v, want the budget of %s exceeded", tt.text, err, tt.unit)
			continue
		}
		if b.Bytes > b.MaxBytes || b.Steps > b.MaxSteps {
			t.Errorf("%s: the budget went over: %d bytes, %d steps", tt.text, b.Bytes, b.Steps)
		}
		if took > 10*time.Second { // milliseconds; generous for -race on a loaded machine
			t.Errorf("%s: took %v", tt.text, took)
		}
		if want := fmt.Sprintf("expression exceeded its budget of %d %s", be.Limit, tt.unit); be.Error() != want {
			t.Errorf("%s: message %q", tt.text, be.Error())
		}
	}
}

// Without the budget in its environment, a rewritten expression fails
// rather than runs unbounded.
func TestBudgetMissingFailsClosed(t *testing.T) {
	prog := compileBudgetTest(t, `upper(s)`, true)
	if _, err := vm.Run(prog, map[string]any{"s": "x"}); !errors.Is(err, errNoBudget) {
		t.Errorf("got %v", err)
	}
	if _, err := vm.Run(prog, map[string]any{"s": "x", BudgetVar: "not a budget"}); !errors.Is(err, errNoBudget) {
		t.Errorf("got %v", err)
	}
}

// The sizes charged before building are those built (or a little more).
func TestBudgetSizesBoundWhatIsBuilt(t *testing.T) {
	for _, s := range []string{"", "abc", "Ä É ß ﬁ İ K", "ı ſ ǅ ῼ", "\xff\xfe", strings.Repeat("ⱥ", 100)} {
		if got, want := caseLen(s, true), int64(len(strings.ToUpper(s))); got != want {
			t.Errorf("caseLen(%q, upper) = %d, want %d", s, got, want)
		}
		if got, want := caseLen(s, false), int64(len(strings.ToLower(s))); got != want {
			t.Errorf("caseLen(%q, lower) = %d, want %d", s, got, want)
		}
		for _, tt := range [][2]string{{"a", "bb"}, {"", "-"}, {"Ä", ""}, {"x", "x"}} {
			for _, k := range []int64{-1, 0, 1, 2} {
				if got, want := replaceLen(s, tt[0], tt[1], k), int64(len(strings.Replace(s, tt[0], tt[1], int(k)))); got != want {
					t.Errorf("replaceLen(%q, %q, %q, %d) = %d, want %d", s, tt[0], tt[1], k, got, want)
				}
			}
			for _, k := range []int64{-1, 0, 1, 3} {
				if got, want := splitParts(s, tt[0], k), int64(len(strings.SplitN(s, tt[0], int(k)))); got != want {
					t.Errorf("splitParts(%q, %q, %d) = %d, want %d", s, tt[0], k, got, want)
				}
			}
		}
	}
	for _, v := range []any{
		"a<b>&\"\\\n\u2028\xff", []any{1, "x", nil, true, 1.5, []any{map[string]any{"k": "v"}}},
		map[string]any{"a": []int{1, 2}, "b": []string{"x"}, "c": []float64{1e300}}, []any{}, map[string]any{},
		time.Date(2026, 2, 25, 14, 30, 0, 123, time.UTC), map[any][]any{1: {"x"}},
	} {
		text := func(f func() (string, error)) int64 {
			s, err := f()
			if err != nil {
				return 0
			}
			return int64(len(s))
		}
		jsonLen := text(func() (string, error) { b, err := jsonMarshal(v, false); return string(b), err })
		indentLen := text(func() (string, error) { b, err := jsonMarshal(v, true); return string(b), err })
		if got := valueSize(v, sizeJSON, 1<<40); got < jsonLen {
			t.Errorf("json size of %#v: %d < %d", v, got, jsonLen)
		}
		if got := valueSize(v, sizeJSONIndent, 1<<40); got < indentLen {
			t.Errorf("indented json size of %#v: %d < %d", v, got, indentLen)
		}
		if got, want := valueSize(v, sizeText, 1<<40), int64(len(fmt.Sprintf("%v", v))); got < want {
			t.Errorf("text size of %#v: %d < %d", v, got, want)
		}
	}
}

func jsonMarshal(v any, indent bool) ([]byte, error) {
	if indent {
		return json.MarshalIndent(v, "", "  ")
	}
	return json.Marshal(v)
}

// What grows with its inputs is rewritten to charge the budget; what
// costs O(1) or is bounded by the expression's text is left to the VM, so
// that the expressions of a blueprint like Button (url_query, checked
// integer arithmetic) run as fast as before.
func TestBudgetPatchCovers(t *testing.T) {
	for _, tt := range []struct {
		text    string
		patched bool
	}{
		{`a + b`, true}, {`s + "x"`, true}, {`str + str`, true}, {`n + n`, false}, {`n * 2 + 1`, false}, {`"a" + "b"`, false},
		{`a..b`, true}, {`1..3`, true}, {`n in 1..3`, false}, {`a in 1..3`, true}, {`sum(1..3)`, false}, {`sum(1..n)`, true},
		{`a == b`, true}, {`a == "x"`, false}, {`n == 1`, false}, {`a != nil`, false}, {`n < n`, false}, {`s < a`, true},
		{`s contains "x"`, true}, {`"abc" contains s`, false}, {`s startsWith "x"`, false}, {`s startsWith a`, true},
		{`s matches "^x"`, true}, {`a in arr`, true}, {`1 in [1, 2]`, false},
		{`upper(s)`, true}, {`replace(s, "a", "b")`, true}, {`join(arr)`, true}, {`toJSON(m)`, true}, {`split(s, ",")`, true},
		{`len(s)`, true}, {`len([1, 2])`, false}, {`abs(n)`, false}, {`first(arr)`, false}, {`type(a)`, false},
		{`map(arr, #)`, true}, {`all(arr, # > 0)`, true},
		{`sha256_hex(s)`, true}, {`url_query(s, "btn_ref")`, true}, {`coalesce(a, b)`, false},
		{`m[s]`, true}, {`m["k"]`, false}, {`m.k`, false}, {`arr[0]`, false},
		{`parse_time(s).Format(a)`, true}, {`parse_time(s).Year()`, true},
	} {
		cfg := conf.CreateNew()
		for _, op := range exprOptions {
			op(cfg)
		}
		expr.AllowUndefinedVariables()(cfg)
		tree, err := parser.ParseWithConfig(tt.text, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.WithEnv(map[string]any{"n": 0, "str": ""})
		cfg.Strict = false
		if _, err := new(checker.Checker).PatchAndCheck(tree, cfg); err != nil {
			t.Fatalf("%s: %v", tt.text, err)
		}
		if got := budgetPatch(&tree.Node, cfg, loopWeights(tree.Node), foldedNodes(tree.Node)); got != tt.patched {
			t.Errorf("%s: rewritten %v, want %v", tt.text, got, tt.patched)
		}
	}
}

const budgetDemoHead = `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
`

// Nested calls of builtins with several signatures (replace, split, trim,
// join) compile in linear time: expr-lang's checker visited the arguments
// once per signature, 2^depth visits (25 nested replace calls took over
// a minute).
func TestNestedOverloadedBuiltinsCompileFast(t *testing.T) {
	e := "event.properties.x"
	for i := range 200 {
		switch i % 4 {
		case 0:
			e = `replace(` + e + `, "a", "b")`
		case 1:
			e = `trim(` + e + `)`
		case 2:
			e = `join(split(` + e + `, ","), ";")`
		case 3:
			e = `replace(` + e + `, "c", "d", 1)`
		}
	}
	src := budgetDemoHead + "      s: {expr: '" + e + "'}\nevents:\n  E: {vendor_event: e, request: r}\n"
	done := make(chan Diagnostics, 1)
	go func() {
		_, ds := Compile("demo.yaml", []byte(src))
		done <- ds
	}()
	select {
	case ds := <-done:
		if ds.HasErrors() {
			t.Fatal(ds)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("compiling 200 nested calls did not end in 20 s")
	}
}

// A type error inside a function's arguments is reported where it is (it
// went unreported: expr-lang skips the arguments of calls it has typed
// once), and the builtins checked by one Validate keep expr-lang's
// messages.
func TestTypeErrorsInsideCallArguments(t *testing.T) {
	for _, tt := range []struct{ expr, want string }{
		{`sha256_hex(upper(1))`, `demo.yaml:12:35: error expr_type: cannot use int as argument (type string) to call upper`},
		{`replace("x", "a", upper(1))`, `demo.yaml:12:42: error expr_type: cannot use int as argument (type string) to call upper`},
		{`replace(1, "a", "b")`, `demo.yaml:12:18: error expr_type: cannot use int as argument (type string) to call replace`},
		{`split("a")`, `demo.yaml:12:18: error expr_type: not enough arguments to call split`},
		{`join(["a"], ",", 1)`, `demo.yaml:12:18: error expr_type: too many arguments to call join`},
	} {
		src := budgetDemoHead + "      s: {expr: '" + tt.expr + "'}\nevents:\n  E: {vendor_event: e, request: r}\n"
		_, ds := Compile("demo.yaml", []byte(src))
		if got := fmt.Sprint(ds); !strings.Contains(got, tt.want) {
			t.Errorf("%s:\n got %s\nwant %s", tt.expr, got, tt.want)
		}
	}
}
