package compiler

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/suggest"
)

// Escape says how a placeholder's text is written where it stands: in a
// URL, or in a header value.
type Escape uint8

// Escapes.
const (
	EscapeNone   Escape = iota // headers and auth: as is
	EscapeHost                 // one DNS label, checked, never escaped
	EscapePath                 // percent-encoded as a path segment
	EscapeQuery                // percent-encoded as a query component
	EscapePort                 // the URL's port: digits, checked, never escaped
	EscapeHeader               // a header value: as is, without control characters (checked)
)

// template parses text with {config.KEY} and {values.NAME} placeholders.
// "{{" and "}}" stand for literal braces.
func (c *compiler) template(n *yaml.Node, sc *scope, _ bool) *Template {
	t, _, _ := c.templateAt(n, sc)
	return t
}

// templateAt parses a template and also returns the rune offset of each
// part in the text, and whether it parsed.
func (c *compiler) templateAt(n *yaml.Node, sc *scope) (*Template, []int, bool) {
	t := &Template{Text: n.Value}
	var offsets []int
	litStart := 0
	s := n.Value
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.Parts = append(t.Parts, TemplatePart{Literal: lit.String()})
			offsets = append(offsets, runeOffset(s, litStart))
			lit.Reset()
		}
	}
	// Every fault is reported, not only the first: a template is read to
	// its end.
	ok := true
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "{{"):
			lit.WriteByte('{')
			i++
		case strings.HasPrefix(s[i:], "}}"):
			lit.WriteByte('}')
			i++
		case s[i] == '}':
			c.ds.Errorf(c.exprPos(n, runeOffset(s, i)), "invalid_template", "unmatched } in template; write }} for a literal brace")
			ok = false
		case s[i] == 0:
			c.ds.Errorf(c.exprPos(n, runeOffset(s, i)), "invalid_template", "a template cannot hold a NUL character")
			ok = false
		case s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				c.ds.Errorf(c.exprPos(n, runeOffset(s, i)), "invalid_template", "unclosed { in template; write {{ for a literal brace")
				return t, offsets, false
			}
			ref := strings.TrimSpace(s[i+1 : i+end])
			pos := c.exprPos(n, runeOffset(s, i+1))
			flush()
			optional := strings.HasSuffix(ref, "?")
			p, good := c.placeholder(strings.TrimSpace(strings.TrimSuffix(ref, "?")), pos, sc)
			p.Optional = optional
			if good {
				t.Parts = append(t.Parts, p)
				offsets = append(offsets, runeOffset(s, i))
				t.HasOptional = t.HasOptional || optional
			}
			ok = ok && good
			i += end
			litStart = i + 1
		default:
			if lit.Len() == 0 {
				litStart = i
			}
			lit.WriteByte(s[i])
		}
	}
	flush()
	return t, offsets, ok
}

func runeOffset(s string, byteOff int) int { return len([]rune(s[:byteOff])) }

func (c *compiler) placeholder(ref string, pos diag.Pos, sc *scope) (TemplatePart, bool) {
	root, name, ok := strings.Cut(ref, ".")
	switch {
	case ok && root == "config":
		f := c.config[name]
		if f == nil {
			c.ds.Errorf(pos, "unknown_config", "unknown config key %s%s", name, suggest.DidYouMean(name, c.configKeys()))
			return TemplatePart{}, false
		}
		if f.Secret() {
			sc.secret = true
		}
		return TemplatePart{Config: name}, true
	case ok && root == "values":
		v := c.valueRef(name, nil, pos)
		if v == nil {
			return TemplatePart{}, false
		}
		if c.secretValue[v] {
			sc.secret = true
		}
		return TemplatePart{Value: v}, true
	}
	c.ds.Errorf(pos, "invalid_template", "placeholder {%s} must be {config.KEY} or {values.NAME} (with ? after it when it may be absent: {values.NAME?})", ref)
	return TemplatePart{}, false
}

// urlTemplate parses a request URL template, decides how each placeholder
// is escaped, and checks that its host is covered by hosts.
func (c *compiler) urlTemplate(n *yaml.Node) *Template {
	sc := &scope{self: -1}
	t, offsets, ok := c.templateAt(n, sc)
	if !ok {
		return t
	}
	at := func(k int) diag.Pos { return c.exprPos(n, offsets[k]) }
	// A url config is a whole URL: it stands alone, written as it is, and
	// its host is allowed by {config.KEY} in hosts.
	for k, p := range t.Parts {
		if f := c.config[p.Config]; f == nil || f.Type != ConfigURL {
			continue
		}
		switch {
		case len(t.Parts) != 1 || p.Optional:
			c.ds.Errorf(at(k), "invalid_url", "config %s is a whole URL: write url: \"{config.%s}\" with nothing around it", p.Config, p.Config)
		case !slices.Contains(c.bp.HostConfigs, p.Config):
			c.ds.Errorf(at(k), "host_not_allowed", "the URL is config %s: add \"{config.%s}\" to hosts to allow its host", p.Config, p.Config)
		}
		return t
	}
	for k, p := range t.Parts {
		if p.Config != "" && c.config[p.Config] != nil && c.config[p.Config].Secret() || p.Value != nil && c.secretValue[p.Value] {
			c.ds.Errorf(at(k), "secret_leak", "the URL reads a secret, and URLs are logged; use auth (type query puts a secret in the query string, redacted)")
		}
	}
	// The URL's shape, with each placeholder as one NUL byte.
	var lits strings.Builder
	for _, p := range t.Parts {
		if p.Config == "" && p.Value == nil {
			lits.WriteString(p.Literal)
		} else {
			lits.WriteString("\x00")
		}
	}
	shape := lits.String()
	scheme, rest, ok := strings.Cut(shape, "://")
	if !ok || (scheme != "https" && scheme != "http") {
		c.ds.Errorf(c.pos(n), "invalid_url", "URL must start with https:// (or http://)")
		return t
	}
	hostStart := len(scheme) + 3
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	hostPort := rest[:hostEnd]
	if strings.Contains(hostPort, "@") {
		c.ds.Errorf(c.exprPos(n, hostStart), "invalid_url", "URL must not carry user information (@); use auth")
		return t
	}
	host, port := hostPort, ""
	if i := strings.LastIndexByte(hostPort, ':'); i >= 0 {
		host, port = hostPort[:i], hostPort[i+1:]
	}
	// shapeToPart maps a shape offset of a placeholder to its part.
	partAt := func(shapeOff int) int {
		off := 0
		for k, p := range t.Parts {
			if p.Config == "" && p.Value == nil {
				off += len(p.Literal)
				continue
			}
			if off == shapeOff {
				return k
			}
			off++
		}
		return 0
	}
	labels := strings.Split(host, ".")
	off := hostStart
	for i, l := range labels {
		if j := strings.IndexByte(l, 0); j >= 0 {
			if l != "\x00" {
				c.ds.Errorf(at(partAt(off+j)), "host_not_allowed", "a placeholder in the URL host must be a whole label, as in https://{config.app}.example.com")
				return t
			}
			labels[i] = "*"
		}
		off += len(l) + 1
	}
	if strings.Trim(port, "0123456789\x00") != "" {
		c.ds.Errorf(c.exprPos(n, hostStart+len(host)), "invalid_url", "URL port %q is not a number", port)
		return t
	}
	pattern := strings.ToLower(strings.Join(labels, "."))
	if !c.hostCovered(pattern) {
		c.ds.Errorf(c.hostPos(n, t, offsets, hostStart), "host_not_allowed", "URL host %s is not covered by hosts (%s)", strings.ReplaceAll(pattern, "*", "{...}"), strings.Join(c.bp.Hosts, ", "))
	}
	// Assign escapes by where each placeholder sits.
	hostStop := hostStart + hostEnd
	portStart := hostStart + len(host) // the ':' before the port, if any
	query := strings.IndexAny(shape[hostStop:], "?#")
	if query < 0 {
		query = len(shape)
	} else {
		query += hostStop
	}
	pos := 0
	for i := range t.Parts {
		p := &t.Parts[i]
		if p.Config == "" && p.Value == nil {
			pos += len(p.Literal)
			continue
		}
		switch {
		case pos < hostStop && port != "" && pos > portStart:
			p.Escape = EscapePort
		case pos < hostStop:
			p.Escape = EscapeHost
		case pos < query:
			p.Escape = EscapePath
		default:
			p.Escape = EscapeQuery
		}
		pos++
	}
	for k, p := range t.Parts {
		if p.Optional && (p.Escape == EscapeHost || p.Escape == EscapePort) {
			c.ds.Errorf(at(k), "invalid_template", "a placeholder in the URL host or port cannot be optional (?): a request needs its host")
		}
		if p.Value != nil && (p.Escape == EscapeHost || p.Escape == EscapePort) {
			c.checkHostValue(p.Value, p.Escape, at(k))
		}
	}
	return t
}

// checkHostValue refuses event data in a URL's host or port unless the
// value declares what it may be: a type string or id with a pattern whose
// every match is made of a DNS label's characters (digits for a port).
// The allow-list stops other hosts either way (at run time the text must
// be one DNS label and the final host is checked), but which of the hosts
// it covers an event may pick is the author's decision, to be written
// down: a *.example.com entry would otherwise let any event pick any
// tenant's subdomain, with the integration's credentials attached.
func (c *compiler) checkHostValue(v *Value, e Escape, pos diag.Pos) {
	if !readsEvent(v, map[*Value]bool{}) {
		return
	}
	where, chars, example := "host", "letters, digits and '-'", `type: string, pattern: "[a-z]{2}-[a-z]+"`
	if e == EscapePort {
		where, chars, example = "port", "digits", `type: string, pattern: "[0-9]{2,5}"`
	}
	switch {
	case v.Type.Kind != KindString && v.Type.Kind != KindID || v.Type.Pattern == nil:
		c.ds.Errorf(pos, "host_from_event", "value %s reads event data into the URL %s: declare what it may be with a type string and a pattern of %s only (%s), or take it from config", v.Name, where, chars, example)
	case !patternWithin(v.Type.Pattern, e == EscapePort):
		c.ds.Errorf(pos, "host_from_event", "value %s reads event data into the URL %s, and its pattern allows other characters than %s: narrow the pattern (%s)", v.Name, where, chars, example)
	}
}

// readsEvent reports whether a value is computed from event data: a path,
// an expression reading the event or an item, the source event name, or a
// value that reads one of those.
func readsEvent(v *Value, seen map[*Value]bool) bool {
	if v == nil || seen[v] {
		return false
	}
	seen[v] = true
	if v.Builtin {
		// vendor_event may be computed from the event.
		return v.Name == ValueSourceEvent || v.Name == ValueEventType || v.Name == ValueVendorEvent
	}
	for _, s := range v.Sources {
		switch s.Kind {
		case SourcePath:
			return true
		case SourceValue:
			if readsEvent(s.Value, seen) {
				return true
			}
		case SourceExpr:
			if s.Expr == nil {
				continue
			}
			for _, in := range s.Expr.Inputs {
				switch in.Kind {
				case InputEvent, InputItem:
					return true
				case InputValue:
					if readsEvent(in.Value, seen) {
						return true
					}
				}
			}
		}
	}
	return false
}

// patternWithin reports whether every text a pattern matches is made of a
// DNS label's characters (letters, digits, '-'), or of digits only.
func patternWithin(re *regexp.Regexp, digits bool) bool {
	in := func(r rune) bool {
		return r >= '0' && r <= '9' || !digits && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '-')
	}
	tree, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return false
	}
	var within func(n *syntax.Regexp) bool
	within = func(n *syntax.Regexp) bool {
		switch n.Op {
		case syntax.OpNoMatch, syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine,
			syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
			return true
		case syntax.OpLiteral:
			for _, r := range n.Rune {
				if !in(r) {
					return false
				}
				// (?i)k also matches the Kelvin sign, (?i)s the long s.
				for f := unicode.SimpleFold(r); n.Flags&syntax.FoldCase != 0 && f != r; f = unicode.SimpleFold(f) {
					if !in(f) {
						return false
					}
				}
			}
			return true
		case syntax.OpCharClass:
			for i := 0; i+1 < len(n.Rune); i += 2 {
				for r := n.Rune[i]; r <= n.Rune[i+1]; r++ {
					if !in(r) {
						return false
					}
				}
			}
			return true
		case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat, syntax.OpConcat, syntax.OpAlternate:
			for _, s := range n.Sub {
				if !within(s) {
					return false
				}
			}
			return true
		}
		return false // any character
	}
	return within(tree)
}

// hostPos is the position of the host in a URL template: it starts in the
// first part, right after the scheme.
func (c *compiler) hostPos(n *yaml.Node, t *Template, offsets []int, hostStart int) diag.Pos {
	if len(t.Parts) > 0 && t.Parts[0].Config == "" && t.Parts[0].Value == nil && len(t.Parts[0].Literal) > hostStart {
		return c.exprPos(n, offsets[0]+runeOffset(t.Parts[0].Literal, hostStart))
	}
	return c.pos(n)
}

// hostCovered reports whether a host pattern (labels, '*' for a
// placeholder label) is covered by the declared hosts.
func (c *compiler) hostCovered(pattern string) bool {
	return HostAllowed(c.bp.Hosts, pattern)
}

// HostAllowed reports whether host is covered by one of hosts: an exact
// match, or "*.rest" matching one label followed by rest. A host given as a
// pattern may hold "*" for a placeholder label.
func HostAllowed(hosts []string, host string) bool {
	host = strings.ToLower(host)
	for _, h := range hosts {
		if h == host {
			return true
		}
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			label, hostRest, ok := strings.Cut(host, ".")
			if ok && label != "" && hostRest == rest {
				return true
			}
		}
	}
	return false
}
