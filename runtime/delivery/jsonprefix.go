package delivery

// jsonPrefix checks, one byte at a time, that a text is a prefix of exactly
// one JSON value (RFC 8259, with white space around it), and tells when it
// is that whole value. It is how Reader decides whether an input whose
// first line is not a value on its own is one pretty-printed value: only
// if the whole input parses as one. It accepts what encoding/json's Valid
// accepts (invalid UTF-8 in strings included); its memory is one byte per
// open object or array.
type jsonPrefix struct {
	st    prefixState
	stack []byte // the open containers, '{' or '['
	key   bool   // the string being read is an object key
	hex   int    // hex digits left in a \u escape
	lit   string // the rest of a true, false or null being read
}

type prefixState uint8

const (
	stValue    prefixState = iota // before a value
	stAfter                       // after a value
	stObjFirst                    // after '{': a key or '}'
	stObjKey                      // after ',' in an object: a key
	stColon                       // after a key: ':'
	stArrFirst                    // after '[': a value or ']'
	stStr                         // in a string
	stStrEsc                      // after '\' in a string
	stStrHex                      // in the hex digits of \uXXXX
	stNumMinus                    // after a leading '-'
	stNumZero                     // after a leading 0
	stNumInt                      // in the integer part
	stNumDot                      // after '.'
	stNumFrac                     // in the fraction
	stNumE                        // after 'e' or 'E'
	stNumESign                    // after the exponent's sign
	stNumExp                      // in the exponent
	stLit                         // in true, false or null
	stError                       // not a prefix of one JSON value
)

// write feeds b and reports whether the text so far is still a prefix of
// one JSON value.
func (p *jsonPrefix) write(b []byte) bool {
	for _, c := range b {
		if !p.step(c) {
			p.st = stError
			return false
		}
	}
	return p.st != stError
}

// complete reports whether the text so far is exactly one JSON value.
func (p *jsonPrefix) complete() bool {
	if len(p.stack) > 0 {
		return false
	}
	switch p.st {
	case stAfter, stNumZero, stNumInt, stNumFrac, stNumExp: // a number ends with the text
		return true
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func (p *jsonPrefix) step(c byte) bool {
	switch p.st {
	case stValue:
		if isSpace(c) {
			return true
		}
		return p.begin(c)
	case stArrFirst:
		switch {
		case isSpace(c):
			return true
		case c == ']':
			return p.close('[')
		}
		return p.begin(c)
	case stAfter:
		if isSpace(c) {
			return true
		}
		if len(p.stack) == 0 {
			return false // something after the value: not exactly one
		}
		top := p.stack[len(p.stack)-1]
		switch {
		case c == ',' && top == '{':
			p.st = stObjKey
		case c == ',' && top == '[':
			p.st = stValue
		case c == '}':
			return p.close('{')
		case c == ']':
			return p.close('[')
		default:
			return false
		}
	case stObjFirst, stObjKey:
		switch {
		case isSpace(c):
		case c == '"':
			p.st, p.key = stStr, true
		case c == '}' && p.st == stObjFirst:
			return p.close('{')
		default:
			return false
		}
	case stColon:
		switch {
		case isSpace(c):
		case c == ':':
			p.st = stValue
		default:
			return false
		}
	case stStr:
		switch {
		case c == '"':
			if p.key {
				p.key, p.st = false, stColon
			} else {
				p.end()
			}
		case c == '\\':
			p.st = stStrEsc
		case c < 0x20:
			return false
		}
	case stStrEsc:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			p.st = stStr
		case 'u':
			p.st, p.hex = stStrHex, 4
		default:
			return false
		}
	case stStrHex:
		if !isHex(c) {
			return false
		}
		if p.hex--; p.hex == 0 {
			p.st = stStr
		}
	case stNumMinus:
		switch {
		case c == '0':
			p.st = stNumZero
		case isDigit(c):
			p.st = stNumInt
		default:
			return false
		}
	case stNumZero, stNumInt, stNumFrac:
		switch {
		case isDigit(c) && p.st != stNumZero:
		case c == '.' && p.st != stNumFrac:
			p.st = stNumDot
		case c == 'e' || c == 'E':
			p.st = stNumE
		default:
			p.end() // the number ended before c
			return p.step(c)
		}
	case stNumDot:
		if !isDigit(c) {
			return false
		}
		p.st = stNumFrac
	case stNumE:
		switch {
		case c == '+' || c == '-':
			p.st = stNumESign
		case isDigit(c):
			p.st = stNumExp
		default:
			return false
		}
	case stNumESign:
		if !isDigit(c) {
			return false
		}
		p.st = stNumExp
	case stNumExp:
		if !isDigit(c) {
			p.end()
			return p.step(c)
		}
	case stLit:
		if c != p.lit[0] {
			return false
		}
		if p.lit = p.lit[1:]; p.lit == "" {
			p.end()
		}
	default:
		return false
	}
	return true
}

// begin starts a value with c.
func (p *jsonPrefix) begin(c byte) bool {
	switch {
	case c == '{':
		p.stack, p.st = append(p.stack, '{'), stObjFirst
	case c == '[':
		p.stack, p.st = append(p.stack, '['), stArrFirst
	case c == '"':
		p.st, p.key = stStr, false
	case c == '-':
		p.st = stNumMinus
	case c == '0':
		p.st = stNumZero
	case isDigit(c):
		p.st = stNumInt
	case c == 't':
		p.st, p.lit = stLit, "rue"
	case c == 'f':
		p.st, p.lit = stLit, "alse"
	case c == 'n':
		p.st, p.lit = stLit, "ull"
	default:
		return false
	}
	return true
}

// close ends the innermost container, which must be open.
func (p *jsonPrefix) close(open byte) bool {
	if len(p.stack) == 0 || p.stack[len(p.stack)-1] != open {
		return false
	}
	p.stack = p.stack[:len(p.stack)-1]
	p.end()
	return true
}

func (p *jsonPrefix) end() { p.st = stAfter }
