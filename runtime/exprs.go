package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/conv"
)

// goVal turns a Go value (from config or an expression) into a value.
// Non-finite numbers (1/0) are invalid; other values JSON cannot hold
// are absent.
func (c *evalCtx) goVal(x any) rv {
	switch x := x.(type) {
	case nil:
		return rv{}
	case string:
		if x == "" {
			return rv{}
		}
		return textVal(sbytes(x))
	case bool:
		if x {
			return rv{st: present, jt: 't', b: sbytes("true")}
		}
		return rv{st: present, jt: 'f', b: sbytes("false")}
	case int:
		return intVal(int64(x))
	case int64:
		return intVal(x)
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			// 1/0, 0/0, an overflow: a wrong value, not a missing one.
			return invalidVal("the expression gives " + strconv.FormatFloat(x, 'g', -1, 64) + ", which is not a number JSON can hold")
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return rv{st: present, jt: '0', b: c.scratchText(func(d []byte) []byte { return strconv.AppendFloat(d, x, 'f', -1, 64) })}
		}
		return rv{st: present, jt: '0', b: c.scratchText(func(d []byte) []byte { return strconv.AppendFloat(d, x, 'g', -1, 64) })}
	case time.Time:
		return textVal(c.scratchText(func(d []byte) []byte { return conv.AppendUTC(d, x) }))
	}
	b, err := marshal(x)
	if err != nil {
		// expr-lang builds maps with keys of any type (fromPairs gives
		// map[any]any, groupBy map[any][]any), which encoding/json
		// cannot write: with text (or number, or boolean) keys they are
		// JSON objects.
		if y, ok := textKeys(x, 0); ok {
			b, err = marshal(y)
		}
	}
	if err != nil || len(b) == 0 {
		// A list or map holding what JSON cannot (an event number past
		// float64, 1e999, read as +Inf): a wrong value, not a missing
		// one, or the field would be left out silently (an order sent
		// without its items).
		return invalidVal("the expression gives a list or map that JSON cannot hold (a number out of range, say)")
	}
	v := c.spanVal(b, span{start: 0, end: int32(len(b)), kind: kindOf(b[0])})
	return v
}

// marshal writes a list or map an expression built as compact JSON, as
// the body writer writes text: <, > and & as they are (encoding/json's
// Marshal writes them \u003c, \u003e, \u0026, for HTML).
func marshal(x any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// textKeys copies the maps inside x whose keys are not of type string
// into map[string]any, their keys written as text (a number as goVal
// writes it, true, false); ok is false when a key is of another type.
func textKeys(x any, depth int) (any, bool) {
	if depth > 10000 {
		return nil, false
	}
	switch x := x.(type) {
	case nil, string, bool, int, int64, float64, map[string]any:
		return x, true
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			y, ok := textKeys(e, depth+1)
			if !ok {
				return nil, false
			}
			out[i] = y
		}
		return out, true
	}
	rx := reflect.ValueOf(x)
	switch rx.Kind() {
	case reflect.Map:
		out := make(map[string]any, rx.Len())
		it := rx.MapRange()
		for it.Next() {
			var key string
			switch k := it.Key().Interface().(type) {
			case string:
				key = k
			case int:
				key = strconv.Itoa(k)
			case int64:
				key = strconv.FormatInt(k, 10)
			case float64:
				key = strconv.FormatFloat(k, 'f', -1, 64)
			case bool:
				key = strconv.FormatBool(k)
			default:
				return nil, false
			}
			y, ok := textKeys(it.Value().Interface(), depth+1)
			if !ok {
				return nil, false
			}
			out[key] = y
		}
		return out, true
	case reflect.Slice, reflect.Array:
		out := make([]any, rx.Len())
		for i := range out {
			y, ok := textKeys(rx.Index(i).Interface(), depth+1)
			if !ok {
				return nil, false
			}
			out[i] = y
		}
		return out, true
	}
	return x, true
}

// exprInt is n as an expression sees it: an int, but math.MinInt64 as a
// float64, the one int whose negation (-x, abs(x)) overflows back to
// itself, which expr-lang does not check: abs(-9223372036854775808) was
// negative.
func exprInt(n int64) any {
	if n == math.MinInt64 {
		return float64(n)
	}
	return int(n)
}

// goValue turns a value into what an expression sees: string, int
// (integral numbers that fit), float64, bool, nil, or map[string]any /
// []any for objects and arrays.
func (c *evalCtx) goValue(v rv) any {
	if v.st != present {
		return nil
	}
	switch {
	case v.isInt:
		return exprInt(v.n)
	case v.jt == '"':
		return string(v.b)
	case v.jt == 't':
		return true
	case v.jt == 'f':
		return false
	case v.jt == 'n':
		return nil
	case v.jt == '0':
		if !containsAny(v.b, ".eE") {
			if n, err := strconv.ParseInt(bstr(v.b), 10, 64); err == nil {
				return exprInt(n)
			}
		}
		f, _ := strconv.ParseFloat(bstr(v.b), 64)
		return f
	}
	return gjson.ParseBytes(c.jsonText(v)).Value()
}

// runExpr evaluates a compiled expression. An expression that fails on an
// absent input (an operation on nil), or gives nothing, with an input
// absent gives absent, even if another input is invalid: missing wins, as
// in the contract's order of checks (a line item without a price misses
// its total whatever its quantity). Otherwise one with an invalid input
// gives skipped (it is derived, and never named in a fault); any other
// failure is invalid (minor_units of "abc" is, even when another input is
// absent and handled with ??). An expression that would exceed the
// event's budget (its run, an input copied whole, an operation, the JSON
// of a list or map result) is invalid, whatever its inputs.
func (c *evalCtx) runExpr(e *compiler.Expr, sc *scope) (rv, error) {
	if a := e.Arith; a != nil {
		if v, ok := c.arith(e, a, sc); ok {
			return v, nil
		}
	}
	b := &c.budget
	if !b.Ready() {
		b.Reset(c.in.opts.ExprBytes, c.in.opts.ExprSteps)
	}
	// The run: at most its program's length in steps besides its loops
	// (which charge their own), and its inputs, charged before they are
	// copied.
	if err := b.Charge(0, int64(len(e.Program.Bytecode))); err != nil {
		return invalidVal(err.Error()), err
	}
	env := make(map[string]any, len(e.Inputs)+1)
	anyAbsent, anyBad := false, false
	badFrom := "" // an invalid shared value read, and why
	for i := range e.Inputs {
		in := &e.Inputs[i]
		if err := b.Charge(c.inputSize(in, sc), 0); err != nil {
			return invalidVal(err.Error()), err
		}
		x, st := c.input(in, sc)
		switch st {
		case invalid, skipped:
			anyBad = true
			if st == invalid && in.Kind == compiler.InputValue && badFrom == "" {
				// A shared value is not a body field, so nothing else names
				// it: the expression's result is invalid, and says why.
				badFrom = derivedPrefix + in.Value.Name + ", which is invalid: " + c.value(in.Value).msg
			}
		case absent:
			anyAbsent = true
		}
		if x == nil {
			anyAbsent = true
		}
		env[in.Name] = x
	}
	env[compiler.BudgetVar] = b
	out, err := c.vm.Run(e.Program, env)
	if err != nil {
		var be *compiler.BudgetError
		switch {
		case errors.As(err, &be):
			// Over the budget is the event's fault, whatever the inputs.
			return invalidVal(be.Error()), err
		case badFrom != "":
			return invalidVal(badFrom), err
		case anyAbsent && nilError(err):
			return rv{}, err // it failed on an absent input
		case anyBad:
			return rv{st: skipped}, err
		}
		return invalidVal(exprMessage(err)), err
	}
	if err := c.chargeResult(out); err != nil {
		return invalidVal(err.Error()), err
	}
	v := c.goVal(out)
	if v.st == invalid && !anyAbsent && !anyBad {
		return v, nil // a value JSON cannot hold, from good inputs
	}
	if badFrom != "" {
		// Whatever it made of it (?? may hide the bad input), the result
		// rests on an invalid value.
		return invalidVal(badFrom), nil
	}
	if v.st != present || isAbsent(v) {
		if anyBad && !anyAbsent {
			return rv{st: skipped}, nil
		}
		return rv{}, nil
	}
	return v, nil
}

// chargeResult charges the budget with the JSON text of a list or map
// result before goVal writes it (a list of a thousand references to one
// long text is small in memory, and not as text).
func (c *evalCtx) chargeResult(out any) error {
	switch out.(type) {
	case nil, string, bool, int, int64, float64, time.Time:
		return nil
	}
	return c.budget.ChargeJSON(out)
}

// inputSize is how many bytes resolving an input copies for the program
// (its text, or the JSON of an object or list), read from where the value
// sits, before anything is copied.
func (c *evalCtx) inputSize(in *compiler.Input, sc *scope) int64 {
	switch in.Kind {
	case compiler.InputEvent:
		if in.Slot < 0 {
			return int64(len(c.event))
		}
		return spanSize(c.slots[in.Slot])
	case compiler.InputItem:
		if in.Slot < 0 {
			return int64(len(sc.item))
		}
		if sc.item == nil {
			return 0
		}
		return spanSize(sc.slots[in.Slot])
	case compiler.InputValue:
		return copied(c.value(in.Value))
	case compiler.InputField:
		if in.Field < len(sc.fields) {
			return copied(sc.fields[in.Field])
		}
	case compiler.InputBody:
		if c.resp != nil {
			if in.Path == "" {
				return int64(len(c.resp.body))
			}
			return int64(len(gjson.GetBytes(c.resp.body, in.Path).Raw))
		}
	case compiler.InputHeader:
		if c.resp != nil {
			return int64(len(c.resp.header.Get(in.Path)))
		}
	case compiler.InputText:
		if c.resp != nil {
			return int64(len(c.resp.body))
		}
	}
	return 0
}

func spanSize(sp span) int64 {
	switch sp.kind {
	case '"', '{', '[':
		return int64(sp.end - sp.start)
	}
	return 0
}

// copied is how many bytes goValue copies out of v: its text, or the
// JSON of an object or list.
func copied(v rv) int64 {
	if v.st != present || v.isInt {
		return 0
	}
	switch {
	case v.jt == 't' || v.jt == 'f' || v.jt == 'n' || v.jt == '0':
		return 0
	case v.inOut:
		return int64(v.end - v.off)
	}
	return int64(len(v.b))
}

// input resolves one expression input to the Go value the program sees.
func (c *evalCtx) input(in *compiler.Input, sc *scope) (any, state) {
	switch in.Kind {
	case compiler.InputEvent:
		if in.Slot < 0 {
			return gjson.ParseBytes(c.event).Value(), present
		}
		v := c.spanVal(c.event, c.slots[in.Slot])
		return c.goValue(v), v.st
	case compiler.InputItem:
		if in.Slot < 0 {
			return gjson.ParseBytes(sc.item).Value(), present
		}
		if sc.item == nil {
			return nil, absent
		}
		v := c.spanVal(sc.doc, sc.slots[in.Slot])
		return c.goValue(v), v.st
	case compiler.InputConfig:
		x := c.in.config[in.Config]
		if i, ok := x.(int64); ok {
			x = exprInt(i)
		}
		return x, present
	case compiler.InputValue:
		v := c.value(in.Value)
		return c.goValue(v), v.st
	case compiler.InputField:
		if in.Field < len(sc.fields) {
			v := sc.fields[in.Field]
			return c.goValue(v), v.st
		}
	case compiler.InputStatus:
		if c.resp != nil {
			return c.resp.status, present
		}
	case compiler.InputBody:
		if c.resp != nil && gjson.ValidBytes(c.resp.body) {
			if in.Path == "" {
				return gjson.ParseBytes(c.resp.body).Value(), present
			}
			r := gjson.GetBytes(c.resp.body, in.Path)
			if r.Exists() {
				return r.Value(), present
			}
		}
	case compiler.InputHeader:
		if c.resp != nil {
			if v := c.resp.header.Values(in.Path); len(v) > 0 {
				return v[0], present
			}
		}
	case compiler.InputText:
		if c.resp != nil {
			return string(c.resp.body), present
		}
	}
	return nil, absent
}

// arith computes checked integer arithmetic on two inputs natively; it
// reports false when an input is not an integer (the VM then decides).
func (c *evalCtx) arith(e *compiler.Expr, a *compiler.Arith, sc *scope) (rv, bool) {
	x, sx := c.intInput(&e.Inputs[a.A], sc)
	y, sy := c.intInput(&e.Inputs[a.B], sc)
	switch {
	case sx == absent || sy == absent: // missing wins (see runExpr)
		return rv{}, true
	case sx == invalid && e.Inputs[a.A].Kind == compiler.InputValue || sy == invalid && e.Inputs[a.B].Kind == compiler.InputValue:
		return rv{}, false // runExpr names the invalid shared value
	case sx == invalid || sx == skipped || sy == invalid || sy == skipped:
		return rv{st: skipped}, true // the invalid field is named itself
	case sx != present || sy != present:
		return rv{}, false
	}
	r, ok := arithOp(a.Op, x, y)
	if !ok {
		return invalidVal("integer overflow in " + strconv.FormatInt(x, 10) + " " + string(a.Op) + " " + strconv.FormatInt(y, 10)), true
	}
	return intVal(r), true
}

// arithOp computes x op y, reporting false on overflow.
func arithOp(op byte, x, y int64) (r int64, ok bool) {
	ok = true
	switch op {
	case '+':
		r = x + y
		ok = (r > x) == (y > 0)
	case '-':
		r = x - y
		ok = (r < x) == (y > 0)
	case '*':
		if x != 0 && y != 0 {
			r = x * y
			ok = r/y == x && !(x == -1 && y == math.MinInt64) && !(y == -1 && x == math.MinInt64)
		}
	}
	return r, ok
}

// intInput reads an input that should be an integer; state 255 means
// present but not an integer.
func (c *evalCtx) intInput(in *compiler.Input, sc *scope) (int64, state) {
	var v rv
	switch in.Kind {
	case compiler.InputField:
		if in.Field >= len(sc.fields) {
			return 0, 255
		}
		v = sc.fields[in.Field]
	case compiler.InputValue:
		v = c.value(in.Value)
	default:
		return 0, 255
	}
	if v.st != present {
		return 0, v.st
	}
	if v.isInt {
		return v.n, present
	}
	return 0, 255
}

// nilError reports whether an expression failed on a nil (absent) value:
// a helper given nothing (compiler.ErrAbsent), expr-lang's "invalid
// operation: <nil> * int", "cannot fetch x from <nil>", "interface {} is
// nil" (upper, lower...), or a conversion of nothing.
func nilError(err error) bool {
	if errors.Is(err, compiler.ErrAbsent) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "<nil>") || strings.Contains(msg, "is nil") ||
		strings.Contains(msg, "zero Value") || strings.Contains(msg, compiler.ErrAbsent.Error())
}

func (c *evalCtx) runBool(e *compiler.Expr, sc *scope) (bool, error) {
	v, err := c.runExpr(e, sc)
	if err != nil {
		return false, err
	}
	if v.st == invalid {
		return false, errors.New(v.msg) // it rests on an invalid value
	}
	return v.st == present && v.jt == 't', nil
}

var exprLocRE = regexp.MustCompile(` \(\d+:\d+\)$`)

// exprMessage is the first line of an expression error, without expr's
// position inside the expression.
func exprMessage(err error) string {
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	msg = exprLocRE.ReplaceAllString(strings.TrimSpace(msg), "")
	if strings.HasPrefix(msg, "invalid operation: []") && strings.Contains(msg, " + []") {
		msg += " (lists are joined with concat(a, b), not +)"
	}
	// expr-lang and the helpers quote their inputs as they are (int(x),
	// a pattern read from the event): event text, which must neither act
	// on a terminal nor make a message of any length.
	return truncate(escapeControls(msg), maxExprMessage)
}

// maxExprMessage bounds an expression's error message, in bytes.
const maxExprMessage = 200

// escapeControls writes the characters of s that are not printable as Go
// escapes (, ,  ), the rest as it is.
func escapeControls(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
