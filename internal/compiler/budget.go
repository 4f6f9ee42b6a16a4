package compiler

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Expression budgets.
//
// expr-lang's VM bounds only the arrays, maps and ranges one run builds
// (its MemoryBudget, per run, counted in elements): a string builtin can
// allocate without bound (replace nested nine times turns one "a" into a
// gigabyte), and nothing bounds the time a loop takes. So every
// expression of a blueprint is compiled against a budget that one event's
// expressions share (the runtime holds it, per evaluation):
//
//   - bytes: what the expressions build: text (concatenation, replace,
//     join, upper, toJSON, string, the helpers...), lists and maps (ranges,
//     map, filter, split, keys...), and their inputs when they are read
//     whole (a text, object or list given to an expression counts its
//     size);
//   - steps: the work: every run counts its program's length, every loop
//     counts its body's operations once per element of its collection
//     (counted when the loop starts), and an operation that reads text
//     counts one step per 64 bytes it reads.
//
// Every operation that can allocate or read in proportion to its inputs
// charges the budget BEFORE it builds anything, from sizes computable up
// front (replace's output is len(s) + count(old) * (len(new) - len(old))),
// so no single operation can allocate past the budget. The compiler does
// this by rewriting those operations into calls of budget-aware versions
// that receive the budget as a hidden first argument (BudgetVar, an
// environment variable no author can name); see budgetPatch.
//
// What the compiler can prove exceeds the default budget on every event
// that runs it (a loop over a constant range that takes more steps, a
// reduce that grows a text quadratically, replace calls nested so that one
// occurrence of their pattern becomes more than the budget) is refused
// with the diagnostic expr_budget; see proveBudget.
const (
	// DefaultExprBytes is the default budget of bytes one event's
	// expressions may build (8 MiB: eight events of the default size
	// limit).
	DefaultExprBytes = 8 << 20
	// DefaultExprSteps is the default budget of steps one event's
	// expressions may take (about 10 to 50 ms of work).
	DefaultExprSteps = 1_000_000
)

// BudgetVar is the name of the environment variable through which the
// runtime gives an expression its evaluation's *Budget. Authors cannot
// name it: an expression reads only event, item, config, values and
// fields.
const BudgetVar = "_budget"

// Budget is what one evaluation's expressions may still build and do. It
// is not safe for concurrent use: one evaluation owns one.
type Budget struct {
	Bytes, Steps       int64 // used so far
	MaxBytes, MaxSteps int64 // the limits
}

// Reset starts a new evaluation with the given limits (defaults for
// values <= 0).
func (b *Budget) Reset(maxBytes, maxSteps int64) {
	if maxBytes <= 0 {
		maxBytes = DefaultExprBytes
	}
	if maxSteps <= 0 {
		maxSteps = DefaultExprSteps
	}
	*b = Budget{MaxBytes: maxBytes, MaxSteps: maxSteps}
}

// Ready reports whether the budget has limits (Reset was called).
func (b *Budget) Ready() bool { return b.MaxBytes > 0 }

// Charge counts bytes about to be built and steps about to be taken. When
// either would pass its limit, nothing is counted and the error says
// which: the operation must then not run. A refused charge does not use
// the budget, so later expressions of the event still get what is left.
func (b *Budget) Charge(bytes, steps int64) error {
	if bytes < 0 {
		bytes = 0
	}
	if steps < 0 {
		steps = 0
	}
	if bytes > b.MaxBytes-b.Bytes {
		return &BudgetError{Limit: b.MaxBytes, Unit: "bytes"}
	}
	if steps > b.MaxSteps-b.Steps {
		return &BudgetError{Limit: b.MaxSteps, Unit: "steps"}
	}
	b.Bytes += bytes
	b.Steps += steps
	return nil
}

// bytesLeft is what may still be built.
func (b *Budget) bytesLeft() int64 { return b.MaxBytes - b.Bytes }

// stepsLeft is what may still be done.
func (b *Budget) stepsLeft() int64 { return b.MaxSteps - b.Steps }

// BudgetError is the error of an expression that exceeded its budget.
type BudgetError struct {
	Limit int64
	Unit  string // "bytes" or "steps"
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("expression exceeded its budget of %d %s", e.Limit, e.Unit)
}

var errNoBudget = errors.New("the expression has no budget to run with")

// budgetOf is the budget given as an operation's hidden first argument.
func budgetOf(x any) (*Budget, error) {
	b, ok := x.(*Budget)
	if !ok || b == nil || !b.Ready() {
		return nil, errNoBudget
	}
	return b, nil
}

// Saturating arithmetic on costs.

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// textSteps is what reading a text costs: one step per 64 bytes.
func textSteps(x any) int64 {
	if s, ok := x.(string); ok {
		return int64(len(s)) >> 6
	}
	return 0
}

// textLen is the length of a text argument, 0 for anything else.
func textLen(x any) int64 {
	if s, ok := x.(string); ok {
		return int64(len(s))
	}
	return 0
}

// shallowLen is the number of elements of a list or map, 0 for anything
// else.
func shallowLen(x any) int64 {
	switch v := x.(type) {
	case nil, string, bool, int, float64:
		return 0
	case []any:
		return int64(len(v))
	case []int:
		return int64(len(v))
	case []string:
		return int64(len(v))
	case []float64:
		return int64(len(v))
	case map[string]any:
		return int64(len(v))
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return int64(rv.Len())
	}
	return 0
}

// readSteps is what reading a whole value costs: one step per element of
// every list and map in it, one per 64 bytes of text. It stops counting
// once it passes limit.
func readSteps(x any, limit int64) int64 {
	w := walker{limit: limit}
	w.steps(x, 0)
	return w.n
}

type walker struct {
	limit, n int64
}

func (w *walker) add(k int64) bool {
	w.n = satAdd(w.n, k)
	return w.n <= w.limit
}

func (w *walker) steps(x any, depth int) bool {
	if w.n > w.limit {
		return false
	}
	if depth > 10000 {
		return w.add(1)
	}
	switch v := x.(type) {
	case nil, bool, int, int64, float64, time.Time, time.Duration:
		return w.add(1)
	case string:
		return w.add(1 + int64(len(v))>>6)
	case []any:
		if !w.add(int64(len(v))) {
			return false
		}
		for _, e := range v {
			if !w.steps(e, depth+1) {
				return false
			}
		}
		return true
	case []int:
		return w.add(int64(len(v)))
	case []float64:
		return w.add(int64(len(v)))
	case []string:
		if !w.add(int64(len(v))) {
			return false
		}
		for _, e := range v {
			if !w.add(int64(len(e)) >> 6) {
				return false
			}
		}
		return true
	case map[string]any:
		if !w.add(int64(len(v))) {
			return false
		}
		for k, e := range v {
			if !w.add(int64(len(k))>>6) || !w.steps(e, depth+1) {
				return false
			}
		}
		return true
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if !w.add(int64(rv.Len())) {
			return false
		}
		for i := range rv.Len() {
			if !w.steps(rv.Index(i).Interface(), depth+1) {
				return false
			}
		}
		return true
	case reflect.Map:
		if !w.add(int64(rv.Len())) {
			return false
		}
		it := rv.MapRange()
		for it.Next() {
			if !w.steps(it.Key().Interface(), depth+1) || !w.steps(it.Value().Interface(), depth+1) {
				return false
			}
		}
		return true
	case reflect.String:
		return w.add(1 + int64(rv.Len())>>6)
	}
	return w.add(1)
}

// Text sizes, computed before a value is written.

type sizeMode int

const (
	sizeJSON       sizeMode = iota // json.Marshal
	sizeJSONIndent                 // json.MarshalIndent(v, "", "  "), toJSON
	sizeText                       // fmt.Sprintf("%v", v), string()
)

// scalarSize bounds the text of a number, a time or anything printed
// whole.
const scalarSize = 64

// ChargeJSON charges, as Charge does, the length of the JSON text that
// json.Marshal would write for v, counted before anything writes it (the
// runtime charges an expression's list or map result before it marshals
// it).
func (b *Budget) ChargeJSON(v any) error {
	return b.Charge(valueSize(v, sizeJSON, b.bytesLeft()+1), 0)
}

func valueSize(v any, mode sizeMode, limit int64) int64 {
	s := sizer{mode: mode, walker: walker{limit: limit}}
	s.size(v, 0)
	return s.n
}

type sizer struct {
	walker
	mode sizeMode
}

func (s *sizer) text(str string) bool {
	if s.mode == sizeText {
		return s.add(int64(len(str)))
	}
	return s.add(jsonTextLen(str))
}

// elem is the text around one element of a list or member of a map at
// depth (the depth of the container).
func (s *sizer) elem(depth int) int64 {
	switch s.mode {
	case sizeJSONIndent:
		return 4 + 2*int64(depth+1) // newline, indent, ": " or ","
	case sizeText:
		return 2 // space, colon
	}
	return 2 // comma, colon
}

func (s *sizer) container(n, depth int) bool {
	return s.add(8 + 2*int64(depth) + int64(n)*s.elem(depth))
}

func (s *sizer) size(x any, depth int) bool {
	if s.n > s.limit {
		return false
	}
	if depth > 10000 {
		return s.add(scalarSize)
	}
	switch v := x.(type) {
	case nil, bool:
		return s.add(5)
	case string:
		return s.text(v)
	case int, int64, float64, time.Duration:
		return s.add(32)
	case time.Time:
		return s.add(scalarSize)
	case []any:
		if !s.container(len(v), depth) {
			return false
		}
		for _, e := range v {
			if !s.size(e, depth+1) {
				return false
			}
		}
		return true
	case []int:
		return s.container(len(v), depth) && s.add(int64(len(v))*32)
	case []float64:
		return s.container(len(v), depth) && s.add(int64(len(v))*32)
	case []string:
		if !s.container(len(v), depth) {
			return false
		}
		for _, e := range v {
			if !s.text(e) {
				return false
			}
		}
		return true
	case map[string]any:
		if !s.container(len(v), depth) {
			return false
		}
		for k, e := range v {
			if !s.text(k) || !s.size(e, depth+1) {
				return false
			}
		}
		return true
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		if !s.container(rv.Len(), depth) {
			return false
		}
		for i := range rv.Len() {
			if !s.size(rv.Index(i).Interface(), depth+1) {
				return false
			}
		}
		return true
	case reflect.Map:
		if !s.container(rv.Len(), depth) {
			return false
		}
		it := rv.MapRange()
		for it.Next() {
			if !s.size(it.Key().Interface(), depth+1) || !s.size(it.Value().Interface(), depth+1) {
				return false
			}
		}
		return true
	case reflect.String:
		return s.text(rv.String())
	}
	return s.add(scalarSize)
}

// jsonTextLen is the length of s as encoding/json writes it, quotes
// included (HTML characters and U+2028/U+2029 escaped, invalid UTF-8
// replaced by \ufffd), or a little more.
func jsonTextLen(s string) int64 {
	n := int64(2)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += int64(size)
		}
		i += size
	}
	return n
}

// caseLen is the length of strings.ToUpper(s) (upper) or ToLower(s).
func caseLen(s string, upper bool) int64 {
	n := int64(0)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 3 // written as U+FFFD
			i++
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
		} else {
			r = unicode.ToLower(r)
		}
		n += int64(utf8.RuneLen(r))
		i += size
	}
	return n
}

// replaceCount is how many replacements strings.Replace(s, old, new, n)
// makes (n < 0: all).
func replaceCount(s, old string, n int64) int64 {
	var m int64
	if old == "" {
		m = int64(utf8.RuneCountInString(s)) + 1
	} else {
		m = int64(strings.Count(s, old))
	}
	if n >= 0 && n < m {
		m = n
	}
	return m
}

// replaceLen is the length of strings.Replace(s, old, new, n).
func replaceLen(s, old, new string, n int64) int64 {
	m := replaceCount(s, old, n)
	if len(new) >= len(old) {
		return satAdd(int64(len(s)), satMul(m, int64(len(new)-len(old))))
	}
	return int64(len(s)) - m*int64(len(old)-len(new))
}

// splitParts is how many parts strings.Split(s, sep) (or SplitN with n)
// gives.
func splitParts(s, sep string, n int64) int64 {
	var m int64
	if sep == "" {
		m = int64(utf8.RuneCountInString(s))
	} else {
		m = int64(strings.Count(s, sep)) + 1
	}
	if n >= 0 && n < m {
		m = n
	}
	return m
}
