package runtime

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/conv"
)

// state is what became of a value or field for one event.
type state uint8

const (
	absent  state = iota // no source present: omitted, or missing when required
	present              // has an output
	invalid              // its own source breaks its rule: named in a fault
	skipped              // derived from an invalid input: never named
)

// val is a computed value: its output as a JSON value (res.Raw is the JSON
// text written into a body).
type val struct {
	st  state
	res gjson.Result
	msg string // why invalid
	// secrets are byte ranges of res.Raw holding secret fields.
	secrets [][2]int
}

func presentVal(r gjson.Result) val { return val{st: present, res: r} }

func invalidVal(format string, args ...any) val {
	return val{st: invalid, msg: fmt.Sprintf(format, args...)}
}

type fault struct {
	path    string
	missing bool
	msg     string
}

// evalCtx is the scratch state of one evaluation, pooled.
type evalCtx struct {
	in       *Integration
	ev       *engine.Event
	event    []byte
	name     string
	values   []val
	done     []bool
	faults   []fault
	warnings []string
	idx      []int
	vm       vm.VM
	buf      []byte
	resp     *responseCtx // set while a response rule runs
}

var ctxPool = sync.Pool{New: func() any { return new(evalCtx) }}

// objScope is where a field is evaluated: its siblings' outputs, and the
// current array item for paths inside items.
type objScope struct {
	item    gjson.Result
	hasItem bool
	fields  []val
}

// Evaluate decides what to do with one event, given as raw JSON. It never
// panics and never blocks; see the package documentation for the order of
// checks.
func (in *Integration) Evaluate(event []byte) (res Result) {
	res.red = in.red
	defer func() {
		if r := recover(); r != nil {
			// A bug, not bad input: refuse the event rather than crash the
			// delivery pipeline, and say so.
			res = Result{Outcome: Reject, Reason: ReasonInvalidEvent, red: in.red,
				Message: fmt.Sprintf("internal error while evaluating the event: %v", r)}
		}
		// Messages and names echo event data, which may hold a secret.
		res.Message = in.red.String(res.Message)
		res.Event = in.red.String(res.Event)
	}()
	if msg := in.checkEvent(event); msg != "" {
		return Result{Outcome: Reject, Reason: ReasonInvalidEvent, Message: msg, red: in.red}
	}
	typ := gjson.GetBytes(event, "type")
	if typ.Exists() && typ.Type != gjson.Null && !(typ.Type == gjson.String && typ.Str == "") {
		if typ.Type != gjson.String {
			return skip(&res, ReasonEventNotMapped, "only track events are mapped; this event's type is %s", describe(typ))
		}
		if !strings.EqualFold(strings.TrimSpace(typ.Str), "track") {
			return skip(&res, ReasonEventNotMapped, "only track events are mapped; this is a %q event", truncate(typ.Str, 40))
		}
	}
	name := gjson.GetBytes(event, "event")
	if name.Type != gjson.String || strings.TrimSpace(name.Str) == "" {
		return skip(&res, ReasonEventNotMapped, "the track event has no event name")
	}
	res.Event = name.Str
	var keyBuf [64]byte
	key := conv.AppendNormalizedName(keyBuf[:0], name.Str)
	ev := in.variant.Lookup(string(key))
	if ev == nil {
		return skip(&res, ReasonEventNotMapped, "event %q is not in the event map of %s variant %s", name.Str, in.bp.Ref(), in.variant.Key)
	}
	res.VendorEvent = ev.VendorEvent

	c := ctxPool.Get().(*evalCtx)
	defer c.release()
	c.reset(in, ev, event, name.Str)

	if ev.Filter != nil {
		ok, err := c.runBool(ev.Filter, &objScope{})
		if err == nil && !ok {
			return skip(&res, ReasonFiltered, "the mapping's filter is false")
		}
	}
	if cs := in.bp.Consent; cs != nil {
		granted, decided := c.consent(cs)
		if !decided {
			granted = cs.Allow
		}
		if !granted {
			if decided {
				return skip(&res, ReasonConsentDenied, "%s consent is denied", cs.Category)
			}
			return skip(&res, ReasonConsentDenied, "%s consent is missing, and missing means denied", cs.Category)
		}
	}
	req := ev.Request
	body := c.object(req.Body, &objScope{}, "")
	out := &Request{Method: req.Method, spec: req}
	out.URL = string(c.template(req.URL, nil, "the URL"))
	if len(c.faults) > 0 {
		return c.reject(&res)
	}
	hasCT := false
	for _, h := range req.Headers {
		v := string(c.template(h.Value, nil, "header "+h.Name))
		out.Headers = append(out.Headers, Header{Name: h.Name, Value: v, Secret: h.Secret})
		hasCT = hasCT || strings.EqualFold(h.Name, "Content-Type")
	}
	if a := req.Auth; a != nil {
		c.auth(a, out)
	}
	if len(c.faults) > 0 {
		return c.reject(&res)
	}
	if body.st == present {
		out.Body = []byte(body.res.Raw)
		out.secretRanges = body.secrets
		if !hasCT {
			out.Headers = append(out.Headers, Header{Name: "Content-Type", Value: "application/json"})
		}
	} else {
		out.Body = []byte("{}")
	}
	res.Outcome = Deliver
	res.Requests = []*Request{out}
	res.Warnings = append([]string(nil), c.warnings...)
	return res
}

func skip(res *Result, reason, format string, args ...any) Result {
	res.Outcome = Skip
	res.Reason = reason
	res.Message = fmt.Sprintf(format, args...)
	return *res
}

func (c *evalCtx) reset(in *Integration, ev *engine.Event, event []byte, name string) {
	c.in, c.ev, c.event, c.name = in, ev, event, name
	n := len(in.bp.Values)
	if cap(c.values) < n {
		c.values = make([]val, n)
		c.done = make([]bool, n)
	}
	c.values = c.values[:n]
	c.done = c.done[:n]
	clear(c.done)
	c.faults = c.faults[:0]
	c.warnings = c.warnings[:0]
	c.idx = c.idx[:0]
}

func (c *evalCtx) release() {
	c.in, c.ev, c.event, c.resp = nil, nil, nil, nil
	clear(c.values)
	ctxPool.Put(c)
}

// reject turns the collected faults into a result: missing fields first.
func (c *evalCtx) reject(res *Result) Result {
	var missing, bad []fault
	for _, f := range c.faults {
		if f.missing {
			missing = append(missing, f)
		} else {
			bad = append(bad, f)
		}
	}
	res.Outcome = Reject
	list := bad
	res.Reason = ReasonInvalidField
	if len(missing) > 0 {
		list = missing
		res.Reason = ReasonMissingRequiredField
	}
	var msgs []string
	for _, f := range list {
		res.Fields = append(res.Fields, f.path)
		if f.missing {
			msgs = append(msgs, f.path+" is missing")
		} else {
			msgs = append(msgs, f.path+": "+f.msg)
		}
	}
	res.Message = strings.Join(msgs, "; ")
	return *res
}

// checkEvent returns why an event cannot be read, or "".
func (in *Integration) checkEvent(b []byte) string {
	if len(b) > in.opts.MaxEventSize {
		return fmt.Sprintf("event is %d bytes; the limit is %d", len(b), in.opts.MaxEventSize)
	}
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i == len(b) {
		return "event is empty"
	}
	if !utf8.Valid(b) {
		return "event is not valid UTF-8"
	}
	// Depth first: it is one cheap pass, and it keeps the validator's
	// recursion shallow on hostile input.
	if d := depth(b); d > in.opts.MaxDepth {
		return fmt.Sprintf("event nests %d levels deep; the limit is %d", d, in.opts.MaxDepth)
	}
	if !gjson.ValidBytes(b) {
		return "event is not well-formed JSON (malformed, truncated, or followed by more data)"
	}
	if b[i] != '{' {
		return fmt.Sprintf("event is %s, not a JSON object", describe(gjson.ParseBytes(b)))
	}
	return ""
}

// depth returns the deepest nesting of objects and arrays in valid JSON.
func depth(b []byte) int {
	d, deepest := 0, 0
	inStr := false
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if inStr {
			switch ch {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch ch {
		case '"':
			inStr = true
		case '{', '[':
			d++
			deepest = max(deepest, d)
		case '}', ']':
			d--
		}
	}
	return deepest
}

func describe(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return fmt.Sprintf("a string (%q)", truncate(r.Str, 40))
	case gjson.Number:
		return "a number"
	case gjson.True, gjson.False:
		return "a boolean"
	case gjson.Null:
		return "null"
	}
	if r.IsArray() {
		return "a list"
	}
	if r.IsObject() {
		return "an object"
	}
	return "nothing"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// consent reads the consent decision: granted, and whether anything decided.
func (c *evalCtx) consent(cs *engine.Consent) (granted, decided bool) {
	if cs.Expr != nil {
		out, err := c.runExpr(cs.Expr, &objScope{})
		if err == nil && out.st == present {
			switch out.res.Type {
			case gjson.True:
				return true, true
			case gjson.False:
				return false, true
			}
		}
		return false, false
	}
	for _, p := range cs.Paths {
		switch gjson.GetBytes(c.event, p).Type {
		case gjson.True:
			return true, true
		case gjson.False:
			return false, true
		}
	}
	return false, false
}

// value computes a shared value once per event.
func (c *evalCtx) value(v *engine.Value) val {
	if c.done[v.Index] {
		return c.values[v.Index]
	}
	var out val
	switch {
	case v.Name == engine.ValueVendorEvent:
		out = presentVal(strResult(c.ev.VendorEvent))
	case v.Name == engine.ValueSourceEvent:
		out = presentVal(strResult(c.name))
	default:
		out = c.spec(&v.Spec, &objScope{})
	}
	c.values[v.Index] = out
	c.done[v.Index] = true
	return out
}

// spec selects the first present source and applies the type rule.
func (c *evalCtx) spec(s *engine.Spec, sc *objScope) val {
	in := c.selectSource(s, sc)
	if in.st != present {
		return in
	}
	return c.rule(&s.Type, in.res)
}

// selectSource returns the first present source (or the default), without
// the type rule.
func (c *evalCtx) selectSource(s *engine.Spec, sc *objScope) val {
	for i := range s.Sources {
		v := c.source(&s.Sources[i], sc)
		if v.st != absent {
			return v
		}
	}
	if s.Default != nil {
		return presentVal(gjson.ParseBytes(s.Default))
	}
	return val{}
}

func (c *evalCtx) source(src *engine.Source, sc *objScope) val {
	var r gjson.Result
	switch src.Kind {
	case engine.SourcePath:
		if sc.hasItem {
			r = sc.item.Get(src.Path)
		} else {
			r = gjson.GetBytes(c.event, src.Path)
		}
	case engine.SourceValue:
		v := c.value(src.Value)
		if v.st != present {
			return v
		}
		r = v.res
	case engine.SourceConfig:
		x, ok := c.in.config[src.Config]
		if !ok {
			return val{}
		}
		r = goResult(x)
	case engine.SourceConst:
		r = gjson.ParseBytes(src.Const)
	case engine.SourceExpr:
		v, _ := c.runExpr(src.Expr, sc)
		if v.st != present {
			return v
		}
		r = v.res
	}
	if isAbsent(r) {
		return val{}
	}
	return presentVal(r)
}

// isAbsent: a missing key, null, "" and [] count as absent.
func isAbsent(r gjson.Result) bool {
	switch r.Type {
	case gjson.Null:
		return true
	case gjson.String:
		return r.Str == ""
	case gjson.JSON:
		if len(r.Raw) > 0 && r.Raw[0] == '[' {
			return strings.TrimSpace(r.Raw[1:len(r.Raw)-1]) == ""
		}
	}
	return false
}

// object evaluates the fields of an object and writes it.
func (c *evalCtx) object(o *engine.Object, parent *objScope, _ string) val {
	sc := &objScope{item: parent.item, hasItem: parent.hasItem, fields: make([]val, len(o.Fields))}
	mark := len(c.faults)
	wmark := len(c.warnings)
	for _, i := range o.Order {
		f := o.Fields[i]
		v := c.field(f, sc)
		sc.fields[i] = v
		switch v.st {
		case invalid:
			c.faults = append(c.faults, fault{path: c.render(f.Path), msg: v.msg})
		case absent:
			if f.Required {
				c.faults = append(c.faults, fault{path: c.render(f.Path), missing: true})
			} else if f.WarnIfAbsent != "" && !contains(c.warnings, f.WarnIfAbsent) {
				c.warnings = append(c.warnings, f.WarnIfAbsent)
			}
		}
	}
	for _, i := range o.OmitUnless {
		if sc.fields[i].st != present {
			c.faults = c.faults[:mark]
			c.warnings = c.warnings[:wmark]
			return val{}
		}
	}
	var b []byte
	var secrets [][2]int
	b = append(b, '{')
	n := 0
	for i, f := range o.Fields {
		v := sc.fields[i]
		if v.st != present {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendJSONString(b, f.Name)
		b = append(b, ':')
		start := len(b)
		for _, s := range v.secrets {
			secrets = append(secrets, [2]int{start + s[0], start + s[1]})
		}
		b = append(b, v.res.Raw...)
		if f.Secret {
			secrets = append(secrets, [2]int{start, len(b)})
		}
	}
	if n == 0 {
		return val{}
	}
	b = append(b, '}')
	return val{st: present, res: gjson.Result{Type: gjson.JSON, Raw: string(b)}, secrets: secrets}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// field evaluates one field in its object's scope.
func (c *evalCtx) field(f *engine.Field, sc *objScope) val {
	var v val
	switch {
	case f.Type.Kind == engine.KindObject && f.Object != nil:
		v = c.object(f.Object, sc, f.Path)
	case f.Type.Kind == engine.KindArray && f.Object != nil:
		v = c.items(f, sc)
	default:
		v = c.spec(&f.Spec, sc)
	}
	if v.st == present && f.List {
		v.res = gjson.Result{Type: gjson.JSON, Raw: "[" + v.res.Raw + "]"}
		for i := range v.secrets {
			v.secrets[i][0]++
			v.secrets[i][1]++
		}
	}
	return v
}

// items maps an array item by item.
func (c *evalCtx) items(f *engine.Field, sc *objScope) val {
	in := c.selectSource(&f.Spec, sc)
	if in.st != present {
		return in
	}
	if !in.res.IsArray() {
		return invalidVal("expected a list, got %s", describe(in.res))
	}
	var b []byte
	var secrets [][2]int
	b = append(b, '[')
	i := 0
	in.res.ForEach(func(_, item gjson.Result) bool {
		if i > 0 {
			b = append(b, ',')
		}
		if !item.IsObject() {
			c.faults = append(c.faults, fault{path: c.render(f.Path) + "[" + strconv.Itoa(i) + "]", msg: "expected an object, got " + describe(item)})
			b = append(b, "null"...)
			i++
			return true
		}
		c.idx = append(c.idx, i)
		v := c.object(f.Object, &objScope{item: item, hasItem: true}, f.Path)
		c.idx = c.idx[:len(c.idx)-1]
		start := len(b)
		if v.st == present {
			for _, s := range v.secrets {
				secrets = append(secrets, [2]int{start + s[0], start + s[1]})
			}
			b = append(b, v.res.Raw...)
		} else {
			b = append(b, "{}"...)
		}
		i++
		return true
	})
	b = append(b, ']')
	return val{st: present, res: gjson.Result{Type: gjson.JSON, Raw: string(b)}, secrets: secrets}
}

// render writes a field path with the current item indices:
// line_items[].total -> line_items[1].total.
func (c *evalCtx) render(path string) string {
	if !strings.Contains(path, "[]") {
		return path
	}
	var b strings.Builder
	k := 0
	for {
		i := strings.Index(path, "[]")
		if i < 0 || k >= len(c.idx) {
			b.WriteString(path)
			return b.String()
		}
		b.WriteString(path[:i])
		b.WriteString("[" + strconv.Itoa(c.idx[k]) + "]")
		k++
		path = path[i+2:]
	}
}

// template renders a template; an absent value in it is a missing field
// named after the value.
func (c *evalCtx) template(t *engine.Template, dst []byte, where string) []byte {
	for _, p := range t.Parts {
		switch {
		case p.Config != "":
			s, ok := c.in.configText[p.Config]
			if !ok {
				c.faults = append(c.faults, fault{path: p.Config, missing: true})
				continue
			}
			dst = appendEscaped(dst, s, p.Escape)
		case p.Value != nil:
			v := c.value(p.Value)
			switch v.st {
			case present:
				s := v.res.Raw
				if v.res.Type == gjson.String {
					s = v.res.Str
				}
				dst = appendEscaped(dst, s, p.Escape)
			case invalid:
				c.faults = append(c.faults, fault{path: p.Value.Name, msg: v.msg + " (in " + where + ")"})
			default:
				c.faults = append(c.faults, fault{path: p.Value.Name, missing: true})
			}
		default:
			dst = append(dst, p.Literal...)
		}
	}
	return dst
}

func appendEscaped(dst []byte, s string, e engine.Escape) []byte {
	switch e {
	case engine.EscapePath:
		return append(dst, url.PathEscape(s)...)
	case engine.EscapeQuery:
		return append(dst, url.QueryEscape(s)...)
	}
	return append(dst, s...)
}

func (c *evalCtx) auth(a *engine.Auth, out *Request) {
	render := func(t *engine.Template) string {
		if t == nil {
			return ""
		}
		return string(c.template(t, nil, "auth"))
	}
	switch a.Type {
	case engine.AuthBasic:
		cred := render(a.Username) + ":" + render(a.Password)
		out.Headers = append(out.Headers, Header{Name: "Authorization", Value: "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)), Secret: true})
	case engine.AuthBearer:
		out.Headers = append(out.Headers, Header{Name: "Authorization", Value: "Bearer " + render(a.Token), Secret: true})
	case engine.AuthHeader:
		out.Headers = append(out.Headers, Header{Name: a.Name, Value: render(a.Value), Secret: true})
	case engine.AuthQuery:
		sep := "?"
		if strings.Contains(out.URL, "?") {
			sep = "&"
		}
		out.URL += sep + url.QueryEscape(a.Name) + "=" + url.QueryEscape(render(a.Value))
		out.secretQuery = url.QueryEscape(a.Name)
	}
}
