package compiler

import (
	"math"
	"reflect"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// budgetPatch rewrites, in a checked expression tree, every operation
// whose cost grows with its inputs into a call of a budget-aware version
// of it: __budget_<op>_<k>(_budget, args...), registered in cfg for this
// expression only. Each version charges the budget (its first argument,
// the evaluation's *Budget) with what the operation is about to build and
// read, computed from its arguments before anything is built, then does
// exactly what expr-lang does (same results, same errors). A loop
// (filter, map, reduce, all...) gets its collection through a version
// that charges the loop's steps (elements x operations of its body) when
// it starts. The new calls keep the types the checker gave the nodes they
// replace, so the rest of the compilation is unchanged. It reports
// whether anything was rewritten.
//
// What is left as it is costs O(1) (arithmetic, member access with a
// constant name, a comparison with a literal) or is bounded by the
// expression's own text (literals): over a whole event, the steps each
// run and each loop iteration count bound it.
func budgetPatch(tree *ast.Node, cfg *conf.Config, weights map[*ast.BuiltinNode]int64, folded map[ast.Node]bool) bool {
	p := &patcher{cfg: cfg, weights: weights, folded: folded}
	ast.Walk(tree, p)
	return p.k > 0
}

// foldedNodes lists what expr-lang's optimizer turns into constant work.
func foldedNodes(tree ast.Node) map[ast.Node]bool {
	f := &foldFinder{map[ast.Node]bool{}}
	ast.Walk(&tree, f)
	return f.folded
}

// foldFinder marks what expr-lang's optimizer turns into constant work,
// left as it is so that it still does: an int in a constant range
// (two comparisons, optimizer/in_range.go) and the sum of a constant
// range (a number, optimizer/sum_range.go).
type foldFinder struct{ folded map[ast.Node]bool }

func (f *foldFinder) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if r, ok := n.Right.(*ast.BinaryNode); ok && n.Operator == "in" && constRange(r) &&
			n.Left.Type() != nil && n.Left.Type().Kind() == reflect.Int {
			f.folded[n], f.folded[r] = true, true
		}
	case *ast.BuiltinNode:
		if n.Name == "sum" && len(n.Arguments) == 1 {
			if r, ok := n.Arguments[0].(*ast.BinaryNode); ok && constRange(r) {
				f.folded[n], f.folded[r] = true, true
			}
		}
	}
}

// constRange reports a range between two integer literals.
func constRange(n *ast.BinaryNode) bool {
	_, ok1 := n.Left.(*ast.IntegerNode)
	_, ok2 := n.Right.(*ast.IntegerNode)
	return n.Operator == ".." && ok1 && ok2
}

type opFunc func(b *Budget, a []any) (any, error)

type patcher struct {
	cfg     *conf.Config
	weights map[*ast.BuiltinNode]int64
	folded  map[ast.Node]bool // left to the optimizer (see foldFinder)
	k       int
}

// wrap replaces *node with a call of op on args, typed as *node was.
func (p *patcher) wrap(node *ast.Node, label string, args []ast.Node, op opFunc) {
	name := "__budget_" + label + "_" + strconv.Itoa(p.k)
	p.k++
	p.cfg.Functions[name] = &builtin.Function{Name: name, Func: func(a ...any) (any, error) {
		b, err := budgetOf(a[0])
		if err != nil {
			return nil, err
		}
		return op(b, a[1:])
	}}
	t := (*node).Type()
	loc := (*node).Location()
	callee := &ast.IdentifierNode{Value: name}
	callee.SetLocation(loc)
	bv := &ast.IdentifierNode{Value: BudgetVar}
	bv.SetLocation(loc)
	bv.SetType(anyType)
	call := &ast.CallNode{Callee: callee, Arguments: append([]ast.Node{bv}, args...)}
	ast.Patch(node, call)
	call.SetType(t)
}

var anyType = reflect.TypeOf((*any)(nil)).Elem()

func (p *patcher) Visit(node *ast.Node) {
	if p.folded[*node] {
		return
	}
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		p.binary(node, n)
	case *ast.BuiltinNode:
		p.builtin(node, n)
	case *ast.CallNode:
		p.call(node, n)
	case *ast.MemberNode:
		// obj[key] hashes or compares the key: a long text costs.
		if !n.Method && !isLiteral(n.Property) && maybeText(n.Property) {
			p.wrap(&n.Property, "key", []ast.Node{n.Property}, opRead)
		}
	}
}

// isLiteral reports a literal scalar: its cost is bounded by the
// expression's text.
func isLiteral(n ast.Node) bool {
	switch n.(type) {
	case *ast.NilNode, *ast.BoolNode, *ast.IntegerNode, *ast.FloatNode, *ast.StringNode, *ast.BytesNode, *ast.ConstantNode:
		return true
	}
	return false
}

// isLiteralList reports a list of literal scalars.
func isLiteralList(n ast.Node) bool {
	a, ok := n.(*ast.ArrayNode)
	if !ok {
		return false
	}
	for _, e := range a.Nodes {
		if !isLiteral(e) {
			return false
		}
	}
	return true
}

func kindOfNode(n ast.Node) reflect.Kind {
	t := n.Type()
	if t == nil {
		return reflect.Interface
	}
	return t.Kind()
}

// maybeText reports a node that may hold a text (or a list or map: any
// value whose size is not fixed).
func maybeText(n ast.Node) bool {
	switch kindOfNode(n) {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64, reflect.Struct:
		return false
	}
	return true
}

func (p *patcher) binary(node *ast.Node, n *ast.BinaryNode) {
	args := []ast.Node{n.Left, n.Right}
	switch n.Operator {
	case "+":
		if isLiteral(n.Left) && isLiteral(n.Right) || !maybeText(n.Left) && !maybeText(n.Right) {
			return // folded, or numbers, times and durations
		}
		p.wrap(node, "add", args, opAdd)
	case "..":
		p.wrap(node, "range", args, opRange)
	case "==", "!=":
		if isLiteral(n.Left) || isLiteral(n.Right) || !maybeText(n.Left) || !maybeText(n.Right) {
			return // compares at most the literal's length
		}
		if n.Operator == "==" {
			p.wrap(node, "eq", args, opEqual)
		} else {
			p.wrap(node, "ne", args, opNotEqual)
		}
	case "<", ">", "<=", ">=":
		if isLiteral(n.Left) || isLiteral(n.Right) || !maybeText(n.Left) || !maybeText(n.Right) {
			return
		}
		p.wrap(node, "cmp", args, opCompare(n.Operator))
	case "contains":
		if isLiteral(n.Left) {
			return
		}
		p.wrap(node, "contains", args, opContains)
	case "startsWith", "endsWith":
		if isLiteral(n.Right) || isLiteral(n.Left) {
			return // reads at most the literal's length
		}
		p.wrap(node, n.Operator, args, opAffix(n.Operator == "startsWith"))
	case "matches":
		if isLiteral(n.Left) {
			return
		}
		var re *regexp.Regexp
		if s, ok := n.Right.(*ast.StringNode); ok {
			r, err := regexp.Compile(s.Value)
			if err != nil {
				return // expr-lang reports it
			}
			re = r
		}
		p.wrap(node, "matches", args, opMatches(re))
	case "in":
		if isLiteral(n.Left) && (isLiteral(n.Right) || isLiteralList(n.Right)) {
			return
		}
		if arr, ok := n.Right.(*ast.ArrayNode); ok {
			// What expr-lang's optimizer would make of it (a set), with
			// its results (nil in [""] is true).
			if set := inArraySet(n.Left, arr); set != nil {
				args[1] = set
			}
		}
		p.wrap(node, "in", args, opIn)
	}
}

// inArraySet is the set expr-lang's optimizer (optimizer/in_array.go)
// makes of a literal list of integers (when x is an int) or of texts, or
// nil.
func inArraySet(x ast.Node, arr *ast.ArrayNode) ast.Node {
	if len(arr.Nodes) == 0 {
		return nil
	}
	if t := x.Type(); t != nil && t.Kind() == reflect.Int {
		ints := map[int]struct{}{}
		for _, a := range arr.Nodes {
			i, ok := a.(*ast.IntegerNode)
			if !ok {
				ints = nil
				break
			}
			ints[i.Value] = struct{}{}
		}
		if ints != nil {
			c := &ast.ConstantNode{Value: ints}
			c.SetType(reflect.TypeOf(ints))
			return c
		}
	}
	texts := map[string]struct{}{}
	for _, a := range arr.Nodes {
		s, ok := a.(*ast.StringNode)
		if !ok {
			return nil
		}
		texts[s.Value] = struct{}{}
	}
	c := &ast.ConstantNode{Value: texts}
	c.SetType(reflect.TypeOf(texts))
	return c
}

// Loops: the collection is charged when the loop starts.
var loopBuiltins = map[string]struct {
	bytesPerElem int64 // what the loop builds per element
	shortCircuit bool  // may stop before the end (all, any, find...)
}{
	"all": {0, true}, "none": {0, true}, "any": {0, true}, "one": {0, false},
	"filter": {16, false}, "map": {16, false}, "find": {0, true}, "findIndex": {0, true},
	"findLast": {0, true}, "findLastIndex": {0, true}, "count": {0, false}, "sum": {0, false},
	"groupBy": {48, false}, "sortBy": {32, false}, "reduce": {0, false},
}

// loopWeights gives every loop of the tree the number of operations of
// its body (its predicates, plus one), as written.
func loopWeights(tree ast.Node) map[*ast.BuiltinNode]int64 {
	w := loopWeigher{weights: map[*ast.BuiltinNode]int64{}}
	ast.Walk(&tree, &w)
	return w.weights
}

type loopWeigher struct{ weights map[*ast.BuiltinNode]int64 }

func (l *loopWeigher) Visit(node *ast.Node) {
	n, ok := (*node).(*ast.BuiltinNode)
	if !ok {
		return
	}
	if _, ok := loopBuiltins[n.Name]; !ok {
		return
	}
	w := int64(1)
	for i := 1; i < len(n.Arguments); i++ {
		if pr, ok := n.Arguments[i].(*ast.PredicateNode); ok {
			w += countNodes(pr.Node)
		}
	}
	l.weights[n] = w
}

type nodeCounter struct{ n int64 }

func (c *nodeCounter) Visit(*ast.Node) { c.n++ }

func countNodes(n ast.Node) int64 {
	c := nodeCounter{}
	ast.Walk(&n, &c)
	return c.n
}

func (p *patcher) builtin(node *ast.Node, n *ast.BuiltinNode) {
	if l, ok := loopBuiltins[n.Name]; ok {
		if len(n.Arguments) == 0 {
			return
		}
		w := p.weights[n]
		if w == 0 {
			w = 1
		}
		p.wrap(&n.Arguments[0], "loop", []ast.Node{n.Arguments[0]}, opLoop(w, l.bytesPerElem, n.Name == "sortBy"))
		return
	}
	cost, ok := builtinCosts[n.Name]
	if !ok {
		return // costs O(1): abs, first, type, take...
	}
	if n.Name == "len" && len(n.Arguments) == 1 {
		if k := kindOfNode(n.Arguments[0]); k != reflect.String && k != reflect.Interface {
			return // the length of a list or map is O(1)
		}
	}
	id, ok := builtin.Index[n.Name]
	if !ok {
		return
	}
	bf := builtin.Builtins[id]
	p.wrap(node, n.Name, n.Arguments, func(b *Budget, a []any) (any, error) {
		if err := safeCost(cost, b, a); err != nil {
			return nil, err
		}
		switch {
		case bf.Fast != nil:
			if len(a) != 1 {
				panic("stack underflow") // as the VM, for a call it did not check
			}
			return bf.Fast(a[0]), nil
		case bf.Func != nil:
			return bf.Func(a...)
		case bf.Safe != nil:
			out, _, err := bf.Safe(a...)
			return out, err
		}
		return nil, nil
	})
}

func (p *patcher) call(node *ast.Node, n *ast.CallNode) {
	switch callee := n.Callee.(type) {
	case *ast.IdentifierNode:
		if f, ok := overloadsOnce[callee.Value]; ok {
			// An expr-lang builtin declared as a function (see
			// overloadsOnce).
			cost, fn := builtinCosts[f.Name], f.Func
			if cost == nil {
				return
			}
			p.wrap(node, f.Name, n.Arguments, func(b *Budget, a []any) (any, error) {
				if err := safeCost(cost, b, a); err != nil {
					return nil, err
				}
				return fn(a...)
			})
			return
		}
		for i := range functions {
			f := &functions[i]
			if f.Name != callee.Value || f.cost == nil {
				continue
			}
			cost, fn := f.cost, f.fn
			// A pattern read at run time is charged for the program it
			// compiles to, times the text it runs over.
			pattern := f.regex && len(n.Arguments) > 1 && !isLiteral(n.Arguments[1])
			p.wrap(node, f.Name, n.Arguments, func(b *Budget, a []any) (any, error) {
				if err := safeCost(cost, b, a); err != nil {
					return nil, err
				}
				if pattern {
					if err := chargeRuntimePattern(b, textLen(a[0]), a[1]); err != nil {
						return nil, err
					}
				}
				return fn(a...)
			})
			return
		}
	case *ast.MemberNode:
		// A method of a value (time.Time.Format(layout)): its text
		// arguments are charged as if it wrote twice their size.
		for i := range n.Arguments {
			if !isLiteral(n.Arguments[i]) && maybeText(n.Arguments[i]) {
				p.wrap(&n.Arguments[i], "arg", []ast.Node{n.Arguments[i]}, opArg)
			}
		}
	}
}

// safeCost charges a call's cost; a call with too few arguments (in the
// arguments of a method of an unknown value, which expr-lang does not
// check) charges nothing, and the function reports it as it always did.
func safeCost(cost func(b *Budget, a []any) error, b *Budget, a []any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = nil
		}
	}()
	return cost(b, a)
}

// The budget-aware operations. Each does what expr-lang's VM does for the
// operation, once the budget accepts its cost.

func opAdd(b *Budget, a []any) (any, error) {
	if x, ok := a[0].(string); ok {
		if y, ok := a[1].(string); ok {
			if err := b.Charge(int64(len(x))+int64(len(y)), 0); err != nil {
				return nil, err
			}
			return x + y, nil
		}
	}
	return runtime.Add(a[0], a[1]), nil
}

func opRange(b *Budget, a []any) (any, error) {
	lo, hi := runtime.ToInt(a[0]), runtime.ToInt(a[1])
	var n int64
	if hi >= lo {
		d := uint64(hi) - uint64(lo)
		if d >= math.MaxInt64 {
			n = math.MaxInt64
		} else {
			n = int64(d) + 1
		}
	}
	if err := b.Charge(satMul(n, 8), 0); err != nil {
		return nil, err
	}
	return runtime.MakeRange(lo, hi), nil
}

// iterLen is the number of elements a loop over x visits.
func iterLen(x any) int64 {
	if s, ok := x.(string); ok {
		return int64(len(s))
	}
	return shallowLen(x)
}

// opLoop charges a loop: w steps and bytesPerElem bytes per element, and
// for sortBy the sort's comparisons (log2 n per element).
func opLoop(w, bytesPerElem int64, sorts bool) opFunc {
	return func(b *Budget, a []any) (any, error) {
		n := iterLen(a[0])
		perElem := w
		if sorts {
			perElem = satAdd(perElem, int64(bitsLen(n)))
		}
		if err := b.Charge(satMul(n, bytesPerElem), satMul(n, perElem)); err != nil {
			return nil, err
		}
		return a[0], nil
	}
}

// cmpSteps is what comparing x and y for equality reads.
func cmpSteps(b *Budget, x, y any) int64 {
	if s, ok := x.(string); ok {
		if t, ok := y.(string); ok {
			if len(s) == len(t) {
				return 1 + int64(len(s))>>6
			}
			return 1
		}
	}
	if shallowLen(x) == 0 && shallowLen(y) == 0 {
		return 1
	}
	left := b.stepsLeft() + 1
	return satAdd(readSteps(x, left), readSteps(y, left))
}

func opEqual(b *Budget, a []any) (any, error) {
	if err := b.Charge(0, cmpSteps(b, a[0], a[1])); err != nil {
		return nil, err
	}
	return runtime.Equal(a[0], a[1]), nil
}

func opNotEqual(b *Budget, a []any) (any, error) {
	if err := b.Charge(0, cmpSteps(b, a[0], a[1])); err != nil {
		return nil, err
	}
	return !runtime.Equal(a[0], a[1]), nil
}

func opCompare(op string) opFunc {
	var f func(a, b any) bool
	switch op {
	case "<":
		f = runtime.Less
	case ">":
		f = runtime.More
	case "<=":
		f = runtime.LessOrEqual
	default:
		f = runtime.MoreOrEqual
	}
	return func(b *Budget, a []any) (any, error) {
		if err := b.Charge(0, 1+min(textSteps(a[0]), textSteps(a[1]))); err != nil {
			return nil, err
		}
		return f(a[0], a[1]), nil
	}
}

func opContains(b *Budget, a []any) (any, error) {
	if runtime.IsNil(a[0]) || runtime.IsNil(a[1]) {
		return false, nil
	}
	if err := b.Charge(0, 1+textSteps(a[0])+textSteps(a[1])); err != nil {
		return nil, err
	}
	return strings.Contains(a[0].(string), a[1].(string)), nil
}

func opAffix(prefix bool) opFunc {
	return func(b *Budget, a []any) (any, error) {
		if runtime.IsNil(a[0]) || runtime.IsNil(a[1]) {
			return false, nil
		}
		if err := b.Charge(0, 1+textSteps(a[1])); err != nil {
			return nil, err
		}
		if prefix {
			return strings.HasPrefix(a[0].(string), a[1].(string)), nil
		}
		return strings.HasSuffix(a[0].(string), a[1].(string)), nil
	}
}

// A regular expression reads about 4 bytes in the time memchr reads 64:
// matching counts a step per 4 bytes of a pattern written as a literal
// (the author's, small); a pattern read at run time is charged by
// chargeRuntimePattern.
func opMatches(re *regexp.Regexp) opFunc {
	return func(b *Budget, a []any) (any, error) {
		if runtime.IsNil(a[0]) || runtime.IsNil(a[1]) {
			return false, nil
		}
		n := textLen(a[0])
		if bs, ok := a[0].([]byte); ok {
			n += int64(len(bs))
		}
		steps := 1 + n/4
		if err := b.Charge(0, steps); err != nil {
			return nil, err
		}
		if re == nil {
			if err := chargeRuntimePattern(b, n, a[1]); err != nil {
				return nil, err
			}
		}
		if re != nil {
			if s, ok := a[0].(string); ok {
				return re.MatchString(s), nil
			}
			return re.Match(a[0].([]byte)), nil
		}
		var match bool
		var err error
		if s, ok := a[0].(string); ok {
			match, err = regexp.MatchString(a[1].(string), s)
		} else {
			match, err = regexp.Match(a[1].(string), a[0].([]byte))
		}
		if err != nil {
			panic(err)
		}
		return match, nil
	}
}

func opIn(b *Budget, a []any) (any, error) {
	steps := int64(1)
	switch reflect.ValueOf(a[1]).Kind() {
	case reflect.Slice, reflect.Array:
		n := shallowLen(a[1])
		steps = satAdd(steps, satAdd(n, satMul(n, textSteps(a[0]))))
	case reflect.Map:
		steps += textSteps(a[0])
	}
	if err := b.Charge(0, steps); err != nil {
		return nil, err
	}
	return runtime.In(a[0], a[1]), nil
}

// opRead charges reading a value whole (a key hashed or compared).
func opRead(b *Budget, a []any) (any, error) {
	if err := b.Charge(0, 1+textSteps(a[0])); err != nil {
		return nil, err
	}
	return a[0], nil
}

// opArg charges a text given to a method that may write up to twice it
// (time.Format's layout).
func opArg(b *Budget, a []any) (any, error) {
	n := textLen(a[0])
	if err := b.Charge(2*n+scalarSize, 1+n>>6); err != nil {
		return nil, err
	}
	return a[0], nil
}

// builtinCosts charges what an expr-lang builtin is about to build and
// read, from its arguments; builtins not listed cost O(1).
var builtinCosts = map[string]func(b *Budget, a []any) error{
	"len":         chargeTextArgs,
	"int":         chargeTextArgs,
	"float":       chargeTextArgs,
	"duration":    chargeTextArgs,
	"trim":        chargeTrim,
	"trimPrefix":  chargeTextArgs,
	"trimSuffix":  chargeTextArgs,
	"indexOf":     chargeTextArgs,
	"lastIndexOf": chargeTextArgs,
	"hasPrefix":   chargeTextArgs,
	"hasSuffix":   chargeTextArgs,
	"get":         chargeTextArgs,
	"date": func(b *Budget, a []any) error {
		steps := int64(1)
		for _, x := range a {
			steps += textSteps(x)
		}
		args := a
		if len(a) == 0 {
			return nil
		}
		if _, ok := a[0].(*time.Location); ok {
			args = a[1:]
		}
		if len(args) == 3 {
			steps += loadLocationSteps
		}
		return b.Charge(scalarSize, steps)
	},
	"timezone": func(b *Budget, a []any) error {
		return b.Charge(scalarSize, loadLocationSteps+textSteps(a[0]))
	},
	"string": func(b *Budget, a []any) error {
		return b.Charge(valueSize(a[0], sizeText, b.bytesLeft()+1), 1)
	},
	"toJSON": func(b *Budget, a []any) error {
		return b.Charge(valueSize(a[0], sizeJSONIndent, b.bytesLeft()+1), 1)
	},
	"fromJSON": func(b *Budget, a []any) error {
		s, _ := a[0].(string)
		values := int64(1)
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case ',', ':', '[', '{':
				values++
			}
		}
		return b.Charge(satAdd(int64(len(s)), satMul(values, 32)), 1+textSteps(s))
	},
	"upper": func(b *Budget, a []any) error {
		s, _ := a[0].(string)
		return b.Charge(caseLen(s, true), 1+textSteps(s))
	},
	"lower": func(b *Budget, a []any) error {
		s, _ := a[0].(string)
		return b.Charge(caseLen(s, false), 1+textSteps(s))
	},
	"split":      chargeSplit,
	"splitAfter": chargeSplit,
	"replace": func(b *Budget, a []any) error {
		s, ok1 := a[0].(string)
		old, ok2 := a[1].(string)
		nw, ok3 := a[2].(string)
		if !ok1 || !ok2 || !ok3 {
			return nil // the builtin reports the wrong argument
		}
		n := int64(-1)
		if len(a) == 4 {
			k, ok := intArg(a[3])
			if !ok {
				return nil
			}
			n = k
		}
		if err := b.Charge(0, 1+textSteps(s)); err != nil {
			return err
		}
		return b.Charge(replaceLen(s, old, nw, n), 0)
	},
	"join": func(b *Budget, a []any) error {
		glue := ""
		if len(a) == 2 {
			glue, _ = a[1].(string)
		}
		var n, size int64
		switch v := a[0].(type) {
		case []string:
			n = int64(len(v))
			for _, s := range v {
				size += int64(len(s))
			}
		case []any:
			n = int64(len(v))
			for _, x := range v {
				size += textLen(x)
			}
		}
		if n > 0 {
			size = satAdd(size, satMul(n-1, int64(len(glue))))
		}
		return b.Charge(satAdd(size, satMul(n, 16)), 1+n)
	},
	"toBase64": func(b *Budget, a []any) error {
		n := textLen(a[0])
		return b.Charge(n+(n+2)/3*4, 1+n>>6)
	},
	"fromBase64": func(b *Budget, a []any) error {
		n := textLen(a[0])
		return b.Charge(n+n/4*3+3, 1+n>>6)
	},
	"keys":      chargeElements(16),
	"values":    chargeElements(16),
	"reverse":   chargeElements(16),
	"toPairs":   chargeElements(64),
	"fromPairs": chargeElements(64),
	"concat": func(b *Budget, a []any) error {
		var n int64
		for _, x := range a {
			n = satAdd(n, shallowLen(x))
		}
		return b.Charge(satMul(n, 16), 1+n)
	},
	"uniq":    chargeDeep(32, 1),
	"flatten": chargeDeep(16, 1),
	"median":  chargeDeep(8, 1),
	"max":     chargeDeep(0, 1),
	"min":     chargeDeep(0, 1),
	"mean":    chargeDeep(0, 1),
	"sort": func(b *Budget, a []any) error {
		n := shallowLen(a[0])
		logn := int64(bitsLen(n)) + 1
		steps := satMul(readSteps(a[0], b.stepsLeft()+1), logn)
		return b.Charge(satMul(n, 16), steps)
	},
}

// loadLocationSteps is what reading a time zone from the system's zone
// database costs (a file read, each time).
const loadLocationSteps = 1000

func bitsLen(n int64) int {
	l := 0
	for n > 0 {
		l++
		n >>= 1
	}
	return l
}

func intArg(x any) (int64, bool) {
	switch v := x.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

func chargeTextArgs(b *Budget, a []any) error {
	steps := int64(1)
	for _, x := range a {
		steps = satAdd(steps, textSteps(x))
	}
	return b.Charge(0, steps)
}

// chargeTrim: trim(s, cutset) with a cutset that is not ASCII looks up
// each rune it strips in the cutset.
func chargeTrim(b *Budget, a []any) error {
	steps := int64(1)
	for _, x := range a {
		steps = satAdd(steps, textSteps(x))
	}
	if len(a) == 2 {
		s, _ := a[0].(string)
		cut, _ := a[1].(string)
		for i := 0; i < len(cut); i++ {
			if cut[i] >= utf8.RuneSelf {
				steps = satAdd(steps, satMul(int64(len(s)), int64(len(cut)))>>6)
				break
			}
		}
	}
	return b.Charge(0, steps)
}

func chargeSplit(b *Budget, a []any) error {
	s, ok1 := a[0].(string)
	sep, ok2 := a[1].(string)
	if !ok1 || !ok2 {
		return nil
	}
	n := int64(-1)
	if len(a) == 3 {
		k, ok := intArg(a[2])
		if !ok {
			return nil
		}
		if k > 0 {
			n = k
		} else if k == 0 {
			n = 0
		}
	}
	if err := b.Charge(0, 1+textSteps(s)); err != nil {
		return err
	}
	return b.Charge(satAdd(24, satMul(splitParts(s, sep, n), 16)), 0)
}

// chargeElements charges a builtin that builds per element of its
// (first) list or map.
func chargeElements(bytesPerElem int64) func(b *Budget, a []any) error {
	return func(b *Budget, a []any) error {
		n := shallowLen(a[0])
		return b.Charge(satMul(n, bytesPerElem), 1+n)
	}
}

// chargeDeep charges a builtin that reads every element of its arguments,
// nested lists included.
func chargeDeep(bytesPerStep, extra int64) func(b *Budget, a []any) error {
	return func(b *Budget, a []any) error {
		steps := extra
		for _, x := range a {
			steps = satAdd(steps, readSteps(x, b.stepsLeft()+1))
		}
		return b.Charge(satMul(steps, bytesPerStep), steps)
	}
}

// chargeRuntimePattern charges a regular expression whose pattern is read
// at run time (from event data, say), before it is compiled or run: RE2
// runs in time linear in the text, but times the size of the compiled
// program (its NFA steps every instruction over every byte), and a short
// pattern can compile to a large program ("\pL{1000}"). 4 steps per
// pattern byte to parse it (parsing and compiling build about 200 bytes
// per pattern byte), a step per instruction to compile it, then a step per
// 4 (byte, instruction) pairs, as a literal pattern's byte costs. Without
// it, a pattern of 60 000 bytes over a text of 60 000 took 14 s per event
// (quadratic: 500 KB, over 15 minutes) within a budget of 1 000 000 steps.
// A pattern that does not parse is left to the call to report.
func chargeRuntimePattern(b *Budget, text int64, pattern any) error {
	p, ok := pattern.(string)
	if !ok {
		return nil
	}
	if err := b.Charge(0, 1+satMul(int64(len(p)), 4)); err != nil {
		return err
	}
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil {
		return nil
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil
	}
	inst := int64(len(prog.Inst))
	return b.Charge(0, satAdd(inst, satMul(text, inst)/4))
}
