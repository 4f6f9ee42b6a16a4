package runtime

import (
	"net/http"
	"strings"
	"unicode"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/encoding"
)

// Verdict is what a vendor's answer means for one attempt.
type Verdict struct {
	// Outcome is Delivered, Duplicate, Retry or Failed.
	Outcome Outcome
	Status  int
	// Message says why, for logs and dead letters: the rule's message, the
	// vendor's error message, or the status text. It never holds a secret.
	Message string
}

// Final reports whether no further attempt will be made.
func (v Verdict) Final() bool { return v.Outcome != Retry }

// Delivered reports whether the vendor has the request (delivered or
// duplicate).
func (v Verdict) Delivered() bool {
	return v.Outcome == Delivered || v.Outcome == Duplicate
}

// defaultRules answer requests built without a blueprint's rules.
var defaultRules = compiler.DefaultResponseRules()

// Classify reads a vendor's answer to req with the blueprint's response
// rules: the request's own, then the blueprint's, then the defaults.
func (in *Integration) Classify(req *Request, status int, header http.Header, body []byte) Verdict {
	var resp *compiler.Responses
	if req.spec != nil {
		resp = req.spec.Responses
	}
	rules := defaultRules
	if resp != nil {
		rules = resp.Rules
	}
	rc := &responseCtx{status: status, header: header, body: body}
	for _, r := range rules {
		if !r.Match(status) {
			continue
		}
		if r.When != nil && !in.ruleHolds(r.When, rc) {
			continue
		}
		v := Verdict{Outcome: Outcome(r.Outcome), Status: status, Message: r.Message}
		if v.Delivered() && r.MessageExpr == nil {
			v.Message = in.Redact(v.Message) // nothing of the vendor's is kept
			return v
		}
		red := in.requestRedactor(req)
		if r.MessageExpr != nil {
			if m := in.ruleMessage(r.MessageExpr, rc); m != "" {
				v.Message = clip(in.Redact(red.String(m))) // scrubbed before it is cut
			}
		}
		if v.Message == "" && !v.Delivered() {
			v.Message = vendorMessage(resp, status, body, red, in.red)
		}
		v.Message = in.Redact(v.Message)
		return v
	}
	return Verdict{Outcome: Failed, Status: status, Message: in.Redact(vendorMessage(resp, status, body, in.requestRedactor(req), in.red))}
}

// requestRedactor knows the secret headers req carries that were not
// rendered at Bind: a signature made for this attempt (and for each batch),
// a secret header read from the event. A vendor echoing them in its answer
// must not put them in a message (logs, dead letters): a signature lets
// whoever reads it replay the request.
func (in *Integration) requestRedactor(req *Request) *redactor {
	var vals []string
	var sig *compiler.Signature
	if rp := in.requests[req.spec]; rp != nil {
		sig = rp.sig
	}
	for _, h := range req.Headers {
		if !h.Secret || sig != nil && h.Name == sig.TimestampHeader {
			continue // a time is no secret
		}
		vals = append(vals, h.Value)
		if sig != nil && h.Name == sig.Header {
			// The digest alone, and in upper-case hex, as a vendor that
			// says which signature it expected may write it.
			digest := strings.TrimPrefix(h.Value, sig.Prefix)
			vals = append(vals, digest, strings.ToUpper(digest))
		}
		// The credential after its scheme word (a fetched OAuth token):
		// a vendor echoes it alone, in whatever escapes it writes.
		if scheme, cred, ok := strings.Cut(h.Value, " "); ok && scheme != "" && !strings.ContainsAny(scheme, "=:") && cred != "" {
			vals = append(vals, cred)
		}
	}
	if len(vals) == 0 {
		return &redactor{}
	}
	return newRedactor(nil, vals...)
}

// responseCtx is what a response rule's expression reads.
type responseCtx struct {
	status int
	header http.Header
	body   []byte
}

func (in *Integration) ruleHolds(e *compiler.Expr, rc *responseCtx) bool {
	c := ctxPool.Get().(*evalCtx)
	defer c.release()
	c.in = in
	c.resp = rc
	ok, err := c.runBool(e, &scope{})
	return err == nil && ok
}

// ruleMessage runs a rule's message_expr: its text, or "".
func (in *Integration) ruleMessage(e *compiler.Expr, rc *responseCtx) string {
	c := ctxPool.Get().(*evalCtx)
	defer c.release()
	c.in = in
	c.resp = rc
	v, err := c.runExpr(e, &scope{})
	if err != nil || v.st != present {
		return ""
	}
	if v.jt == '"' {
		return string(v.b)
	}
	return string(c.jsonText(v))
}

// vendorMessage is the vendor's error message (at the blueprint's message
// path), else the start of the body, else the status text. The vendor's
// text is scrubbed before it is cut, so that no cut falls inside a secret
// it echoes.
func vendorMessage(resp *compiler.Responses, status int, body []byte, reds ...*redactor) string {
	scrub := func(s string) string {
		for _, r := range reds {
			s = r.String(s)
		}
		return s
	}
	if resp != nil && resp.MessagePath != "" && gjson.ValidBytes(body) {
		if m := gjson.GetBytes(body, resp.MessagePath); m.Exists() && m.String() != "" {
			return clip(scrub(m.String()))
		}
	}
	text := http.StatusText(status)
	if status == 0 {
		text = "no answer"
	}
	// Strings unescaped first, so that a secret written with \u escapes
	// is scrubbed like any other.
	if b := strings.TrimSpace(scrub(string(encoding.CanonicalJSON(body)))); b != "" && status != 0 {
		return text + ": " + clip(b)
	}
	return text
}

// clip makes vendor text safe for one log line: printable, at most 200
// characters.
func clip(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	return truncate(s, 200)
}
