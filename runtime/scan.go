package runtime

import (
	"encoding/binary"
	"errors"
	"strconv"
	"unicode/utf8"
)

// The event scanner validates an event in one pass and, on the way,
// records where the values the blueprint reads are: a trie of the field
// paths, built once per variant, says which keys to remember. Nothing is
// copied or unmarshalled.

// span is where a value sits in the event.
type span struct {
	start, end int32
	kind       byte // '"' string, '0' number, 't' true, 'f' false, 'n' null, '{' object, '[' array; 0: absent
	esc        bool // a string holding escapes
}

func (s span) present() bool { return s.kind != 0 }

// trie is a node of the path trie. A node with slot >= 0 records the value
// at its path.
type trie struct {
	keys     []string
	children []*trie
	slot     int
	// index children match array elements by position.
	index map[int]*trie
}

func newTrie() *trie { return &trie{slot: -1} }

func (t *trie) child(key []byte) *trie {
	if t == nil {
		return nil
	}
	for i, k := range t.keys {
		if k == string(key) { // no allocation: compared in place
			return t.children[i]
		}
	}
	return nil
}

func (t *trie) add(segs []string, slot int) {
	n := t
	for _, s := range segs {
		var next *trie
		for i, k := range n.keys {
			if k == s {
				next = n.children[i]
			}
		}
		if next == nil {
			next = newTrie()
			n.keys = append(n.keys, s)
			n.children = append(n.children, next)
			if i, err := strconv.Atoi(s); err == nil && i >= 0 && (s == "0" || s[0] != '0') {
				if n.index == nil {
					n.index = map[int]*trie{}
				}
				n.index[i] = next
			}
		}
		n = next
	}
	n.slot = slot
}

var (
	errSyntax   = errors.New("malformed JSON")
	errTooDeep  = errors.New("too deep")
	errTrailing = errors.New("trailing data")
)

// scanner validates JSON and fills slots.
type scanner struct {
	b        []byte
	i        int
	depth    int
	maxDepth int
	deepest  int
	slots    []span
	keyBuf   []byte
	// base is subtracted from recorded positions (elements of an array
	// are scanned in place, their spans relative to the element).
	base int
}

// scan validates b as exactly one JSON value (surrounded by white space)
// and records the values t names. maxDepth bounds nesting.
func (s *scanner) scan(b []byte, t *trie, slots []span, maxDepth int) error {
	s.b, s.i, s.depth, s.deepest, s.maxDepth, s.slots, s.base = b, 0, 0, 0, maxDepth, slots, 0
	s.ws()
	if err := s.value(t); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return errTrailing
	}
	return nil
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) record(t *trie, sp span) {
	if t != nil && t.slot >= 0 && !s.slots[t.slot].present() {
		sp.start -= int32(s.base)
		sp.end -= int32(s.base)
		s.slots[t.slot] = sp // the first of duplicate keys wins
	}
}

func (s *scanner) value(t *trie) error {
	if s.i >= len(s.b) {
		return errSyntax
	}
	start := s.i
	kind := s.b[s.i]
	var esc bool
	var err error
	switch {
	case kind == '{':
		err = s.object(t)
	case kind == '[':
		err = s.array(t)
	case kind == '"':
		esc, err = s.str()
	case kind == '-' || kind >= '0' && kind <= '9':
		kind, err = '0', s.number()
	case kind == 't':
		err = s.lit("true")
	case kind == 'f':
		err = s.lit("false")
	case kind == 'n':
		err = s.lit("null")
	default:
		return errSyntax
	}
	if err != nil {
		return err
	}
	s.record(t, span{start: int32(start), end: int32(s.i), kind: kind, esc: esc})
	return nil
}

func (s *scanner) enter() error {
	s.depth++
	if s.depth > s.deepest {
		s.deepest = s.depth
	}
	if s.depth > s.maxDepth {
		return errTooDeep
	}
	return nil
}

func (s *scanner) object(t *trie) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.i++ // {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errSyntax
		}
		ks := s.i + 1
		esc, err := s.str()
		if err != nil {
			return err
		}
		var ct *trie
		if t != nil && len(t.keys) > 0 {
			key := s.b[ks : s.i-1]
			if esc {
				s.keyBuf = unescape(s.keyBuf[:0], key)
				key = s.keyBuf
			}
			ct = t.child(key)
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errSyntax
		}
		s.i++
		s.ws()
		if err := s.value(ct); err != nil {
			return err
		}
		if done, err := s.next('}'); done || err != nil {
			return err
		}
	}
}

func (s *scanner) array(t *trie) error {
	if err := s.enter(); err != nil {
		return err
	}
	s.i++ // [
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return nil
	}
	for n := 0; ; n++ {
		var ct *trie
		if t != nil && t.index != nil {
			ct = t.index[n]
		}
		if err := s.value(ct); err != nil {
			return err
		}
		if done, err := s.next(']'); done || err != nil {
			return err
		}
	}
}

// next reads what follows a member or an element: a comma, or the closing
// byte of the container (done).
func (s *scanner) next(closing byte) (done bool, err error) {
	s.ws()
	if s.i >= len(s.b) {
		return false, errSyntax
	}
	switch s.b[s.i] {
	case ',':
		s.i++
		s.ws()
		return false, nil
	case closing:
		s.i++
		s.depth--
		return true, nil
	}
	return false, errSyntax
}

// str scans a string starting at its quote and reports whether it holds
// escapes. Control characters are refused; UTF-8 is checked by the caller
// over the whole event.
func (s *scanner) str() (esc bool, err error) {
	b := s.b
	i := s.i + 1
	for {
		// The common case: plain characters, eight at a time.
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			if special8(x) {
				break
			}
			i += 8
		}
		for i < len(b) {
			c := b[i]
			if c == '"' || c == '\\' || c < 0x20 {
				break
			}
			i++
		}
		if i >= len(b) || b[i] < 0x20 {
			return false, errSyntax
		}
		if b[i] == '"' {
			s.i = i + 1
			return esc, nil
		}
		// An escape.
		esc = true
		if i+1 >= len(b) {
			return false, errSyntax
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
				return false, errSyntax
			}
			i += 6
		default:
			return false, errSyntax
		}
	}
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 reports whether any of eight bytes is a quote, a backslash or a
// control character (below 0x20): the bytes a string scan must stop at.
func special8(x uint64) bool {
	quote := x ^ (ones * '"')
	back := x ^ (ones * '\\')
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	below := (x - ones*0x20) & ^x & highs
	return hasZero(quote)|hasZero(back)|below != 0
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func (s *scanner) number() error {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return errSyntax
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return errSyntax
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return errSyntax
		}
	}
	s.i = i
	return nil
}

func (s *scanner) lit(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return errSyntax
	}
	s.i += len(word)
	return nil
}

// unescape appends the text of a JSON string body (without its quotes,
// already validated) to dst. Lone surrogates become U+FFFD.
func unescape(dst, b []byte) []byte {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch b[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := rune(hex4(b[i+1 : i+5]))
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				lo := rune(hex4(b[i+3 : i+7]))
				if lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // " \ /
			dst = append(dst, b[i])
		}
	}
	return dst
}

func hex4(b []byte) int {
	n := 0
	for _, c := range b {
		n <<= 4
		switch {
		case c >= '0' && c <= '9':
			n |= int(c - '0')
		case c >= 'a' && c <= 'f':
			n |= int(c-'a') + 10
		default:
			n |= int(c-'A') + 10
		}
	}
	return n
}
