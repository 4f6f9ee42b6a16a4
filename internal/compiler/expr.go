package compiler

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/checker"
	exprcompiler "github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"
	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/suggest"
)

// An expression reads its inputs through five roots:
//
//	event.PATH   the raw event (the path becomes a gjson path at compile time)
//	item.PATH    the current array item (inside items only)
//	config.KEY   a config value
//	values.NAME  a shared value
//	fields.NAME  a sibling field's output (inside a body only)
//
// The compiler rewrites each maximal constant member chain on a root into
// one variable of the program's environment, so the runtime resolves only
// what an expression reads, once, and never unmarshals the whole event.

// scope is what an expression may read where it is written.
type scope struct {
	item     bool // item.* is available
	response bool // a response rule: status, body, headers only
	// configOnly: an expression decided once per integration, at Bind:
	// config only.
	configOnly bool
	fields     map[string]int // sibling fields by name; nil: fields.* unavailable
	kinds      []Kind         // kinds of the sibling fields
	secrets    []bool         // which sibling fields are secret: true
	self       int            // index of the field being compiled, or -1
	where      string         // e.g. "field order_id", for messages

	// Collected while compiling.
	fieldDeps []int
	values    []*Value
	secret    bool // reads a secret config key or a secret-derived value
}

const inputPrefix = "_in"

var roots = []string{"event", "item", "config", "values", "fields"}

// compileExpr compiles the expression held by scalar node n.
func (c *compiler) compileExpr(n *yaml.Node, sc *scope) *Expr {
	text := n.Value
	cfg := conf.CreateNew()
	for _, op := range exprOptions {
		op(cfg)
	}
	expr.AllowUndefinedVariables()(cfg)
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.MaxNodes = 2000

	tree, err := parseExpr(text, cfg)
	if err != nil {
		c.exprError(n, err, "expr_syntax")
		return nil
	}
	rw := &rewriter{c: c, sc: sc, node: n, callees: map[*ast.IdentifierNode]bool{}, locals: map[string]bool{}, mine: map[*ast.IdentifierNode]int{}}
	ast.Walk(&tree.Node, &prepass{rw})
	ast.Walk(&tree.Node, rw)
	for _, k := range rw.pending {
		in := rw.inputs[k]
		c.errorAtOffset(n, rw.pendingLoc[k], "invalid_reference",
			"%s must be followed by a name, as in %s.%s", in.Name, in.Name, exampleName(in.Name))
		rw.failed = true
	}
	if rw.failed {
		return nil
	}
	env := map[string]any{}
	for _, in := range rw.inputs {
		if zero := c.inputZero(in, sc); zero != nil {
			env[in.Name] = zero
		}
	}
	cfg.WithEnv(env)
	cfg.Strict = false // inputs of unknown type are left undeclared
	cfg.Check()
	// A first check of the tree as written: PatchAndCheck checks it once
	// before patching and then skips the arguments of every call it has
	// typed, so a type error inside a function's arguments
	// (sha256_hex(upper(1))) went unreported.
	if _, err := new(checker.Checker).Check(tree, cfg); err != nil {
		c.exprError(n, err, "expr_type")
		return nil
	}
	if _, err := new(checker.Checker).PatchAndCheck(tree, cfg); err != nil {
		c.exprError(n, err, "expr_type")
		return nil
	}
	if !c.literalPatterns(n, tree.Node) {
		return nil
	}
	// Bound what it builds and does per event: refuse what provably
	// exceeds the budget, make every costly operation charge it (see
	// budget.go).
	weights, folded := loopWeights(tree.Node), foldedNodes(tree.Node)
	if !c.proveBudget(n, tree.Node, weights, folded) {
		return nil
	}
	budgetPatch(&tree.Node, cfg, weights, folded)
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			c.exprError(n, err, "expr_type")
			return nil
		}
	}
	prog, err := exprcompiler.Compile(tree, cfg)
	if err != nil {
		c.exprError(n, err, "expr_type")
		return nil
	}
	e := &Expr{Text: text, Pos: c.pos(n), Program: prog, Inputs: rw.inputs}
	e.Arith = arithOf(prog.Node(), rw.inputs)
	return e
}

// literalPatterns checks, when the blueprint compiles, each pattern
// written as a literal in a call of regex_replace.
func (c *compiler) literalPatterns(n *yaml.Node, root ast.Node) bool {
	ok := true
	ast.Find(root, func(x ast.Node) bool {
		call, isCall := x.(*ast.CallNode)
		if !isCall || len(call.Arguments) < 2 {
			return false
		}
		id, _ := call.Callee.(*ast.IdentifierNode)
		if id == nil || id.Value != "regex_replace" && id.Value != "regex_find" {
			return false
		}
		if p, lit := call.Arguments[1].(*ast.StringNode); lit {
			if _, err := regexp.Compile(p.Value); err != nil {
				c.errorAtOffset(n, p.Location().From, "invalid_pattern", "%s: pattern %q is not a valid RE2 regular expression: %s", id.Value, p.Value, reErr(err))
				ok = false
			}
		}
		return false
	})
	return ok
}

// arithOf recognises an expression that is one checked integer operation
// on two inputs.
func arithOf(n ast.Node, inputs []Input) *Arith {
	call, ok := n.(*ast.CallNode)
	if !ok || len(call.Arguments) != 2 {
		return nil
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok {
		return nil
	}
	var op byte
	for _, c := range checkedOps {
		if c.name == id.Value {
			op = c.op[0]
		}
	}
	if op == 0 {
		return nil
	}
	arg := func(a ast.Node) int {
		x, ok := a.(*ast.IdentifierNode)
		if !ok {
			return -1
		}
		for i, in := range inputs {
			if in.Name == x.Value {
				return i
			}
		}
		return -1
	}
	a, b := arg(call.Arguments[0]), arg(call.Arguments[1])
	if a < 0 || b < 0 {
		return nil
	}
	return &Arith{Op: op, A: a, B: b}
}

func parseExpr(text string, cfg *conf.Config) (tree *parser.Tree, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("expression cannot be parsed: %v", r)
		}
	}()
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("expression is empty")
	}
	return parser.ParseWithConfig(text, cfg)
}

func exampleName(root string) string {
	switch root {
	case "config":
		return "api_key"
	case "values":
		return "user_id"
	case "headers":
		return "location"
	}
	return "amount"
}

// inputZero returns a typed zero value declaring an input's type to the
// checker, or nil for inputs of unknown type.
func (c *compiler) inputZero(in Input, sc *scope) any {
	switch in.Kind {
	case InputConfig:
		if f := c.config[in.Config]; f != nil {
			switch f.Type {
			case ConfigInteger:
				return 0
			case ConfigNumber:
				return 0.0
			case ConfigBoolean:
				return false
			}
			return ""
		}
	case InputValue:
		if in.Value != nil {
			return kindZero(in.Value.Type.Kind)
		}
	case InputField:
		if in.Field >= 0 && in.Field < len(sc.kinds) {
			return kindZero(sc.kinds[in.Field])
		}
	case InputStatus:
		return 0
	case InputHeader, InputText:
		return ""
	}
	return nil
}

func kindZero(k Kind) any {
	switch k {
	case KindString, KindID, KindCurrency, KindTime, KindEmailSHA256:
		return ""
	case KindInteger, KindMoney:
		return 0
	case KindNumber, KindDecimal:
		return 0.0
	case KindBoolean:
		return false
	}
	return nil
}

// prepass marks identifiers that are not variables: function names and
// variables bound by let.
type prepass struct{ rw *rewriter }

func (p *prepass) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		if id, ok := n.Callee.(*ast.IdentifierNode); ok {
			p.rw.callees[id] = true
		}
	case *ast.VariableDeclaratorNode:
		p.rw.locals[n.Name] = true
	}
}

type rewriter struct {
	c       *compiler
	sc      *scope
	node    *yaml.Node
	callees map[*ast.IdentifierNode]bool
	locals  map[string]bool
	mine    map[*ast.IdentifierNode]int // variables this rewriter made

	inputs     []Input
	pending    []int // namespace roots (config, values, fields) awaiting a name
	pendingLoc map[int]int
	failed     bool
}

func (r *rewriter) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		r.identifier(node, n)
	case *ast.MemberNode:
		r.member(node, n)
	}
}

func (r *rewriter) identifier(node *ast.Node, n *ast.IdentifierNode) {
	if r.callees[n] {
		if !knownFunction(n.Value) {
			r.fail(n, "unknown_function", "unknown function %s%s", n.Value, suggest.DidYouMean(n.Value, functionNames()))
		}
		return
	}
	if r.locals[n.Value] {
		return
	}
	var in Input
	if r.sc.response {
		switch n.Value {
		case "status":
			in.Kind = InputStatus
		case "body":
			in.Kind = InputBody
		case "headers":
			in.Kind = InputHeader
		case "text":
			in.Kind = InputText
		default:
			r.fail(n, "unknown_name", "unknown name %s (a response rule reads status, body, text, headers)%s", n.Value, suggest.DidYouMean(n.Value, []string{"status", "body", "text", "headers"}))
			return
		}
		k := len(r.inputs)
		in.Name = inputPrefix + strconv.Itoa(k)
		r.inputs = append(r.inputs, in)
		if in.Kind == InputHeader {
			r.inputs[k].Name = n.Value
			r.pending = append(r.pending, k)
			if r.pendingLoc == nil {
				r.pendingLoc = map[int]int{}
			}
			r.pendingLoc[k] = n.Location().From
		}
		r.patch(node, k)
		return
	}
	if r.sc.configOnly && n.Value != "config" {
		r.fail(n, "unknown_name", "%s is decided once per integration, from config: it reads config only, not %s", r.sc.where, n.Value)
		return
	}
	switch n.Value {
	case "event":
		in.Kind = InputEvent
	case "item":
		if !r.sc.item {
			r.fail(n, "unknown_name", "item is only available inside items")
			return
		}
		in.Kind = InputItem
	case "config":
		in.Kind = InputConfig
	case "values":
		in.Kind = InputValue
	case "fields":
		if r.sc.fields == nil {
			r.fail(n, "unknown_name", "fields is only available in request body fields")
			return
		}
		in.Kind = InputField
	default:
		r.fail(n, "unknown_name", "unknown name %s (an expression reads event, config, values%s)%s",
			n.Value, map[bool]string{true: ", fields", false: ""}[r.sc.fields != nil], suggest.DidYouMean(n.Value, roots))
		return
	}
	k := len(r.inputs)
	in.Name = inputPrefix + strconv.Itoa(k)
	r.inputs = append(r.inputs, in)
	if in.Kind == InputConfig || in.Kind == InputValue || in.Kind == InputField {
		r.inputs[k].Name = n.Value // keeps the root name until resolved
		r.pending = append(r.pending, k)
		if r.pendingLoc == nil {
			r.pendingLoc = map[int]int{}
		}
		r.pendingLoc[k] = n.Location().From
	}
	r.patch(node, k)
}

// patch replaces node with the variable of input k.
func (r *rewriter) patch(node *ast.Node, k int) {
	id := &ast.IdentifierNode{Value: inputPrefix + strconv.Itoa(k)}
	ast.Patch(node, id)
	r.mine[id] = k
}

func (r *rewriter) member(node *ast.Node, n *ast.MemberNode) {
	id, ok := n.Node.(*ast.IdentifierNode)
	if !ok || n.Method {
		return
	}
	k, ok := r.mine[id]
	if !ok {
		return
	}
	var prop string
	switch p := n.Property.(type) {
	case *ast.StringNode:
		prop = p.Value
	case *ast.IntegerNode:
		if p.Value < 0 {
			return
		}
		prop = strconv.Itoa(p.Value)
	default:
		return // dynamic access on the resolved value
	}
	pending := r.removePending(k)
	in := &r.inputs[k]
	switch in.Kind {
	case InputStatus:
		return
	case InputHeader:
		if !pending {
			return
		}
		in.Path = strings.ToLower(prop)
		in.Name = id.Value
	case InputEvent, InputItem, InputBody:
		if in.Path != "" {
			in.Path += "."
		}
		in.Path += escapePath(prop)
	default:
		if !pending {
			return // member access on a resolved value
		}
		r.resolve(in, n, prop)
		in.Name = id.Value
	}
	r.patch(node, k)
}

func (r *rewriter) removePending(k int) bool {
	for i, p := range r.pending {
		if p == k {
			r.pending = append(r.pending[:i], r.pending[i+1:]...)
			return true
		}
	}
	return false
}

func (r *rewriter) resolve(in *Input, n ast.Node, name string) {
	c, sc := r.c, r.sc
	switch in.Kind {
	case InputConfig:
		f := c.config[name]
		if f == nil {
			r.fail(n, "unknown_config", "unknown config key %s%s", name, suggest.DidYouMean(name, c.configKeys()))
			return
		}
		in.Config = name
		if f.Secret() {
			sc.secret = true
		}
	case InputValue:
		v := c.valueRef(name, r.node, r.offsetPos(n))
		if v == nil {
			r.failed = true
			return
		}
		in.Value = v
		sc.values = append(sc.values, v)
		if c.secretValue[v] {
			sc.secret = true
		}
	case InputField:
		i, ok := sc.fields[name]
		if !ok {
			r.fail(n, "unknown_field", "unknown field %s%s", name, suggest.DidYouMean(name, keysOf(sc.fields)))
			return
		}
		if i == sc.self {
			r.fail(n, "field_cycle", "field %s reads itself", name)
			return
		}
		in.Field = i
		sc.fieldDeps = append(sc.fieldDeps, i)
		if i < len(sc.secrets) && sc.secrets[i] {
			sc.secret = true // a value computed from a secret field is secret
		}
	}
}

func (r *rewriter) fail(n ast.Node, code, format string, args ...any) {
	r.failed = true
	r.c.ds.Errorf(r.offsetPos(n), code, format, args...)
}

func (r *rewriter) offsetPos(n ast.Node) diag.Pos {
	return r.c.exprPos(r.node, n.Location().From)
}

func (c *compiler) errorAtOffset(n *yaml.Node, offset int, code, format string, args ...any) {
	c.ds.Errorf(c.exprPos(n, offset), code, format, args...)
}

// exprError reports an expr-lang error at its position inside the YAML
// file.
func (c *compiler) exprError(n *yaml.Node, err error, code string) {
	var fe *file.Error
	if errors.As(err, &fe) {
		msg := strings.TrimSpace(fe.Message)
		msg = strings.Replace(msg, "unexpected token EOF", "unexpected end of the expression", 1)
		if strings.HasPrefix(msg, "unknown func") || strings.HasPrefix(msg, "unknown name") {
			code = "unknown_function"
		}
		c.ds.Errorf(c.exprPos(n, fe.From), code, "%s", msg)
		return
	}
	c.ds.Errorf(c.exprPos(n, 0), code, "%s", err.Error())
}

// exprPos maps a rune offset inside the text held by scalar node n (an
// expression, a template, a path) to its line and column in the YAML file.
// It walks the source from the scalar's first character, matching the
// value's non-space runes in order, and reading escapes ("\"" in double
// quotes, ” in single quotes) as the one rune they stand for: exact for
// plain, quoted, literal and folded scalars, single- or multi-line. An
// offset at the end of the text maps just after its last character.
func (c *compiler) exprPos(n *yaml.Node, offset int) diag.Pos {
	p := c.pos(n)
	src := c.srcOf(n)
	if src == nil || n.Line < 1 {
		return p
	}
	// Count the non-space runes of the value before offset.
	want, total := 0, 0
	for i, r := range []rune(n.Value) {
		if unicode.IsSpace(r) {
			continue
		}
		if i < offset {
			want++
		}
		total++
	}
	atEnd := want >= total
	at := lineOffset(src, n.Line)
	if at < 0 {
		return p
	}
	for col := 1; col < n.Column && at < len(src); col++ {
		_, size := utf8.DecodeRune(src[at:])
		at += size
	}
	line, col := n.Line, n.Column
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// Skip the header line (| or > with indicators and a comment).
		for at < len(src) && src[at] != '\n' {
			at++
		}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		at++
		col++
	}
	seen := 0
	last := diag.Pos{File: p.File, Line: line, Col: col}
	for at < len(src) && (atEnd && seen < total || !atEnd) {
		r, size := utf8.DecodeRune(src[at:])
		width := 1 // columns the rune and its escape take
		switch {
		case n.Style == yaml.DoubleQuotedStyle && r == '\\' && at+1 < len(src):
			size, width = escapeLen(src[at:])
		case n.Style == yaml.SingleQuotedStyle && r == '\'' && at+1 < len(src) && src[at+1] == '\'':
			size, width = 2, 2
		}
		switch {
		case r == '\n':
			line++
			col = 0
		case unicode.IsSpace(r):
		default:
			if seen == want && !atEnd {
				return diag.Pos{File: p.File, Line: line, Col: col}
			}
			seen++
			last = diag.Pos{File: p.File, Line: line, Col: col + width}
		}
		at += size
		col += width
	}
	if atEnd {
		return last
	}
	return p
}

// escapeLen is the byte length of a double-quoted escape (\", \x41,
// \u00e9...) and the columns it takes.
func escapeLen(b []byte) (size, width int) {
	n := 2
	switch b[1] {
	case 'x':
		n = 4
	case 'u':
		n = 6
	case 'U':
		n = 10
	}
	if n > len(b) {
		n = len(b)
	}
	return n, n
}

func lineOffset(src []byte, line int) int {
	at := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(string(src[at:]), '\n')
		if i < 0 {
			return -1
		}
		at += i + 1
	}
	return at
}

func knownFunction(name string) bool {
	for _, f := range functions {
		if f.Name == name {
			return true
		}
	}
	for _, d := range builtinsDisabled {
		if d == name {
			return false
		}
	}
	_, ok := builtin.Index[name]
	return ok
}

func functionNames() []string {
	var names []string
	for _, f := range functions {
		names = append(names, f.Name)
	}
	for name := range builtin.Index {
		names = append(names, name)
	}
	return names
}

// escapePath escapes one path segment for gjson.
func escapePath(s string) string { return gjson.Escape(s) }

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
