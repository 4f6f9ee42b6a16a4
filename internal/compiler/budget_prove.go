package compiler

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr/ast"
	"gopkg.in/yaml.v3"
)

// proveBudget refuses (expr_budget) what in a checked expression exceeds
// the default budgets whenever it runs: it computes, bottom up, a lower
// bound of the bytes each part builds and the steps it takes, counting
// the runtime's own way (a loop's steps are its collection's length times
// its body's operations), and reports the innermost part whose bound is
// over a budget. Only what is certain counts: a constant range, a literal
// list, literal text; of a conditional, the cheaper branch (each branch
// is also checked alone); of a loop that may stop early (all, any,
// find...), one run of its body.
//
// Replace calls with literal patterns nested over any other input are
// judged on the smallest input they change, one occurrence of the
// innermost pattern: replace(replace(x, "a", "aaaaaaaaaa"), "a",
// "aaaaaaaaaa") nested nine times makes a gigabyte of every "a".
func (c *compiler) proveBudget(n *yaml.Node, tree ast.Node, weights map[*ast.BuiltinNode]int64, folded map[ast.Node]bool) bool {
	p := &prover{c: c, node: n, weights: weights, folded: folded, maxBytes: DefaultExprBytes, maxSteps: DefaultExprSteps}
	p.cost(tree)
	return !p.failed
}

type cost struct{ bytes, steps int64 }

func (a cost) plus(b cost) cost {
	return cost{satAdd(a.bytes, b.bytes), satAdd(a.steps, b.steps)}
}

func (a cost) times(k int64) cost {
	return cost{satMul(a.bytes, k), satMul(a.steps, k)}
}

func minCost(a, b cost) cost {
	return cost{min(a.bytes, b.bytes), min(a.steps, b.steps)}
}

type prover struct {
	c                  *compiler
	node               *yaml.Node
	weights            map[*ast.BuiltinNode]int64
	folded             map[ast.Node]bool // constant work once optimized
	maxBytes, maxSteps int64
	failed             bool
	acc                int64 // lower bound of #acc's length in the reduce being read
	chains             map[ast.Node]chainResult
}

func (p *prover) report(n ast.Node, format string, args ...any) {
	if p.failed {
		return
	}
	p.failed = true
	msg := fmt.Sprintf(format, args...)
	p.c.ds.Errorf(p.c.exprPos(p.node, n.Location().From), "expr_budget", "%s", msg)
}

func (p *prover) cost(n ast.Node) cost {
	if p.failed || n == nil {
		return cost{}
	}
	var c cost
	if p.folded[n] {
		// The optimizer makes it constant work: an int in a constant
		// range, the sum of one.
		if b, ok := n.(*ast.BinaryNode); ok && b.Operator == "in" {
			return p.cost(b.Left)
		}
		return cost{}
	}
	switch n := n.(type) {
	case *ast.BinaryNode:
		switch n.Operator {
		case "&&", "||", "and", "or", "??":
			// The right side may not run: it is checked alone.
			c = p.cost(n.Left)
			p.cost(n.Right)
		default:
			c = p.cost(n.Left).plus(p.cost(n.Right))
		}
		switch n.Operator {
		case "+":
			if stringish(n.Left) || stringish(n.Right) {
				c.bytes = satAdd(c.bytes, p.strLB(n))
			}
		case "..":
			if k, ok := rangeLen(n); ok {
				c.bytes = satAdd(c.bytes, satMul(k, 8))
				if c.bytes > p.maxBytes {
					p.report(n, "this range holds %d numbers (8 bytes each): at least %d bytes, over the budget of %d bytes per event", k, c.bytes, p.maxBytes)
				}
			}
		}
	case *ast.ConditionalNode:
		c = p.cost(n.Cond).plus(minCost(p.cost(n.Exp1), p.cost(n.Exp2)))
	case *ast.BuiltinNode:
		if isLoop(n.Name) {
			c = p.loop(n)
		} else {
			c = p.children(n)
		}
	case *ast.CallNode:
		c = p.children(n)
		if name, _ := callOf(n); name == "replace" {
			c = p.replace(n, c)
		}
	default:
		c = p.children(n)
	}
	if !p.failed {
		switch {
		case c.bytes > p.maxBytes:
			p.report(n, "this expression builds at least %d bytes, over the budget of %d bytes per event", c.bytes, p.maxBytes)
		case c.steps > p.maxSteps:
			p.report(n, "this expression takes at least %d steps, over the budget of %d steps per event", c.steps, p.maxSteps)
		}
	}
	return c
}

func isLoop(name string) bool {
	_, ok := loopBuiltins[name]
	return ok
}

func (p *prover) children(n ast.Node) cost {
	var c cost
	for _, ch := range childNodes(n) {
		c = c.plus(p.cost(ch))
	}
	return c
}

// childNodes lists a node's direct children, as ast.Walk visits them.
func childNodes(node ast.Node) []ast.Node {
	switch n := node.(type) {
	case *ast.UnaryNode:
		return []ast.Node{n.Node}
	case *ast.BinaryNode:
		return []ast.Node{n.Left, n.Right}
	case *ast.ChainNode:
		return []ast.Node{n.Node}
	case *ast.MemberNode:
		return []ast.Node{n.Node, n.Property}
	case *ast.SliceNode:
		return []ast.Node{n.Node, n.From, n.To}
	case *ast.CallNode:
		return append([]ast.Node{n.Callee}, n.Arguments...)
	case *ast.BuiltinNode:
		return n.Arguments
	case *ast.PredicateNode:
		return []ast.Node{n.Node}
	case *ast.VariableDeclaratorNode:
		return []ast.Node{n.Value, n.Expr}
	case *ast.SequenceNode:
		return n.Nodes
	case *ast.ConditionalNode:
		return []ast.Node{n.Cond, n.Exp1, n.Exp2}
	case *ast.ArrayNode:
		return n.Nodes
	case *ast.MapNode:
		return n.Pairs
	case *ast.PairNode:
		return []ast.Node{n.Key, n.Value}
	}
	return nil
}

// loop: the collection, the arguments run once (reduce's initial value,
// sortBy's order), the body once per element (once for a loop that may
// stop early), and the steps the runtime counts when the loop starts.
func (p *prover) loop(n *ast.BuiltinNode) cost {
	if len(n.Arguments) == 0 {
		return cost{}
	}
	l := loopBuiltins[n.Name]
	c := p.cost(n.Arguments[0])
	var init int64
	if n.Name == "reduce" && len(n.Arguments) == 3 {
		init = p.strLB(n.Arguments[2])
	}
	var body cost
	var pred ast.Node
	saved := p.acc
	for _, a := range n.Arguments[1:] {
		if pr, ok := a.(*ast.PredicateNode); ok {
			pred = pr.Node
			p.acc = init
			body = body.plus(p.cost(pr.Node))
			p.acc = saved
		} else {
			c = c.plus(p.cost(a))
		}
	}
	if p.failed {
		return c
	}
	size, known := collLen(n.Arguments[0])
	if !known {
		return c // the body may run no time at all
	}
	w := p.weights[n]
	runs := size
	if l.shortCircuit && runs > 1 {
		runs = 1
	}
	c = c.plus(body.times(runs))
	c.steps = satAdd(c.steps, satMul(size, w))
	c.bytes = satAdd(c.bytes, satMul(size, l.bytesPerElem))
	if c.steps > p.maxSteps {
		p.report(n, "%s over %d elements takes at least %d steps (%d operations per element, and what its body runs), over the budget of %d steps per event", n.Name, size, c.steps, w, p.maxSteps)
		return c
	}
	if n.Name == "reduce" && pred != nil && size > 0 {
		// #acc + text: the accumulated text grows at every element, and
		// each concatenation copies it.
		a, g := p.lin(pred)
		acc, total := init, int64(0)
		if a >= 1 && (g > 0 || a >= 2 && acc > 0) {
			for i := int64(0); i < size && total <= p.maxBytes; i++ {
				acc = satAdd(satMul(acc, a), g)
				total = satAdd(total, acc)
			}
			if total > p.maxBytes {
				p.report(n, "reduce over %d elements grows its text by at least %d bytes at each of them, and copies it each time: at least %d bytes built, over the budget of %d bytes per event", size, g, total, p.maxBytes)
				return c
			}
		}
	}
	if c.bytes > p.maxBytes {
		p.report(n, "%s over %d elements builds at least %d bytes, over the budget of %d bytes per event", n.Name, size, c.bytes, p.maxBytes)
	}
	return c
}

// replace: the chain of replace calls with literal patterns that ends
// here, judged on its constant input or, over any other input, on one
// occurrence of the innermost pattern.
func (p *prover) replace(n ast.Node, c cost) cost {
	if p.failed {
		return c
	}
	r := p.chain(n)
	if !r.ok {
		return c
	}
	if r.over {
		if r.exact {
			p.report(n, "these replace calls build at least %d bytes, over the budget of %d bytes per event", r.total, p.maxBytes)
		} else {
			p.report(n, "these replace calls turn each %q of their input into at least %d bytes, over the budget of %d bytes per event", clipText(r.witness), r.total, p.maxBytes)
		}
		return c
	}
	if r.exact && r.total > c.bytes {
		c.bytes = r.total
	}
	return c
}

type chainResult struct {
	out     string // the text built from the input (when not over)
	total   int64  // bytes built by the chain
	exact   bool   // from a constant input, not a witness
	ok      bool   // a chain of replace calls with literal patterns
	over    bool   // passed the budget
	witness string // the input judged on, when not exact
}

func (p *prover) chain(n ast.Node) chainResult {
	switch n := n.(type) {
	case *ast.StringNode:
		return chainResult{out: n.Value, exact: true, ok: true}
	case *ast.CallNode:
		if name, args := callOf(n); name != "replace" || len(args) != 3 {
			return chainResult{}
		}
		if r, ok := p.chains[n]; ok {
			return r // each chain is built once, however deep it nests
		}
		r := p.chain1(n.Arguments)
		if p.chains == nil {
			p.chains = map[ast.Node]chainResult{}
		}
		p.chains[n] = r
		return r
	}
	return chainResult{}
}

func (p *prover) chain1(args []ast.Node) chainResult {
	old, ok1 := args[1].(*ast.StringNode)
	nw, ok2 := args[2].(*ast.StringNode)
	if !ok1 || !ok2 {
		return chainResult{}
	}
	r := p.chain(args[0])
	if !r.ok {
		// Any other input: judged on one occurrence of the pattern.
		r = chainResult{out: old.Value, ok: true, witness: old.Value}
	}
	if r.over {
		return r
	}
	size := replaceLen(r.out, old.Value, nw.Value, -1)
	r.total = satAdd(r.total, size)
	if size > p.maxBytes || r.total > p.maxBytes {
		r.over, r.out = true, ""
		return r
	}
	r.out = strings.ReplaceAll(r.out, old.Value, nw.Value)
	return r
}

// strLB is a lower bound of the length of the text n gives (0 when it may
// not be a text).
func (p *prover) strLB(n ast.Node) int64 {
	switch n := n.(type) {
	case *ast.StringNode:
		return int64(len(n.Value))
	case *ast.BinaryNode:
		if n.Operator == "+" && (stringish(n.Left) || stringish(n.Right)) {
			return satAdd(p.strLB(n.Left), p.strLB(n.Right))
		}
	case *ast.PointerNode:
		if n.Name == "acc" {
			return p.acc
		}
	case *ast.ConditionalNode:
		return min(p.strLB(n.Exp1), p.strLB(n.Exp2))
	case *ast.CallNode:
		if name, _ := callOf(n); name == "replace" {
			if r := p.chain(n); r.ok && r.exact && !r.over {
				return int64(len(r.out))
			}
		}
	}
	return 0
}

// callOf is the name and arguments of a call of a named function.
func callOf(n *ast.CallNode) (string, []ast.Node) {
	if id, ok := n.Callee.(*ast.IdentifierNode); ok {
		return id.Value, n.Arguments
	}
	return "", nil
}

// lin writes the length of the text n gives as at least a*len(#acc) + g.
func (p *prover) lin(n ast.Node) (a, g int64) {
	switch n := n.(type) {
	case *ast.PointerNode:
		if n.Name == "acc" {
			return 1, 0
		}
	case *ast.BinaryNode:
		if n.Operator == "+" && (stringish(n.Left) || stringish(n.Right)) {
			a1, g1 := p.lin(n.Left)
			a2, g2 := p.lin(n.Right)
			return satAdd(a1, a2), satAdd(g1, g2)
		}
	case *ast.ConditionalNode:
		a1, g1 := p.lin(n.Exp1)
		a2, g2 := p.lin(n.Exp2)
		return min(a1, a2), min(g1, g2)
	}
	saved := p.acc
	p.acc = 0
	defer func() { p.acc = saved }()
	return 0, p.strLB(n)
}

// stringish reports a node known to give a text.
func stringish(n ast.Node) bool {
	if _, ok := n.(*ast.StringNode); ok {
		return true
	}
	return n.Type() != nil && n.Type().Kind() == reflect.String
}

// collLen is the number of elements of a constant collection: a range
// with constant ends, a literal list.
func collLen(n ast.Node) (int64, bool) {
	switch n := n.(type) {
	case *ast.ArrayNode:
		return int64(len(n.Nodes)), true
	case *ast.BinaryNode:
		return rangeLen(n)
	}
	return 0, false
}

// rangeLen is the number of elements of a range with constant ends.
func rangeLen(n *ast.BinaryNode) (int64, bool) {
	if n.Operator != ".." {
		return 0, false
	}
	lo, ok1 := constInt(n.Left)
	hi, ok2 := constInt(n.Right)
	if !ok1 || !ok2 {
		return 0, false
	}
	if hi < lo {
		return 0, true
	}
	d := uint64(hi) - uint64(lo)
	if d >= 1<<62 {
		return 1 << 62, true
	}
	return int64(d) + 1, true
}

// constInt evaluates integer arithmetic on literals.
func constInt(n ast.Node) (int64, bool) {
	switch n := n.(type) {
	case *ast.IntegerNode:
		return int64(n.Value), true
	case *ast.UnaryNode:
		v, ok := constInt(n.Node)
		switch {
		case !ok:
		case n.Operator == "-" && v != -1<<63:
			return -v, true
		case n.Operator == "+":
			return v, true
		}
	case *ast.CallNode:
		// Checked integer arithmetic: __checked_add(a, b)...
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || len(n.Arguments) != 2 {
			return 0, false
		}
		a, ok1 := constInt(n.Arguments[0])
		b, ok2 := constInt(n.Arguments[1])
		if !ok1 || !ok2 {
			return 0, false
		}
		for _, op := range checkedOps {
			if op.name == id.Value {
				r, ok := op.fn(int(a), int(b))
				return int64(r), ok
			}
		}
	case *ast.BinaryNode:
		a, ok1 := constInt(n.Left)
		b, ok2 := constInt(n.Right)
		if !ok1 || !ok2 {
			return 0, false
		}
		for _, op := range checkedOps {
			if op.op == n.Operator {
				r, ok := op.fn(int(a), int(b))
				return int64(r), ok
			}
		}
	}
	return 0, false
}
