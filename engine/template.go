package engine

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/suggest"
)

// Escape says how a placeholder's text is written into a URL.
type Escape uint8

// Escapes.
const (
	EscapeNone  Escape = iota // headers and auth: as is
	EscapeHost                // one DNS label, checked, never escaped
	EscapePath                // percent-encoded as a path segment
	EscapeQuery               // percent-encoded as a query component
)

// template parses text with {config.KEY} and {values.NAME} placeholders.
// "{{" and "}}" stand for literal braces.
func (c *compiler) template(n *yaml.Node, sc *scope, _ bool) *Template {
	t := &Template{Text: n.Value}
	s := n.Value
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.Parts = append(t.Parts, TemplatePart{Literal: lit.String()})
			lit.Reset()
		}
	}
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
			return t
		case s[i] == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				c.ds.Errorf(c.exprPos(n, runeOffset(s, i)), "invalid_template", "unclosed { in template; write {{ for a literal brace")
				return t
			}
			ref := strings.TrimSpace(s[i+1 : i+end])
			pos := c.exprPos(n, runeOffset(s, i+1))
			flush()
			if p, ok := c.placeholder(ref, pos, sc); ok {
				t.Parts = append(t.Parts, p)
			}
			i += end
		default:
			lit.WriteByte(s[i])
		}
	}
	flush()
	return t
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
	c.ds.Errorf(pos, "invalid_template", "placeholder {%s} must be {config.KEY} or {values.NAME}", ref)
	return TemplatePart{}, false
}

// urlTemplate parses a request URL template, decides how each placeholder
// is escaped, and checks that its host is covered by hosts.
func (c *compiler) urlTemplate(n *yaml.Node) *Template {
	sc := &scope{self: -1}
	t := c.template(n, sc, true)
	if sc.secret {
		c.ds.Errorf(c.pos(n), "secret_leak", "the URL reads a secret; URLs are logged. Use auth (type query puts a secret in the query string, redacted)")
	}
	// Walk the parts: scheme, host, path, query, fragment.
	var lits strings.Builder
	for _, p := range t.Parts {
		if p.Config == "" && p.Value == nil {
			lits.WriteString(p.Literal)
		} else {
			lits.WriteString("\x00")
		}
	}
	shape := lits.String() // placeholders as NUL
	scheme, rest, ok := strings.Cut(shape, "://")
	if !ok || (scheme != "https" && scheme != "http") {
		c.ds.Errorf(c.pos(n), "invalid_url", "URL must start with https:// (or http://)")
		return t
	}
	hostEnd := strings.IndexAny(rest, "/?#")
	if hostEnd < 0 {
		hostEnd = len(rest)
	}
	hostPort := rest[:hostEnd]
	if strings.ContainsAny(hostPort, "@") {
		c.ds.Errorf(c.pos(n), "invalid_url", "URL must not carry user information (@); use auth")
		return t
	}
	host := hostPort
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "\x00") {
		host = host[:i]
	}
	labels := strings.Split(host, ".")
	for i, l := range labels {
		if strings.Contains(l, "\x00") {
			if l != "\x00" {
				c.ds.Errorf(c.pos(n), "host_not_allowed", "a placeholder in the URL host must be a whole label, as in https://{config.app}.example.com")
				return t
			}
			labels[i] = "*"
		}
	}
	pattern := strings.ToLower(strings.Join(labels, "."))
	if !c.hostCovered(pattern) {
		c.ds.Errorf(c.pos(n), "host_not_allowed", "URL host %s is not covered by hosts (%s)", strings.ReplaceAll(pattern, "*", "{...}"), strings.Join(c.bp.Hosts, ", "))
	}
	// Assign escapes by where each placeholder sits.
	hostStart := len(scheme) + 3
	hostStop := hostStart + hostEnd
	query := strings.IndexAny(shape[hostStop:], "?#")
	if query < 0 {
		query = len(shape)
	} else {
		query += hostStop
	}
	at := 0
	for i := range t.Parts {
		p := &t.Parts[i]
		if p.Config == "" && p.Value == nil {
			at += len(p.Literal)
			continue
		}
		switch {
		case at < hostStop:
			p.Escape = EscapeHost
		case at < query:
			p.Escape = EscapePath
		default:
			p.Escape = EscapeQuery
		}
		at++
	}
	return t
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
