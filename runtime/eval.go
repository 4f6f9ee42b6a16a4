package runtime

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/expr-lang/expr/vm"
	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/conv"
	"github.com/blueprint-engine/blueprint/internal/encoding"
)

type fault struct {
	path    string
	missing bool
	msg     string
	// derived: the field is invalid only because a shared value it reads
	// is (derivedPrefix). Such faults are named only when nothing else
	// is: they keep the event from going out without the field, and
	// would only repeat a fault named at its source.
	derived bool
}

// maxVendorEvent bounds a computed vendor event, in bytes.
const maxVendorEvent = 255

// secretFaultMsg stands for the message of an invalid secret field or
// secret header: what is wrong with it would show its value.
const secretFaultMsg = "its value is invalid (not shown: it may carry a secret)"

// hideFaults replaces the messages of the faults since fmark with
// secretFaultMsg (those of a secret header's template).
func (c *evalCtx) hideFaults(fmark int) {
	for i := fmark; i < len(c.faults); i++ {
		if !c.faults[i].missing {
			c.faults[i].msg = secretFaultMsg
		}
	}
}

// derivedPrefix starts the message of a field made invalid by an invalid
// shared value it reads (see runExpr).
const derivedPrefix = "reads values."

// maxNamedFields bounds the fields a reject names (as compiler
// diagnostics are bounded): past it, faults are counted, not kept, and the
// result says how many more there are. A 1 MiB event can hold 500 000
// faulty items; naming them all made a 40 MB result.
const maxNamedFields = 100

// room counts a fault of its kind and reports whether it is kept (the
// first maxNamedFields of each kind are): callers build a fault's path and
// message only when it is.
func (c *evalCtx) room(missing bool) bool {
	if missing {
		c.nMissing++
		return c.nMissing <= maxNamedFields
	}
	c.nBad++
	return c.nBad <= maxNamedFields
}

// addFault keeps a fault when there is room for it.
func (c *evalCtx) addFault(f fault) {
	if c.room(f.missing) {
		c.faults = append(c.faults, f)
	}
}

// evalCtx is the scratch state of one evaluation, pooled.
type evalCtx struct {
	in       *Integration
	ev       *compiler.Event
	event    []byte
	name     []byte
	slots    []span
	values   []rv
	done     []bool
	faults   []fault
	warnings []string
	idx      []int
	stack    []rv // sibling fields of the objects being written
	out      []byte
	secrets  [][2]int
	scratch  []byte
	num      [32]byte
	sc       scanner
	none     []span // an item window where nothing was recorded
	top      scope  // the event's scope: its slots, no fields
	scopes   []*scope
	kind     string // the event's type, lower case ("" when not text)
	looked   bool   // found is the mapping of the event's name
	found    *compiler.Event
	vm       vm.VM
	budget   compiler.Budget // what this evaluation's expressions may still build and do
	resp     *responseCtx    // set while a response rule runs
	// nMissing and nBad count the faults of each kind, kept or not.
	nMissing, nBad int
	// kept is the scan key of the scan c holds (zero: none), and keptMsg
	// what it found wrong with the event ("": nothing).
	kept    scanKey
	keptMsg string
	sharing bool // in EvaluateEach: scans are kept for the next integration

	// expCode and exp: the currency code currencyExponent last looked up
	// (expCode[3] is 1 once set) and its exponent.
	expCode [4]byte
	exp     int
}

var ctxPool = sync.Pool{New: func() any { return new(evalCtx) }}

// scope is where a field is evaluated: the current array item (its bytes
// and scanned slots) for paths inside items, and the object's fields.
type scope struct {
	item []byte
	// slots are the item's, their positions in doc (the item itself, or
	// the whole event when the main scan recorded them).
	doc   []byte
	slots []span
	// fields are the object's field values (a window of c.stack).
	fields []rv
}

// Evaluate decides what to do with one event, given as raw JSON. It never
// panics and never blocks; see the package documentation for the order of
// checks.
func (in *Integration) Evaluate(event []byte) Result { return in.evaluate(event, nil) }

// EvaluateValid is Evaluate for an event Valid has checked: the same
// decision, byte for byte, without checking again what Valid checked
// (UTF-8, one well-formed object, nothing after it, its depth). An event
// the variant does not map by name is then skipped without being read
// past its type and name, and one event sent to many integrations is
// validated once. What Valid did not settle for this integration (a
// smaller size or depth limit than Valid's, a key twice in the top-level
// object) is checked as Evaluate checks it. The zero ValidEvent, which
// Valid never returns, is evaluated as Evaluate(nil).
func (in *Integration) EvaluateValid(v ValidEvent) Result {
	if !v.ok || len(v.b) > in.opts.MaxEventSize || in.opts.MaxDepth < v.maxDepth {
		return in.evaluate(v.b, nil)
	}
	return in.evaluate(v.b, &v)
}

// evaluate is Evaluate; pre, when set, is what Valid found of the event.
func (in *Integration) evaluate(event []byte, pre *ValidEvent) Result {
	return in.evaluateIn(nil, event, pre)
}

// evaluateIn is evaluate in c, which holds nothing of another
// integration's evaluation but, in a fan-out (EvaluateEach), the scan of
// this very event that an integration of the same scan key left (see
// scanShared); nil: a pooled one, released when done (one function, not a
// wrapper: a skip costs little more than the call).
func (in *Integration) evaluateIn(c *evalCtx, event []byte, pre *ValidEvent) (res Result) {
	res.red = in.red
	pooled := c == nil
	if pooled {
		c = ctxPool.Get().(*evalCtx)
	}
	// One defer, releasing c last: with two (fourteen returns), the
	// compiler does not open-code them, and the defer records, deferreturn
	// and nextDefer cost about 250 instructions an evaluation.
	defer func() {
		if r := recover(); r != nil {
			// A bug, not bad input: refuse the event rather than crash the
			// delivery pipeline, and say so.
			res = Result{Outcome: Reject, Reason: ReasonInvalidEvent, red: in.red,
				Message: fmt.Sprintf("internal error while evaluating the event: %v", r)}
			// The scan may have stopped half-way: nobody reuses it.
			c.kept = scanKey{}
		}
		// Messages and names echo event data, which may hold a secret.
		if res.Message != "" && !res.msgClean {
			res.Message = in.red.String(res.Message)
		}
		if res.Event != "" && !res.eventClean {
			res.Event = in.red.String(res.Event)
		}
		res.msgClean, res.eventClean = false, false
		if pooled {
			c.release()
		}
	}()
	if len(event) > in.opts.MaxEventSize {
		return reject(&res, ReasonInvalidEvent, fmt.Sprintf("event is %d bytes; the limit is %d", len(event), in.opts.MaxEventSize))
	}
	var msg string
	if c.sharing {
		msg = c.scanShared(in, event, pre)
	} else {
		msg = c.scan(in, event, pre)
	}
	if msg != "" {
		return reject(&res, ReasonInvalidEvent, msg)
	}
	ev := c.mapEvent(&res)
	if ev == nil {
		return res
	}
	if c.sc.dupPath != "" {
		// A key twice below the top level: the event is read, and readers
		// disagree on it (the top level was refused by the scan itself).
		return reject(&res, ReasonInvalidEvent, duplicateMessage(c.sc.dupPath))
	}
	name := c.name
	switch {
	case string(name) == ev.Name:
		// The name as the blueprint writes it: no copy, scrubbed at Bind.
		res.Event, res.eventClean = in.eventNames[ev], true
	case name != nil:
		res.Event = string(name)
	case c.kind != "track":
		res.Event = c.kind // an identify or group event: its type names it
	}
	res.VendorEvent = ev.VendorEvent
	if ev.VendorSpec != nil {
		if v := c.value(c.in.bp.VendorEventValue()); v.st == present && v.jt == '"' {
			// Computed from event data: scrubbed here, once, as it goes
			// on to views, logs and stored items (the outbox's vendor
			// event, which dlq list shows).
			res.VendorEvent = in.red.String(string(v.b))
		}
	}

	if ev.Filter != nil {
		// Only a true filter lets the event through: one that cannot be
		// evaluated (an absent value compared, a wrong type) filters it
		// out, as the author's condition does not hold.
		ok, err := c.runBool(ev.Filter, &c.top)
		if err != nil {
			return skip(&res, ReasonFiltered, "the mapping's filter could not be evaluated ("+exprMessage(err)+"), so it does not hold")
		}
		if !ok {
			res.msgClean = true
			return skip(&res, ReasonFiltered, in.filteredMsg)
		}
	}
	if cs := in.consent; cs != nil {
		granted, decided := c.consent(cs)
		if !decided {
			granted = cs.Allow
		}
		if !granted {
			res.msgClean = true // rendered at Bind
			if decided {
				return skip(&res, ReasonConsentDenied, in.consentDenied)
			}
			return skip(&res, ReasonConsentDenied, in.consentMissing)
		}
	}
	rp := in.requests[ev.Request]
	req := ev.Request
	c.out = c.out[:0]
	c.secrets = c.secrets[:0]
	body := false
	if !req.BodyFromEvent {
		body = c.writeObject(req.Body, &c.top)
	}
	url := rp.url
	if !rp.staticURL {
		u := c.template(req.URL, nil, "the URL")
		if req.URL.HasOptional {
			u = dropAbsentURL(u)
		}
		url = string(u)
	}
	var dyn []Header
	for _, h := range rp.dynHeaders {
		fmark := len(c.faults)
		v := string(c.template(h.Value, nil, "header "+h.Name))
		if h.Secret {
			c.hideFaults(fmark)
		}
		if h.Value.HasOptional && absentHeader(v) {
			continue
		}
		dyn = append(dyn, Header{Name: h.Name, Value: v, Secret: h.Secret})
	}
	if c.nMissing+c.nBad > 0 {
		return c.reject(&res)
	}
	for _, w := range ev.WarnWhen {
		// A condition that cannot be evaluated attaches nothing, as a
		// filter that cannot be evaluated does not hold.
		if ok, _ := c.runBool(w.Expr, &c.top); ok && !contains(c.warnings, w.Code) {
			c.warnings = append(c.warnings, w.Code)
		}
	}
	var out *Request
	var box *[1]*Request
	if rp.smallBox {
		b := &smallRequestBox{}
		out, box = &b.req, &b.reqs
		out.Headers = b.headers[:0]
	} else {
		b := &requestBox{}
		out, box = &b.req, &b.reqs
		out.Headers = b.headers[:0]
	}
	out.Method, out.URL, out.spec = rp.method, url, req
	if n := len(rp.headers) + len(dyn); n > cap(out.Headers) {
		out.Headers = make([]Header, 0, n)
	}
	out.Headers = append(append(out.Headers, rp.headers...), dyn...)
	if rp.queryAuth != "" {
		sep := "?"
		if strings.IndexByte(out.URL, '?') >= 0 {
			sep = "&"
		}
		out.URL += sep + rp.queryAuth
		out.secretQuery = rp.queryName
	}
	if !rp.staticURL {
		// The last line of defence, whatever the template wrote: the
		// final URL's host is in the bound allow-list (a static URL was
		// checked at Bind).
		if msg := in.urlProblem(out.URL); msg != "" {
			for _, name := range rp.hostNames {
				c.addFault(fault{path: name, msg: msg})
			}
			return c.reject(&res)
		}
	}
	if req.BodyFromEvent {
		// The event as received, byte for byte; a batch of one when the
		// request batches.
		out.Body = in.passThrough(c.event, rp)
		if !rp.hasCT {
			out.Headers = append(out.Headers, Header{Name: "Content-Type", Value: encoding.JSON.ContentType()})
		}
		return c.deliver(&res, box, out, rp)
	}
	// The body was written as a JSON document; its encoding writes the
	// bytes sent (for JSON: the document, copied once).
	doc := c.out
	if !body {
		doc = emptyDoc
	}
	enc := req.Encoding
	var shape encoding.Shape
	if req.Body != nil {
		shape = req.Body
	}
	wire, secrets, err := enc.Encode(nil, doc, c.secrets, shape)
	if err != nil {
		if fe := (*encoding.FieldError)(nil); errors.As(err, &fe) {
			c.addFault(fault{path: fe.Field, msg: fe.Msg})
			return c.reject(&res)
		}
		return reject(&res, ReasonInvalidField, "the body cannot be written as "+enc.Name()+": "+err.Error())
	}
	if enc.InQuery() {
		// The pairs go after the URL's own parameters; no body. (They
		// are escaped query components: they cannot move the host.)
		if len(wire) > 0 {
			sep := "?"
			if strings.IndexByte(out.URL, '?') >= 0 {
				sep = "&"
			}
			if i := strings.IndexByte(out.URL, '#'); i >= 0 {
				out.URL = out.URL[:i]
			}
			out.URL += sep + string(wire)
		}
		box[0] = out
		res.Outcome = Deliver
		res.Requests = box[:]
		if len(c.warnings) > 0 {
			res.Warnings = append([]string(nil), c.warnings...)
		}
		return res
	}
	out.Body = wire
	if len(secrets) > 0 {
		out.secretRanges = append([][2]int(nil), secrets...) // may be c.secrets, which goes back to the pool
	}
	if body && !rp.hasCT {
		out.Headers = append(out.Headers, Header{Name: "Content-Type", Value: enc.ContentType()})
	}
	return c.deliver(&res, box, out, rp)
}

// deliver finishes a result that delivers out: signed when its auth is a
// signature.
func (c *evalCtx) deliver(res *Result, box *[1]*Request, out *Request, rp *requestPlan) Result {
	if rp.sig != nil {
		c.in.sign(out, rp, c.in.now())
	}
	box[0] = out
	res.Outcome = Deliver
	res.Requests = box[:]
	if len(c.warnings) > 0 {
		res.Warnings = append([]string(nil), c.warnings...)
	}
	return *res
}

// emptyDoc is the document of a body none of whose fields is present.
var emptyDoc = []byte("{}")

// requestBox holds a result's request, its headers and the Requests slice
// in one allocation.
type requestBox struct {
	req     Request
	reqs    [1]*Request
	headers [4]Header
}

// smallRequestBox is requestBox for a request that never has more than two
// headers (requestPlan.smallBox): 216 bytes, in the 224-byte size class
// rather than requestBox's 320 (296 bytes). Button's purchase sends two
// (Content-Type, Authorization): 96 of the 1088 bytes allocated per
// evaluation fewer, which the GC no longer scans or sweeps.
type smallRequestBox struct {
	req     Request
	reqs    [1]*Request
	headers [2]Header
}

// mapEvent finds the mapping of the scanned event in the variant: a track
// event by its name, then the variant's selectors by type (TYPE:NAME for
// page and screen, TYPE:*, *:*). It sets c.ev, c.kind and c.name, or
// makes res a skip (event_not_mapped) and returns nil.
func (c *evalCtx) mapEvent(res *Result) *compiler.Event {
	in, v, event := c.in, c.in.variant, c.event
	c.kind = "track"
	if typ := c.slots[compiler.SlotType]; typ.present() && typ.kind != 'n' && !(typ.kind == '"' && typ.end-typ.start == 2) {
		tv := c.spanVal(event, typ)
		switch {
		case typ.kind != '"':
			c.kind = ""
			if v.NamesOnly() {
				skip(res, ReasonEventNotMapped, "only track events are mapped; this event's type is "+describeVal(tv))
				return nil
			}
		case isTrack(tv.b):
		default:
			if v.NamesOnly() {
				skip(res, ReasonEventNotMapped, "only track events are mapped; this is a "+strconv.Quote(truncate(string(tv.b), 40))+" event")
				return nil
			}
			c.kind = strings.ToLower(strings.TrimSpace(string(tv.b)))
		}
	}
	if c.kind != "track" {
		var norm string
		if c.kind == "page" || c.kind == "screen" {
			if sp := c.slots[compiler.SlotName]; sp.kind == '"' {
				if n := c.spanVal(event, sp).b; len(trimSpace(n)) > 0 {
					c.name = n
					norm = conv.NormalizeName(string(n))
				}
			}
		}
		if ev := v.Select(c.kind, norm); ev != nil {
			c.ev = ev
			return ev
		}
		what := "an event whose type is not text"
		if c.kind != "" {
			what = "a " + strconv.Quote(truncate(c.kind, 40)) + " event"
		}
		skip(res, ReasonEventNotMapped, what+" is not in the event map of "+in.bp.Ref()+" variant "+v.Key)
		return nil
	}
	nameSp := c.slots[compiler.SlotEvent]
	var name []byte
	if nameSp.kind == '"' {
		name = c.spanVal(event, nameSp).b
	}
	if len(trimSpace(name)) == 0 {
		if ev := v.Select("track", ""); ev != nil {
			c.ev = ev
			return ev
		}
		res.msgClean = true // scrubbed at Bind
		skip(res, ReasonEventNotMapped, in.noNameMsg)
		return nil
	}
	ev := c.lookup(name)
	if ev == nil {
		ev = v.Select("track", "")
	}
	if ev == nil {
		t := in.unmappedText(name)
		res.Event, res.msgClean, res.eventClean = t.event, true, true
		skip(res, ReasonEventNotMapped, t.msg)
		return nil
	}
	c.ev, c.name = ev, name
	return ev
}

func isTrack(b []byte) bool {
	b = trimSpace(b)
	return len(b) == 5 && (b[0]|0x20) == 't' && (b[1]|0x20) == 'r' && (b[2]|0x20) == 'a' && (b[3]|0x20) == 'c' && (b[4]|0x20) == 'k'
}

func skip(res *Result, reason, msg string) Result {
	res.Outcome = Skip
	res.Reason = reason
	res.Message = msg
	return *res
}

func reject(res *Result, reason, msg string) Result {
	res.Outcome = Reject
	res.Reason = reason
	res.Message = msg
	return *res
}

// lookup finds the mapping of an event name (once per event).
func (c *evalCtx) lookup(name []byte) *compiler.Event {
	if !c.looked {
		if n := uint(len(name)); n < 64 && c.in.exactLens>>n&1 != 0 {
			if ev := c.in.exactNames[string(name)]; ev != nil {
				c.found, c.looked = ev, true
				return ev
			}
		}
		var keyBuf [64]byte
		key := conv.AppendNormalizedName(keyBuf[:0], bstr(name))
		c.found, c.looked = c.in.variant.Lookup(bstr(key)), true
	}
	return c.found
}

// pass is the scanner's gate: an event whose name the variant does not
// map is only validated, not resolved.
func (c *evalCtx) pass(sp span) bool {
	if sp.kind != '"' {
		return false
	}
	return c.lookup(c.spanVal(c.event, sp).b) != nil
}

// scan validates the event and resolves every path the blueprint reads.
// It returns why the event cannot be read, or "". With pre (what Valid
// found of the event), what Valid checked is not checked again, and an
// event the gate refuses is not scanned at all.
func (c *evalCtx) scan(in *Integration, event []byte, pre *ValidEvent) string {
	c.in, c.event = in, event
	p := in.plan
	if cap(c.slots) < len(p.paths) {
		c.slots = make([]span, len(p.paths))
	}
	c.slots = c.slots[:len(p.paths)]
	c.looked = false
	if pre != nil && in.variant.NamesOnly() && !pre.topDup && !c.pass(pre.name) {
		// What the gate would find when the scan reads the event's name
		// (the first top-level "event", as Valid recorded it): not
		// mapped. The full scan would then only validate the rest,
		// check top-level keys twice (Valid found none) and record the
		// type (Valid did): nothing is left to read. Nothing but the
		// type and name slots is read either (mapEvent): the others and
		// the values are not cleared (c.values stays empty, so release
		// clears none).
		c.slots[compiler.SlotType], c.slots[compiler.SlotEvent], c.slots[compiler.SlotName] = pre.typ, pre.name, span{}
		c.values, c.done = c.values[:0], c.done[:0]
		c.sc.dupPath = ""
		c.top = scope{doc: event, slots: c.slots}
		return ""
	}
	clear(c.slots)
	n := len(in.bp.Values)
	if cap(c.values) < n {
		c.values = make([]rv, n)
		c.done = make([]bool, n)
	}
	c.values, c.done = c.values[:n], c.done[:n]
	clear(c.done)
	i := 0
	if pre == nil {
		for i < len(event) && (event[i] == ' ' || event[i] == '\t' || event[i] == '\n' || event[i] == '\r') {
			i++
		}
		if i == len(event) {
			return "event is empty"
		}
		if !utf8.Valid(event) {
			return "event is not valid UTF-8"
		}
	}
	// Checked by Valid, values the blueprint does not read are skipped.
	c.sc.items, c.sc.dups, c.sc.valid = true, true, pre != nil
	c.sc.gate, c.sc.gateSlot, c.sc.keep = nil, compiler.SlotEvent, p.typeNode
	if in.variant.NamesOnly() {
		// Only track names map: an event whose name is not mapped needs
		// nothing else read. With selectors (page:*, a catch-all) any
		// event may map, whatever its name.
		c.sc.gate = c
	}
	err := c.sc.scan(event, p.root, c.slots, in.opts.MaxDepth)
	c.slots = c.sc.spans[:len(p.paths)]
	c.top = scope{doc: event, slots: c.slots}
	switch {
	case errors.Is(err, errTooDeep):
		return fmt.Sprintf("event nests deeper than %d levels (the limit)", in.opts.MaxDepth)
	case errors.Is(err, errDuplicate):
		return duplicateMessage(c.sc.dupPath)
	case err != nil:
		return "event is not well-formed JSON (malformed, truncated, or followed by more data)"
	}
	if pre == nil && event[i] != '{' {
		return "event is " + describeVal(c.spanVal(event, span{start: int32(i), end: int32(len(trimRightWS(event))), kind: kindOf(event[i])})) + ", not a JSON object"
	}
	if len(p.fallback) > 0 {
		c.fillFallback(event, p.fallback, c.slots)
	}
	return ""
}

// duplicateMessage says why an event with a key twice in one object is
// refused.
func duplicateMessage(path string) string {
	return "event has the key " + strconv.Quote(path) + " twice in one object: JSON readers disagree on which one counts (JavaScript, Python and Go's encoding/json read the last, others the first)"
}

func trimRightWS(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func kindOf(ch byte) byte {
	switch ch {
	case '"', '{', '[', 't', 'f', 'n':
		return ch
	}
	return '0'
}

// fillFallback resolves, with gjson, the paths the scanner cannot express
// (wildcards, queries): their values are located in doc by gjson's index.
func (c *evalCtx) fillFallback(doc []byte, paths map[int]string, slots []span) {
	for slot, path := range paths {
		r := gjson.GetBytes(doc, path)
		if !r.Exists() || r.Index <= 0 || r.Index+len(r.Raw) > len(doc) || string(doc[r.Index:r.Index+len(r.Raw)]) != r.Raw {
			continue // not a value of the document as written (a computed result)
		}
		kind := kindOf(r.Raw[0])
		slots[slot] = span{start: int32(r.Index), end: int32(r.Index + len(r.Raw)), kind: kind, esc: kind == '"' && strings.IndexByte(r.Raw, '\\') >= 0}
	}
}

func (c *evalCtx) release() {
	c.reset()
	c.event, c.top, c.found, c.kept, c.sharing = nil, scope{}, nil, scanKey{}, false
	c.sc.b, c.sc.gate, c.sc.keep = nil, nil, nil
	clear(c.values)
	if cap(c.out) > 1<<20 {
		c.out = nil // do not keep a huge buffer alive
	}
	if cap(c.scratch) > 1<<20 {
		c.scratch = nil
	}
	// The scan's records of a huge event are not kept either.
	if cap(c.sc.spans) > 1<<16 {
		c.sc.spans, c.slots = nil, nil
	}
	if cap(c.sc.elems) > 1<<16 {
		c.sc.elems = nil
	}
	if cap(c.sc.arrs) > 1<<12 {
		c.sc.arrs = nil
	}
	if cap(c.sc.keys) > 1<<12 || cap(c.sc.keyText) > 1<<16 || cap(c.sc.dupTable) > 1<<14 {
		c.sc.keys, c.sc.keyText, c.sc.dupTable = nil, nil, nil
	}
	ctxPool.Put(c)
}

// reset forgets what one integration's evaluation wrote and the scan did
// not: what the next integration's evaluation of the same event must not
// see. The scan's records (slots, the scanner's spans, elements and
// arrays, dupPath, looked and found) stay: nothing after the scan writes
// them. Values are cleared by scanShared (they depend on config).
func (c *evalCtx) reset() {
	c.in, c.ev, c.name, c.resp, c.kind = nil, nil, nil, nil, ""
	c.budget = compiler.Budget{} // the next evaluation gets a whole one
	c.faults = c.faults[:0]
	c.nMissing, c.nBad = 0, 0
	c.warnings = c.warnings[:0]
	c.idx = c.idx[:0]
	c.stack = c.stack[:0]
	c.scratch = c.scratch[:0]
	c.out = c.out[:0]
	c.secrets = c.secrets[:0]
}

// reject turns the collected faults into a result: missing fields first.
// It names at most maxNamedFields fields; past them, Fields ends with one
// entry "and N more" and the message with "; and N more".
func (c *evalCtx) reject(res *Result) Result {
	missing := c.nMissing > 0
	res.Outcome = Reject
	res.Reason = ReasonInvalidField
	count := c.nBad
	if missing {
		res.Reason = ReasonMissingRequiredField
		count = c.nMissing
	}
	// Faults that only repeat another (derived) are named when nothing
	// else is.
	skipDerived := false
	for _, f := range c.faults {
		if f.missing == missing && !f.derived {
			skipDerived = true
			break
		}
	}
	// Sized first: the fields and the message are one allocation each.
	kept, size := 0, 0
	for _, f := range c.faults {
		if f.missing == missing && f.derived && skipDerived {
			count--
			continue
		}
		if f.missing == missing {
			kept++
			size += len(f.path) + len("; ") + len(": ") + len(f.msg) + len(" is missing")
		}
	}
	more := count - kept
	var moreText string
	if more > 0 {
		moreText = "and " + strconv.Itoa(more) + " more"
		kept++
		size += len("; ") + len(moreText)
	}
	res.Fields = make([]string, 0, kept)
	var msg strings.Builder
	msg.Grow(size)
	for _, f := range c.faults {
		if f.missing != missing || f.derived && skipDerived {
			continue
		}
		res.Fields = append(res.Fields, f.path)
		if msg.Len() > 0 {
			msg.WriteString("; ")
		}
		msg.WriteString(f.path)
		if f.missing {
			msg.WriteString(" is missing")
		} else {
			msg.WriteString(": ")
			msg.WriteString(f.msg)
		}
	}
	if more > 0 {
		res.Fields = append(res.Fields, moreText)
		msg.WriteString("; ")
		msg.WriteString(moreText)
	}
	res.Message = msg.String()
	return *res
}

// consent reads the consent decision: granted, and whether anything decided.
func (c *evalCtx) consent(cs *compiler.Consent) (granted, decided bool) {
	if cs.Expr != nil {
		out, err := c.runExpr(cs.Expr, &c.top)
		if err == nil && out.st == present {
			switch out.jt {
			case 't':
				return true, true
			case 'f':
				return false, true
			}
		}
		return false, false
	}
	for _, slot := range cs.Slots {
		switch c.slots[slot].kind {
		case 't':
			return true, true
		case 'f':
			return false, true
		}
	}
	return false, false
}

// value computes a shared value once per event.
func (c *evalCtx) value(v *compiler.Value) rv {
	if c.done[v.Index] {
		return c.values[v.Index]
	}
	var out rv
	switch {
	case v.Name == compiler.ValueVendorEvent:
		if c.ev.VendorSpec != nil {
			out = c.spec(c.ev.VendorSpec, &c.top)
			if out.st == present && len(out.b) > maxVendorEvent {
				// Computed from event data: a name, not a payload. It is
				// stored with every queued request and logged with every
				// attempt.
				out = invalidVal("the vendor event is " + strconv.Itoa(len(out.b)) + " bytes long; a computed vendor event has at most " + strconv.Itoa(maxVendorEvent))
			}
		} else {
			out = textVal(sbytes(c.ev.VendorEvent))
		}
	case v.Name == compiler.ValueSourceEvent:
		if len(c.name) > 0 {
			out = textVal(c.name)
		}
	case v.Name == compiler.ValueEventType:
		if c.kind != "" {
			out = textVal(sbytes(c.kind))
		}
	default:
		out = c.spec(&v.Spec, &c.top)
	}
	c.values[v.Index] = out
	c.done[v.Index] = true
	return out
}

// spec selects the first present source and applies the type rule.
func (c *evalCtx) spec(s *compiler.Spec, sc *scope) rv {
	in := c.selectSource(s, sc)
	if in.st != present {
		return in
	}
	return c.rule(&s.Type, in)
}

// selectSource returns the first present source (or the default), before
// the type rule.
func (c *evalCtx) selectSource(s *compiler.Spec, sc *scope) rv {
	for i := range s.Sources {
		v := c.source(&s.Sources[i], sc)
		if v.st != absent {
			return v
		}
	}
	if s.Default != nil {
		return c.spanVal(s.Default, span{start: 0, end: int32(len(s.Default)), kind: kindOf(s.Default[0])})
	}
	return rv{}
}

func (c *evalCtx) source(src *compiler.Source, sc *scope) rv {
	switch src.Kind {
	case compiler.SourcePath:
		return c.spanVal(sc.doc, sc.slots[src.Slot])
	case compiler.SourceValue:
		return c.value(src.Value)
	case compiler.SourceConfig:
		x, ok := c.in.config[src.Config]
		if !ok {
			return rv{}
		}
		return c.goVal(x)
	case compiler.SourceConst:
		return c.spanVal(src.Const, span{start: 0, end: int32(len(src.Const)), kind: kindOf(src.Const[0])})
	case compiler.SourceExpr:
		v, _ := c.runExpr(src.Expr, sc)
		if v.st == present && isAbsent(v) {
			return rv{}
		}
		return v
	}
	return rv{}
}

// push reserves n sibling slots on the stack.
func (c *evalCtx) push(n int) (base int) {
	if c.stack == nil {
		c.stack = make([]rv, 0, 64)
	}
	base = len(c.stack)
	for range n {
		c.stack = append(c.stack, rv{})
	}
	return base
}

// writeObject evaluates an object's fields and writes the object to c.out.
// It reports whether the object is present (it is left out when none of
// its fields is, or when an omit_unless field is absent).
func (c *evalCtx) writeObject(o *compiler.Object, sc *scope) bool {
	mark := len(c.out)
	fmark, wmark, smark := len(c.faults), len(c.warnings), len(c.secrets)
	nMissing, nBad := c.nMissing, c.nBad
	nf := len(o.Fields)
	base := len(c.stack)
	switch {
	case !o.InOrder:
		base = c.push(nf)
	case o.Reads:
		// Written in order: every kept value is stored before it is
		// read, so the window need not be cleared.
		c.stack = slices.Grow(c.stack, nf)[:base+nf]
	}
	// The object's fields are visible to its own fields only.
	parentFields := sc.fields
	c.out = append(c.out, '{')
	n := 0
	switch {
	case o.InOrder && !o.Reads:
		// No field reads another: nothing to keep.
		sc.fields = nil
		for _, f := range o.Fields {
			c.writeField(f, sc, &n, -1)
		}
	case o.InOrder:
		for i, f := range o.Fields {
			if len(f.Deps) > 0 || !fastRoutes {
				// Only a field reading its siblings (Deps: in its
				// expressions or its when) looks at sc.fields.
				sc.fields = c.stack[base : base+nf] // c.stack may have moved
			}
			at := -1
			if f.Read {
				at = base + i
			}
			c.writeField(f, sc, &n, at)
		}
	default:
		// Evaluate in dependency order into a side buffer, then write in
		// declaration order.
		for _, i := range o.Order {
			sc.fields = c.stack[base : base+nf]
			c.stack[base+i] = c.evalField(o.Fields[i], sc)
		}
		for i, f := range o.Fields {
			v := c.stack[base+i]
			if v.st != present || f.Internal {
				continue
			}
			if n > 0 {
				c.out = append(c.out, ',')
			}
			n++
			c.out = append(c.out, f.JSONKey...)
			start := len(c.out)
			c.out = c.appendVal(c.out, v)
			if f.Secret {
				c.secrets = append(c.secrets, [2]int{start, len(c.out)})
			}
		}
	}
	omit := n == 0
	for _, i := range o.OmitUnless {
		if c.stack[base+i].st != present {
			omit = true
			c.faults = c.faults[:fmark]
			c.nMissing, c.nBad = nMissing, nBad
			c.warnings = c.warnings[:wmark]
		}
	}
	c.stack = c.stack[:base]
	sc.fields = parentFields
	if omit {
		c.out = c.out[:mark]
		c.secrets = c.secrets[:smark]
		return false
	}
	c.out = append(c.out, '}')
	return true
}

// fastRoutes lets writeField take a field's compiled Route; false sends
// every field down the general route, the reference the differential
// tests compare the routes with. Not changed while events are evaluated.
var fastRoutes = true

// writeField evaluates a field and writes it when present; its value is
// kept in c.stack[at] when at >= 0. A field with a Route other than
// RouteGeneral takes it: the same steps as the general route below for
// its kind of field, with none of the tests that cannot apply to it.
func (c *evalCtx) writeField(f *compiler.Field, sc *scope, n *int, at int) {
	if f.Route == compiler.RouteGeneral || !fastRoutes {
		c.writeGeneral(f, sc, n, at)
		return
	}
	key := f.JSONKey
	if *n > 0 {
		key = f.CommaKey
	}
	if f.Route == compiler.RoutePaths && c.directPaths(f, sc, at, key) {
		*n++
		return
	}
	mark := len(c.out)
	c.out = append(c.out, key...)
	start := len(c.out)
	var v rv
	switch f.Route {
	case compiler.RoutePaths:
		v = c.spec(&f.Spec, sc)
		c.appendPresent(f, v)
	case compiler.RouteValue:
		v = c.value(f.AsValue)
		c.appendPresent(f, v)
	case compiler.RouteSpec:
		v = c.spec(&f.Spec, sc)
		c.appendPresent(f, v)
	case compiler.RouteArith:
		e := f.Sources[0].Expr
		if r, ok := fieldArith(e, sc, &f.Type); ok {
			c.out = strconv.AppendInt(c.out, r, 10)
			if at >= 0 {
				c.stack[at] = intVal(r)
			}
			*n++
			return
		}
		// source and selectSource add nothing to an arithmetic result
		// (never absent text, and there is no default): the rule applies
		// to it at once. When arith cannot decide, spec runs the VM.
		var ok bool
		if v, ok = c.arith(e, e.Arith, sc); !ok {
			v = c.spec(&f.Spec, sc)
		} else if v.st == present {
			v = c.rule(&f.Type, v)
		}
		c.appendPresent(f, v)
	case compiler.RouteObject:
		if c.writeObject(f.Object, sc) {
			if at >= 0 {
				c.stack[at] = outVal('{', start, len(c.out))
			}
			*n++
			return
		}
		if f.Default != nil {
			c.out = append(c.out, f.Default...)
			v = outVal(f.Default[0], start, len(c.out))
		}
	case compiler.RouteItems:
		v = c.writeItems(f, sc)
	}
	if at >= 0 {
		c.stack[at] = v
	}
	if v.st != present {
		c.account(f, &v)
		c.out = c.out[:mark]
		return
	}
	*n++
}

// fieldArith is RouteArith's shortest form, for the commonest case: both
// inputs are sibling fields holding integers, the result does not
// overflow, is within the type's bounds and is written as a number. It
// returns the result, or false for anything else, which arith and rule
// decide as on the general route.
func fieldArith(e *compiler.Expr, sc *scope, t *compiler.Type) (int64, bool) {
	a := e.Arith
	ia, ib := &e.Inputs[a.A], &e.Inputs[a.B]
	if ia.Kind != compiler.InputField || ib.Kind != compiler.InputField || ia.Field >= len(sc.fields) || ib.Field >= len(sc.fields) || t.Text {
		return 0, false
	}
	x, y := &sc.fields[ia.Field], &sc.fields[ib.Field]
	if x.st != present || !x.isInt || y.st != present || !y.isInt {
		return 0, false
	}
	r, ok := arithOp(a.Op, x.n, y.n)
	if !ok || t.Min != nil && float64(r) < *t.Min || t.Max != nil && float64(r) > *t.Max {
		return 0, false
	}
	return r, true
}

// appendPresent writes a scalar field's value when it is present (in a
// list of one when the field is a list).
func (c *evalCtx) appendPresent(f *compiler.Field, v rv) {
	if v.st != present {
		return
	}
	if f.List {
		c.out = append(c.out, '[')
		c.out = c.appendVal(c.out, v)
		c.out = append(c.out, ']')
	} else {
		c.out = c.appendVal(c.out, v)
	}
}

// writeGeneral is writeField's general route, for every field (the
// reference for the routes).
func (c *evalCtx) writeGeneral(f *compiler.Field, sc *scope, n *int, at int) {
	if f.When != nil || f.Internal {
		// Evaluated aside: left out when its condition does not hold, never
		// written when internal.
		v := c.evalField(f, sc)
		if at >= 0 {
			c.stack[at] = v
		}
		if f.Internal || v.st != present {
			return
		}
		if *n > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, f.JSONKey...)
		start := len(c.out)
		c.out = c.appendVal(c.out, v)
		if f.Secret {
			c.secrets = append(c.secrets, [2]int{start, len(c.out)})
		}
		*n++
		return
	}
	mark := len(c.out)
	if *n > 0 {
		c.out = append(c.out, ',')
	}
	c.out = append(c.out, f.JSONKey...)
	start := len(c.out)
	if f.PathsOnly && !f.Secret && !f.HasJoin && c.direct(f, sc, at) {
		// (A joined list is one text: direct would write a list.)
		*n++
		return
	}
	var v rv
	switch {
	case f.HasJoin:
		if v = c.evalField(f, sc); v.st == present {
			c.out = c.appendVal(c.out, v)
		}
		if at >= 0 {
			c.stack[at] = v
		}
		if v.st != present {
			c.out = c.out[:mark]
			return
		}
		if f.Secret {
			c.secrets = append(c.secrets, [2]int{start, len(c.out)})
		}
		*n++
		return
	case f.Type.Kind == compiler.KindObject && f.Object != nil:
		if c.writeObject(f.Object, sc) {
			v = outVal('{', start, len(c.out))
		} else if f.Default != nil {
			// Left out (no field present, or an omit_unless field
			// absent): the default stands in for it.
			c.out = append(c.out, f.Default...)
			v = outVal(f.Default[0], start, len(c.out))
		}
	case f.Type.Kind == compiler.KindArray && f.Object != nil:
		v = c.writeItems(f, sc)
	default:
		if f.AsValue != nil {
			v = c.value(f.AsValue) // a shared value as it is
		} else {
			v = c.spec(&f.Spec, sc)
		}
		if v.st == present {
			if f.List {
				c.out = append(c.out, '[')
				c.out = c.appendVal(c.out, v)
				c.out = append(c.out, ']')
			} else {
				c.out = c.appendVal(c.out, v)
			}
		}
	}
	if at >= 0 {
		c.stack[at] = v
	}
	if v.st != present {
		c.account(f, &v)
		c.out = c.out[:mark]
		return
	}
	if f.Secret {
		c.secrets = append(c.secrets, [2]int{start, len(c.out)})
	}
	*n++
}

// direct is the shortest route for the commonest fields: read from paths
// only, a JSON string without escapes (text, id) or a small JSON integer
// (integer) is written as it is in the event. It reports false, having
// written nothing, for anything else, which takes the general route.
func (c *evalCtx) direct(f *compiler.Field, sc *scope, at int) bool {
	t := &f.Type
	switch t.Kind {
	case compiler.KindString, compiler.KindID, compiler.KindInteger, compiler.KindMoney:
	default:
		return false
	}
	if t.Pattern != nil {
		return false
	}
	return c.directPaths(f, sc, at, "")
}

// directPaths is direct for a field known to qualify (RoutePaths: read
// from paths, of kind string, id, integer or money, without a pattern),
// writing key (with its comma) before the value when it writes one: key
// and value are written in one go through a local buffer.
func (c *evalCtx) directPaths(f *compiler.Field, sc *scope, at int, key string) bool {
	t := &f.Type
	for i := range f.Sources {
		sp := sc.slots[f.Sources[i].Slot]
		switch sp.kind {
		case 0, 'n':
			continue
		case '"':
			if sp.end-sp.start == 2 {
				continue // "" is absent
			}
			if sp.esc || t.Kind == compiler.KindInteger || t.Kind == compiler.KindMoney {
				return false // an integer in text: parsed on the general route
			}
			raw := sc.doc[sp.start:sp.end]
			out := append(c.out, key...)
			if f.List {
				out = append(out, '[')
				out = append(out, raw...)
				out = append(out, ']')
			} else {
				out = append(out, raw...)
			}
			c.out = out
			if at >= 0 {
				c.stack[at] = rv{st: present, jt: '"', b: raw[1 : len(raw)-1], plain: true}
			}
			return true
		case '0':
			raw := sc.doc[sp.start:sp.end]
			if t.Kind == compiler.KindMoney {
				return !f.List && c.directMoney(t, raw, at, key)
			}
			if t.Kind != compiler.KindInteger || f.List || len(raw) > 18 || raw[0] == '0' && len(raw) > 1 {
				return false
			}
			var n int64
			for _, d := range raw {
				if d < '0' || d > '9' {
					return false // negative, fraction, exponent
				}
				n = n*10 + int64(d-'0')
			}
			if t.Min != nil && float64(n) < *t.Min || t.Max != nil && float64(n) > *t.Max {
				return false
			}
			c.out = append(append(c.out, key...), raw...)
			if at >= 0 {
				c.stack[at] = intVal(n)
			}
			return true
		}
		return false
	}
	return false
}

// directMoney writes a JSON number as an amount in minor units; it
// reports false for anything the general route must explain (too large,
// negative, not a decimal).
func (c *evalCtx) directMoney(t *compiler.Type, raw []byte, at int, key string) bool {
	exp := 2
	if cur := t.Currency; cur != nil {
		cv := c.values[cur.Index] // memoised: every item reads it
		if !c.done[cur.Index] {
			cv = c.value(cur)
		}
		if cv.st == present && cv.jt == '"' {
			exp = c.currencyExponent(cv.b)
		}
	}
	n, ok := plainMinorUnits(raw, exp)
	if !ok {
		var neg bool
		var err error
		if n, neg, err = conv.MinorUnitsSign(raw, exp, true); err != nil || n < 0 || neg {
			return false
		}
	}
	c.out = strconv.AppendInt(append(c.out, key...), n, 10)
	if at >= 0 {
		c.stack[at] = intVal(n)
	}
	return true
}

// currencyExponent is conv.CurrencyExponent remembering the last code it
// was asked (by its text: the same code is asked for every item).
func (c *evalCtx) currencyExponent(code []byte) int {
	if len(code) == 3 && c.expCode[3] == 1 && code[0] == c.expCode[0] && code[1] == c.expCode[1] && code[2] == c.expCode[2] {
		return c.exp
	}
	exp := conv.CurrencyExponent(bstr(code))
	if len(code) == 3 {
		c.expCode = [4]byte{code[0], code[1], code[2], 1}
		c.exp = exp
	}
	return exp
}

// plainMinorUnits is conv.MinorUnitsSign for the commonest amounts: a
// JSON number of digits with at most exp fraction digits (99.99, 15, 27.5)
// and at most 18 digits in all, which needs no rounding and cannot
// overflow. It reports false for anything else (a sign, an exponent,
// rounding), which MinorUnitsSign decides.
func plainMinorUnits(raw []byte, exp int) (int64, bool) {
	var n int64
	i := 0
	for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
		n = n*10 + int64(raw[i]-'0')
	}
	digits := i
	if i == 0 {
		return 0, false
	}
	frac := 0
	if i < len(raw) && raw[i] == '.' {
		i++
		for ; i < len(raw) && raw[i] >= '0' && raw[i] <= '9'; i++ {
			n = n*10 + int64(raw[i]-'0')
			frac++
		}
		if frac == 0 {
			return 0, false
		}
	}
	if i != len(raw) || frac > exp || digits+exp > 18 {
		return 0, false
	}
	for ; frac < exp; frac++ {
		n *= 10
	}
	return n, true
}

// evalField evaluates a field without writing it (objects and items are
// written to the scratch space).
func (c *evalCtx) evalField(f *compiler.Field, sc *scope) rv {
	if f.When != nil {
		ok, err := c.runBool(f.When, sc)
		if err != nil {
			v := invalidVal("its when could not be evaluated: " + exprMessage(err))
			c.account(f, &v)
			return v
		}
		if !ok {
			return rv{} // not applicable: absent, no fault, no warning
		}
	}
	var v rv
	switch {
	case f.Object != nil:
		save := c.out
		c.out = nil
		mark := len(c.secrets)
		var ok bool
		if f.Type.Kind == compiler.KindObject {
			// Left out, the object is absent (or its default).
			if ok = c.writeObject(f.Object, sc); !ok && f.Default != nil {
				c.out, ok = append(c.out, f.Default...), true
			}
		} else {
			v = c.writeItems(f, sc)
			ok = v.st == present
		}
		c.secrets = c.secrets[:mark] // nested secrets inside out-of-order objects: redacted as a whole below
		if ok {
			v = rv{st: present, jt: '{', b: c.scratchText(func(d []byte) []byte { return append(d, c.out...) })}
			if f.Type.Kind == compiler.KindArray {
				v.jt = '['
			}
		}
		c.out = save
	default:
		v = c.spec(&f.Spec, sc)
		if v.st == present && f.List {
			text := c.scratchText(func(d []byte) []byte {
				d = append(d, '[')
				d = c.appendVal(d, v)
				return append(d, ']')
			})
			v = rv{st: present, jt: '[', b: text}
		}
	}
	if f.HasJoin && v.st == present {
		v = c.joinList(v, f.Join)
	}
	c.account(f, &v)
	return v
}

// joinList writes a list as one text: its values (text as is, numbers as
// written, true and false, null as empty text, so that positions stay
// aligned) joined with sep; a list of nothing but empty values is absent.
// A list holding an object or a list, or a value that is not a list, is
// invalid.
func (c *evalCtx) joinList(v rv, sep string) rv {
	if v.jt != '[' {
		return invalidVal("expected a list to join, got " + describeVal(v))
	}
	var msg string
	filled := false // some value is not empty text
	text := c.scratchText(func(d []byte) []byte {
		i := 0
		gjson.ParseBytes(v.b).ForEach(func(_, x gjson.Result) bool {
			if i > 0 {
				d = append(d, sep...)
			}
			filled = filled || x.Type != gjson.Null && !(x.Type == gjson.String && x.Str == "")
			switch x.Type {
			case gjson.String:
				d = append(d, x.Str...)
			case gjson.Null:
			case gjson.JSON:
				msg = "item " + strconv.Itoa(i) + " is " + map[bool]string{true: "an object", false: "a list"}[x.IsObject()] + ", which cannot be joined as text"
				return false
			default:
				d = append(d, x.Raw...)
			}
			i++
			return true
		})
		return d
	})
	if msg != "" {
		return invalidVal(msg)
	}
	if !filled {
		return rv{} // nothing but empty values: absent
	}
	return textVal(text)
}

// account records a field's fault or warning.
func (c *evalCtx) account(f *compiler.Field, v *rv) {
	switch v.st {
	case invalid:
		if c.room(false) {
			msg := v.msg
			if f.Secret {
				// The message may quote the value (a pattern, a type),
				// which a secret field computes from a secret in a way
				// the redaction cannot know (upper, regex_replace ...).
				msg = secretFaultMsg
			}
			c.faults = append(c.faults, fault{path: c.render(f.Path), msg: msg, derived: strings.HasPrefix(v.msg, derivedPrefix)})
		}
	case absent:
		if f.Required {
			if c.room(true) {
				c.faults = append(c.faults, fault{path: c.render(f.Path), missing: true})
			}
		} else if f.WarnIfAbsent != "" && !contains(c.warnings, f.WarnIfAbsent) {
			c.warnings = append(c.warnings, f.WarnIfAbsent)
		}
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

// writeItems maps an array item by item, writing it to c.out.
func (c *evalCtx) writeItems(f *compiler.Field, sc *scope) rv {
	in := c.selectSource(&f.Spec, sc)
	if in.st != present {
		return in
	}
	if in.jt != '[' {
		return invalidVal("expected a list, got " + describeVal(in))
	}
	if msg := lengthBounds(&f.Type, in.b); msg != "" {
		return invalidVal(msg)
	}
	ip := c.in.plan.items[f.Object]
	start := len(c.out)
	c.out = append(c.out, '[')
	isc := c.scope() // one scope for every item, reused
	// The item's index, rendered in fault paths: pushed once for the
	// array, set for each item.
	c.idx = append(c.idx, 0)
	if a := c.recordedArray(in.b, f.Object); a != nil {
		// The main scan recorded every element's values: positions in
		// the event, one window of slots per element.
		n := len(ip.paths)
		if cap(c.none) < n {
			c.none = make([]span, n)
		}
		none := c.none[:n]
		isc.doc = c.event
		i := 0
		for e := a.first; e >= 0; i++ {
			r := c.sc.elems[e]
			isc.slots = none
			if r.win >= 0 {
				isc.slots = c.sc.spans[r.win : int(r.win)+n : int(r.win)+n]
			}
			c.writeItem(f, isc, i, c.event[r.start:r.end], r.kind)
			e = r.next
		}
	} else {
		slots := make([]span, len(ip.paths))
		i := 0
		err := eachElement(in.b, ip.root, slots, func(el []byte, kind byte) {
			if kind == '{' && len(ip.fallback) > 0 {
				c.fillFallback(el, ip.fallback, slots)
			}
			isc.doc, isc.slots = el, slots
			c.writeItem(f, isc, i, el, kind)
			i++
		})
		if err != nil {
			c.idx = c.idx[:len(c.idx)-1]
			c.freeScope(isc)
			c.out = c.out[:start]
			return invalidVal("expected a list, got malformed JSON")
		}
	}
	c.idx = c.idx[:len(c.idx)-1]
	c.freeScope(isc)
	c.out = append(c.out, ']')
	return outVal('[', start, len(c.out))
}

// writeItem writes the array element el, item i, whose slots and doc are
// set in isc (its fields are not: writeObject sets and restores them).
func (c *evalCtx) writeItem(f *compiler.Field, isc *scope, i int, el []byte, kind byte) {
	if i > 0 {
		c.out = append(c.out, ',')
	}
	isc.item = el
	if f.Each {
		// A list of single values: the element's value, or null.
		c.idx[len(c.idx)-1] = i
		v := c.evalField(f.Object.Fields[0], isc)
		if v.st == present {
			c.out = c.appendVal(c.out, v)
		} else {
			c.out = append(c.out, "null"...)
		}
		return
	}
	if kind != '{' {
		if c.room(false) {
			// The enclosing items' indices only: this one is not an item.
			c.idx = c.idx[:len(c.idx)-1]
			name := c.render(f.Path) + "[" + strconv.Itoa(i) + "]"
			if f.Flatten {
				name = c.render(f.Path) + strconv.Itoa(i+1)
			}
			c.idx = append(c.idx, i)
			c.faults = append(c.faults, fault{path: name, msg: "expected an object, got " + describeVal(c.spanVal(el, span{start: 0, end: int32(len(el)), kind: kind}))})
		}
		c.out = append(c.out, "null"...)
		return
	}
	c.idx[len(c.idx)-1] = i
	if !c.writeObject(f.Object, isc) {
		c.out = append(c.out, "{}"...)
	}
}

// scope returns a scope from the evaluation's free list: scopes passed
// down the recursive writers would otherwise each be a heap allocation.
func (c *evalCtx) scope() *scope {
	if n := len(c.scopes); n > 0 {
		sc := c.scopes[n-1]
		c.scopes = c.scopes[:n-1]
		return sc
	}
	return new(scope)
}

func (c *evalCtx) freeScope(sc *scope) {
	*sc = scope{}
	c.scopes = append(c.scopes, sc)
}

// recordedArray returns the main scan's record of the array whose text is
// arr, when arr is in the event and its elements were recorded for obj.
func (c *evalCtx) recordedArray(arr []byte, obj *compiler.Object) *arrRec {
	if len(arr) == 0 || len(c.event) == 0 || len(c.sc.arrs) == 0 {
		return nil
	}
	// arr is in the event when it starts within it (allocations do not
	// overlap); from expressions or defaults, it starts elsewhere.
	off := uintptr(unsafe.Pointer(&arr[0])) - uintptr(unsafe.Pointer(&c.event[0]))
	if off >= uintptr(len(c.event)) {
		return nil
	}
	a := c.sc.recorded(int32(off))
	if a == nil || !a.ok || a.node.eachObj != obj {
		return nil
	}
	return a
}

// eachElement calls fn with each element of a JSON array (valid JSON),
// after recording the paths of t (relative to the element) in slots, in
// the same pass.
func eachElement(arr []byte, t *trie, slots []span, fn func(el []byte, kind byte)) error {
	var s scanner
	s.b, s.maxDepth, s.spans = arr, 1<<20, slots
	s.i = 1
	s.ws()
	if s.i < len(arr) && arr[s.i] == ']' {
		return nil
	}
	for {
		start := s.i
		clear(slots)
		s.base = start
		if err := s.value(t); err != nil {
			return err
		}
		fn(arr[start:s.i], kindOf(arr[start]))
		s.ws()
		if s.i >= len(arr) {
			return errSyntax
		}
		if arr[s.i] == ']' {
			return nil
		}
		s.i++
		s.ws()
	}
}

// render writes a field path with the current item indices:
// line_items[].total -> line_items[1].total.
func (c *evalCtx) render(path string) string {
	if !strings.Contains(path, "[]") && strings.IndexByte(path, '\x01') < 0 {
		return path
	}
	var b strings.Builder
	k := 0
	for {
		i := strings.IndexAny(path, "[\x01")
		for i >= 0 && path[i] == '[' && !strings.HasPrefix(path[i:], "[]") {
			j := strings.IndexAny(path[i+1:], "[\x01")
			if j < 0 {
				i = -1
				break
			}
			i += 1 + j
		}
		if i < 0 || k >= len(c.idx) {
			b.WriteString(path)
			return b.String()
		}
		b.WriteString(path[:i])
		if path[i] == '\x01' {
			// An indexed list's item: its number from 1 (ItemSku1).
			b.WriteString(strconv.Itoa(c.idx[k] + 1))
			path = path[i+1:]
		} else {
			b.WriteString("[" + strconv.Itoa(c.idx[k]) + "]")
			path = path[i+2:]
		}
		k++
	}
}

// template renders a template; an absent value in it is a missing field
// named after the value. In a URL, each placeholder's text is checked for
// where it sits: one DNS label in the host, digits in the port, and no dot
// segment in the path (see dotSegment); a text that breaks it makes the
// value invalid, and nothing of it is written.
func (c *evalCtx) template(t *compiler.Template, dst []byte, where string) []byte {
	var buf [4]pathMark
	marks := buf[:0] // the path placeholders, checked once the URL is whole
	fmark := len(c.faults)
	for _, p := range t.Parts {
		var text, name string
		switch {
		case p.Config != "":
			s, ok := c.in.configText[p.Config]
			if !ok {
				if p.Optional {
					dst = append(dst, absentMark)
				} else {
					c.templateFault(fmark, p.Config, true, "")
				}
				continue
			}
			text, name = s, p.Config
		case p.Value != nil:
			v := c.value(p.Value)
			switch v.st {
			case present:
				b := v.b
				if v.jt != '"' {
					b = c.jsonText(v)
				}
				text, name = bstr(b), p.Value.Name
			case invalid:
				c.templateFault(fmark, p.Value.Name, false, v.msg+" (in "+where+")")
				continue
			default:
				if p.Optional {
					dst = append(dst, absentMark)
				} else {
					c.templateFault(fmark, p.Value.Name, true, "")
				}
				continue
			}
		default:
			dst = append(dst, p.Literal...)
			continue
		}
		if msg := placeholderProblem(text, p.Escape); msg != "" {
			c.templateFault(fmark, name, false, msg)
			continue
		}
		start := len(dst)
		dst = appendEscaped(dst, text, p.Escape)
		if p.Escape == compiler.EscapePath {
			marks = append(marks, pathMark{start, len(dst), name})
		}
	}
	bad := [2]int{-1, -1} // the last segment found to be a dot segment
	for i, m := range marks {
		seg := segmentAround(dst, m.start, m.end)
		if i == 0 || marks[i-1].end < seg[0] { // a segment not checked yet
			if !dotSegment(dst[seg[0]:seg[1]]) {
				continue
			}
			bad = seg
		}
		if seg == bad { // every placeholder of a dot segment is named
			c.templateFault(fmark, m.name, false, strconv.Quote(truncate(bstr(dst[m.start:m.end]), 40))+
				" would make a dot segment (. or ..) of the URL path, which a server resolves to another path")
		}
	}
	return dst
}

// pathMark is where a path placeholder's text was written in a URL.
type pathMark struct {
	start, end int
	name       string
}

// templateFault records a fault of a template placeholder, once per name
// and kind for the faults since fmark (a value read twice in a URL is
// named once).
func (c *evalCtx) templateFault(fmark int, name string, missing bool, msg string) {
	for _, f := range c.faults[fmark:] {
		if f.path == name && f.missing == missing {
			return
		}
	}
	c.addFault(fault{path: name, missing: missing, msg: msg})
}

// placeholderProblem says why a placeholder's text cannot stand where it
// sits in a URL, or "".
func placeholderProblem(s string, e compiler.Escape) string {
	switch e {
	case compiler.EscapeHost:
		if !dnsLabel(s) {
			return strconv.Quote(truncate(s, 40)) + " cannot stand in the URL host: it must be one DNS label (letters, digits and '-', 1 to 63 of them, not starting or ending with '-')"
		}
	case compiler.EscapePort:
		if !portText(s) {
			return strconv.Quote(truncate(s, 40)) + " cannot stand in the URL port: it must be a number from 1 to 65535"
		}
	case compiler.EscapeHeader:
		if !headerText(s) {
			return strconv.Quote(truncate(s, 40)) + " cannot stand in a header value: " + headerTextProblem
		}
	}
	return ""
}

const headerTextProblem = "it holds a control character (CR, LF, NUL, DEL or another below space but tab), which would end the header or refuse the request"

// headerText reports whether s may stand in an HTTP header value: no
// control character but horizontal tab (RFC 9110 field-value, as Go's
// HTTP client checks before it sends).
func headerText(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' && b != '\t' || b == 0x7f {
			return false
		}
	}
	return true
}

// portText reports whether s is a port number, 1 to 65535.
func portText(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535 && s[0] >= '1' && s[0] <= '9'
}

// segmentAround returns the bounds of the URL path segment holding
// dst[start:end]: from the '/' before it to the '/', '?' or '#' after.
func segmentAround(dst []byte, start, end int) [2]int {
	for start > 0 && dst[start-1] != '/' {
		start--
	}
	for end < len(dst) && dst[end] != '/' && dst[end] != '?' && dst[end] != '#' {
		end++
	}
	return [2]int{start, end}
}

// dotSegment reports whether a URL path segment is, or holds, a dot
// segment (. or ..) as any server may read it: after decoding its percent
// escapes once (%2E is '.', %2F '/'), with '\' read as '/' (as some
// servers do), and with a ';' parameter cut off (Tomcat reads "..;x" as
// ".."). url.PathEscape leaves '.' as it is: "..", written in a path,
// would reach another resource.
func dotSegment(seg []byte) bool {
	n, dots, param := 0, true, false
	for i := 0; i <= len(seg); i++ {
		end := i == len(seg)
		var ch byte
		if !end {
			ch = seg[i]
			if ch == '%' && i+2 < len(seg) && isHex(seg[i+1]) && isHex(seg[i+2]) {
				ch = byte(hex4(seg[i+1 : i+3]))
				i += 2
			}
		}
		if end || ch == '/' || ch == '\\' || ch == ';' && !param {
			if !param && dots && (n == 1 || n == 2) {
				return true
			}
			n, dots, param = 0, true, ch == ';'
			continue
		}
		if !param {
			n++
			dots = dots && ch == '.'
		}
	}
	return false
}

func appendEscaped(dst []byte, s string, e compiler.Escape) []byte {
	switch e {
	case compiler.EscapePath:
		return append(dst, url.PathEscape(s)...)
	case compiler.EscapeQuery:
		return append(dst, url.QueryEscape(s)...)
	}
	return append(dst, s...)
}

// urlProblem says why a request may not be sent to a built URL, or "":
// it does not parse, carries user information, or its host is not in the
// bound allow-list. The URL is not quoted (its query may hold a secret).
func (in *Integration) urlProblem(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "the request URL does not parse"
	case u.User != nil:
		return "the request URL carries user information"
	case !in.HostAllowed(u.Hostname()):
		return "the request URL's host " + strconv.Quote(truncate(u.Hostname(), 60)) + " is not in the blueprint's hosts"
	}
	return ""
}

// renderStatic renders a template that reads config only.
func (in *Integration) renderStatic(t *compiler.Template) string {
	var b []byte
	for _, p := range t.Parts {
		switch {
		case p.Config != "":
			s, ok := in.configText[p.Config]
			if !ok && p.Optional {
				b = append(b, absentMark)
				continue
			}
			b = appendEscaped(b, s, p.Escape)
		default:
			b = append(b, p.Literal...)
		}
	}
	return string(b)
}

// absentMark stands, in a rendered template, for an optional placeholder
// that was absent (templates cannot hold a NUL, and escaped values never
// do): what holds it is then left out.
const absentMark = 0

// dropAbsentURL leaves out of a rendered URL what held an absent optional
// placeholder: its query parameter (name=value, and a ? left with
// nothing), or nothing at all in the path.
func dropAbsentURL(u []byte) []byte {
	if bytes.IndexByte(u, absentMark) < 0 {
		return u
	}
	path, query, hasQuery := bytes.Cut(u, []byte("?"))
	out := make([]byte, 0, len(u))
	for _, c := range path {
		if c != absentMark {
			out = append(out, c)
		}
	}
	if !hasQuery {
		return out
	}
	frag := []byte(nil)
	if i := bytes.IndexByte(query, '#'); i >= 0 {
		query, frag = query[:i], query[i:]
	}
	n := 0
	for _, pair := range bytes.Split(query, []byte("&")) {
		if len(pair) == 0 || bytes.IndexByte(pair, absentMark) >= 0 {
			continue
		}
		if n == 0 {
			out = append(out, '?')
		} else {
			out = append(out, '&')
		}
		out = append(out, pair...)
		n++
	}
	return append(out, frag...)
}

// absentHeader reports a header value that held an absent optional
// placeholder: the header is left out.
func absentHeader(v string) bool { return strings.IndexByte(v, absentMark) >= 0 }

func staticTemplate(t *compiler.Template) bool {
	if t == nil {
		return true
	}
	for _, p := range t.Parts {
		if p.Value != nil {
			return false
		}
	}
	return true
}

// requestPlan is what an integration knows of a request before any event:
// its URL and headers when they read config only, auth included.
type requestPlan struct {
	staticURL bool
	url       string
	// hostNames are the values and config keys that write the URL's host
	// and port (all of its placeholders when none does): a URL whose
	// final host is not allowed names them.
	hostNames  []string
	headers    []Header // static, auth included
	dynHeaders []*compiler.Header
	hasCT      bool
	queryAuth  string // "name=value", added to the URL's query
	queryName  string
	// method is the request's method, from config when it says so.
	method string
	// sig and sigKey sign the body when the chosen auth is a signature.
	sig    *compiler.Signature
	sigKey []byte
	// batch is the request's batching, decided at Bind; nil: none.
	batch *BatchPolicy
	// oauth gets the bearer token of an oauth2_client_credentials auth.
	oauth *oauthSource
	// smallBox: the request never has more than two headers (the static
	// and dynamic ones, a Content-Type, no signature or OAuth token
	// adding more): a smallRequestBox holds it.
	smallBox bool
}

func (in *Integration) planRequest(r *compiler.Request) *requestPlan {
	rp := &requestPlan{staticURL: staticTemplate(r.URL)}
	if rp.staticURL {
		rp.url = string(dropAbsentURL([]byte(in.renderStatic(r.URL))))
	}
	for _, host := range []bool{true, false} {
		for _, p := range r.URL.Parts {
			name := p.Config
			if p.Value != nil {
				name = p.Value.Name
			}
			inHost := p.Escape == compiler.EscapeHost || p.Escape == compiler.EscapePort
			if name != "" && (inHost || !host) && !slices.Contains(rp.hostNames, name) {
				rp.hostNames = append(rp.hostNames, name)
			}
		}
		if len(rp.hostNames) > 0 {
			break
		}
	}
	for _, h := range r.Headers {
		rp.hasCT = rp.hasCT || strings.EqualFold(h.Name, "Content-Type")
		if staticTemplate(h.Value) {
			if v := in.renderStatic(h.Value); !absentHeader(v) {
				rp.headers = append(rp.headers, Header{Name: h.Name, Value: v, Secret: h.Secret})
			}
		} else {
			rp.dynHeaders = append(rp.dynHeaders, h)
		}
	}
	rp.method = r.Method
	if r.MethodConfig != "" {
		rp.method = in.configText[r.MethodConfig]
	}
	rp.batch = in.batchPolicy(r)
	if a := in.chooseAuth(r); a != nil {
		render := func(t *compiler.Template) string {
			if t == nil {
				return ""
			}
			return in.renderStatic(t)
		}
		switch a.Type {
		case compiler.AuthBasic:
			cred := render(a.Username) + ":" + render(a.Password)
			rp.headers = append(rp.headers, Header{Name: "Authorization", Value: "Basic " + base64.StdEncoding.EncodeToString([]byte(cred)), Secret: true})
		case compiler.AuthBearer:
			rp.headers = append(rp.headers, Header{Name: "Authorization", Value: "Bearer " + render(a.Token), Secret: true})
		case compiler.AuthHeader:
			rp.headers = append(rp.headers, Header{Name: a.Name, Value: render(a.Value), Secret: true})
		case compiler.AuthQuery:
			rp.queryName = url.QueryEscape(a.Name)
			rp.queryAuth = rp.queryName + "=" + url.QueryEscape(render(a.Value))
		case compiler.AuthSignature:
			rp.sig, rp.sigKey = a.Signature, []byte(render(a.Signature.Secret))
		case compiler.AuthOAuth2:
			rp.oauth = newOAuthSource(clientcredentials.Config{ClientID: render(a.ClientID), ClientSecret: render(a.ClientSecret),
				TokenURL: render(a.TokenURL), Scopes: a.Scopes, AuthStyle: oauth2.AuthStyleInHeader})
			in.hasOAuth = true
		}
	}
	most := len(rp.headers) + len(rp.dynHeaders)
	if !rp.hasCT {
		most++ // the body's Content-Type
	}
	rp.smallBox = rp.sig == nil && rp.oauth == nil && most <= len(smallRequestBox{}.headers)
	return rp
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
