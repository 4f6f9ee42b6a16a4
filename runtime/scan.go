package runtime

import (
	"bytes"
	"errors"
	"hash/maphash"
	"math/bits"
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
	// each, when set, is the trie of every element of the array at this
	// node: the main scan records each element's values in a window of
	// eachN slots, so that array items are never scanned twice.
	each  *trie
	eachN int
	// eachObj is the items object the windows are for.
	eachObj any
	// whole: the value at this node may be read as a whole, by key,
	// without the trie (see markWhole): a scan checking duplicate keys
	// checks every key below it, not only the keys of the trie.
	whole bool
	// words0 and words1 are keys' texts as key reads a short key from the
	// event: two little-endian words, the bytes past the key zero and its
	// length in the top byte (keyWords). Two slices rather than one of
	// pairs: the search compares the first words, eight bytes apart
	// (measured 4-5 % faster on the scan, twice: at the noise's edge).
	words0, words1 []uint64
}

func newTrie() *trie { return &trie{slot: -1} }

// maxWordKey is the longest key key compares as two words: with its
// length in the last byte, fifteen bytes.
const maxWordKey = 15

// keyWords returns the words of a key's text; a longer one gets words no
// key read from the event has (its length byte is more than 15).
func keyWords(k string) (w [2]uint64) {
	if len(k) > maxWordKey {
		return [2]uint64{0, 0xff << 56}
	}
	for j := len(k) - 1; j >= 0; j-- {
		w[j>>3] |= uint64(k[j]) << (8 * (j & 7))
	}
	w[1] |= uint64(len(k)) << 56
	return w
}

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

// maxMaskedKeys is the most keys a trie node may have for a scan to check
// its objects' keys with a bit each (in frame.n); a node with more is
// read whole (every key below it checked with fingerprints).
const maxMaskedKeys = 32

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
			w := keyWords(s)
			n.words0, n.words1 = append(n.words0, w[0]), append(n.words1, w[1])
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
	errSyntax    = errors.New("malformed JSON")
	errTooDeep   = errors.New("too deep")
	errTrailing  = errors.New("trailing data")
	errDuplicate = errors.New("duplicate key")
)

// scanner validates JSON and fills slots.
type scanner struct {
	b        []byte
	i        int
	maxDepth int
	stack    []frame // the open containers
	keyBuf   []byte
	// base is subtracted from recorded positions (elements of an array
	// are scanned in place, their spans relative to the element).
	base int

	// spans holds the slots: the main window first (spans[:len(slots)]),
	// then one window per recorded array element.
	spans []span
	// win is where the current window starts in spans; -1 while the
	// window of element pend (of pendN slots) is not allocated yet: an
	// element none of whose values is read costs no window.
	win   int
	pend  int32
	pendN int
	// elems and arrs are the recorded arrays (trie nodes with each), in
	// document order, and their elements (linked by next).
	elems []elemRec
	arrs  []arrRec
	// items enables recording array elements.
	items bool
	// valid: the event was checked by Valid (well-formed, no deeper than
	// maxDepth): a value nobody reads is skipped, not validated (see
	// skipValid).
	valid bool
	// gate, when set, is asked about the top-level value of slot
	// gateSlot as soon as it is scanned; when it answers false, the rest
	// of the event is only validated, recording nothing but the top-level
	// key keep (an event the blueprint does not map needs nothing else).
	gate     gate
	gateSlot int
	keep     *trie
	quiet    bool

	// dups, when set, finds keys read here that an object holds twice:
	// JSON readers disagree on which of the two counts (JavaScript,
	// Python and encoding/json take the last; gjson, its Value and this
	// scanner the first). A key of the trie is checked with a bit of its
	// object's frame (one per child of the object's node: a shift and a
	// test); below a node read whole (trie.whole), every key is checked,
	// with fingerprints (see addKey). Other keys are not: nothing reads
	// them by name.
	//
	// dupPath is where the first duplicate is. One in the top-level
	// object stops the scan (errDuplicate); one below is recorded and the
	// scan goes on (the caller decides: an unmapped event is skipped
	// whatever it holds), and once the gate has found the event unmapped,
	// only top-level keys are still checked.
	dups bool
	// shallow: of the keys checked, only the top-level object's are
	// (Valid: a duplicate below is ignored there, and fingerprinting every
	// key below measured a quarter of its time), as once quiet.
	shallow bool
	// kbit is the bit of the key key last read: its index among its
	// node's children (0: not a key of the trie).
	kbit int32
	// wholeAt is the index in stack of the container read whole that the
	// scan is in (every object above it checks all its keys), or -1.
	wholeAt int
	// keys are the keys of the open objects whose keys are all checked,
	// each object's from its frame's n on: first a header, whose fp is a
	// one-word set of the object's key fingerprints (a key whose bit is
	// clear is new; kept here rather than in the frame, which must stay 32
	// bytes: a larger frame measured 10 % slower on the whole scan), then
	// its keys.
	// keyText holds the unescaped text of keys written with escapes;
	// dupTable is the hash table of a wide object's check.
	keys     []keyRec
	keyText  []byte
	dupTable []int32
	dupPath  string
}

// keyRec is one key of an open object: a fingerprint (its length and some
// of its bytes: different fingerprints, different keys) and where its
// text is (in the event from off, or in keyText from -off-1).
type keyRec struct {
	fp  uint64
	off int32
	n   int32
}

// gate decides early whether an event is worth recording.
type gate interface {
	pass(sp span) bool
}

// elemRec is one recorded array element.
type elemRec struct {
	start, end int32
	win        int32 // its window in spans, or -1: nothing read in it
	next       int32 // the next element of the same array, or -1
	kind       byte
}

// arrRec is one recorded array.
type arrRec struct {
	start       int32 // where the array starts in the event
	first, last int32 // its elements, or -1
	node        *trie
	ok          bool // every element was recorded (within the arena budget)
	// win, pend and pendN are the window to restore when it closes.
	pend  int32
	win   int
	pendN int
}

// maxWindowSpans bounds the spans and elements recorded per event (at
// most about 5 MB): an array of many tiny elements must not make its event
// cost many times its size. Past it, elements are scanned again when the
// items are mapped.
var maxWindowSpans = 1 << 18 // a variable for tests only

// scan validates b as exactly one JSON value (surrounded by white space)
// and records the values t names in slots. With items set, elements of
// arrays whose node has an each trie are recorded too: slots may then be
// reallocated, and s.spans holds the result (main window first).
func (s *scanner) scan(b []byte, t *trie, slots []span, maxDepth int) error {
	s.b, s.i, s.maxDepth, s.base, s.stack = b, 0, maxDepth, 0, s.stack[:0]
	s.spans, s.win, s.elems, s.arrs, s.quiet = slots, 0, s.elems[:0], s.arrs[:0], false
	s.keys, s.keyText, s.dupPath, s.wholeAt = s.keys[:0], s.keyText[:0], "", -1
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

func (s *scanner) ws() { s.i = skipWS(s.b, s.i) }

// record keeps sp as the value of t's slot (callers check t.slot >= 0).
func (s *scanner) record(t *trie, sp span) {
	if s.win < 0 {
		s.window()
	}
	if p := &s.spans[s.win+t.slot]; !p.present() {
		sp.start -= int32(s.base)
		sp.end -= int32(s.base)
		*p = sp // the first of duplicate keys wins
	}
}

// window allocates the pending element's window.
//
//go:noinline
func (s *scanner) window() {
	s.win = len(s.spans)
	s.elems[s.pend].win = int32(s.win)
	s.spans = append(s.spans, make([]span, s.pendN)...)
}

// frame is an open object or array of the scan (kept small: one is
// pushed per container).
type frame struct {
	node *trie // the container's node (its keys, its elements), or nil
	// member is, in an object, the node of the member being read.
	member *trie
	start  int32
	// n is, in an array, the index of the element being read; in an
	// object whose keys are all checked, where they start in keys (with
	// their header); in another object of a scan checking keys, the set of
	// its node's children seen (a bit each).
	n int32
	// arr is the recorded array (arrRec), or -1.
	arr  int32
	kind byte // '{' or '['
}

// value scans one JSON value at s.i (no white space before it), recording
// the values t names, and leaves s.i after it. It is one loop over an
// explicit stack of open containers: no call per token.
func (s *scanner) value(t *trie) error {
	b, i := s.b, s.i
	base := len(s.stack)
	vt := t // the node of the value at i
	var err error
	for {
		if i >= len(b) {
			return errSyntax
		}
		start := i
		var kind byte
		esc := false
		if vt == nil && s.valid && s.wholeAt < 0 {
			i, kind = skipValid(b, i)
			goto done
		}
		switch c := b[i]; c {
		case '{', '[':
			if len(s.stack)-base >= s.maxDepth {
				return errTooDeep
			}
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == c+2 { // {} or []
				i++
				kind = c
				break
			}
			s.stack = append(s.stack, frame{node: vt, start: int32(start), kind: c, arr: -1})
			f := &s.stack[len(s.stack)-1]
			// Checking keys, a container read whole starts a region
			// where every key is checked (an object of the trie elsewhere
			// starts with no key seen: n is 0).
			if s.dups && (s.wholeAt >= 0 || vt != nil && vt.whole) {
				s.open(f)
			}
			if c == '{' {
				ki := i
				if i, vt, err = s.key(i, f); err != nil {
					return err
				}
				if s.dups && (s.kbit != 0 || s.wholeAt >= 0) {
					if s.wholeAt < 0 && f.n&s.kbit == 0 {
						f.n |= s.kbit // first seen
					} else if err = s.checkKey(f, ki, i); err != nil {
						return err
					}
				}
			} else {
				vt = s.element(f, i)
			}
			continue
		case '"':
			if i, esc, err = scanString(b, i); err != nil {
				return err
			}
			kind = '"'
		// The three words are spelled out: one shared case with a table
		// of words measured 7% slower on the whole scan.
		case 't':
			if len(b)-i < 4 || string(b[i:i+4]) != "true" {
				return errSyntax
			}
			i += 4
			kind = 't'
		case 'f':
			if len(b)-i < 5 || string(b[i:i+5]) != "false" {
				return errSyntax
			}
			i += 5
			kind = 'f'
		case 'n':
			if len(b)-i < 4 || string(b[i:i+4]) != "null" {
				return errSyntax
			}
			i += 4
			kind = 'n'
		default:
			if i, err = scanNumber(b, i); err != nil {
				return err
			}
			kind = '0'
		}
		// A complete value at start..i: record it, then close what it
		// completes until a container wants another member or element.
	done:
		for {
			if vt != nil && vt.slot >= 0 {
				s.record(vt, span{start: int32(start), end: int32(i), kind: kind, esc: esc})
			}
			if len(s.stack) == base {
				s.i = i
				return nil
			}
			f := &s.stack[len(s.stack)-1]
			if f.kind == '{' {
				if m := f.member; m != nil && s.gate != nil && m.slot == s.gateSlot && len(s.stack)-base == 1 && !s.gate.pass(s.spans[m.slot]) {
					s.quiet = true
				}
			} else if f.arr >= 0 && s.arrs[f.arr].ok {
				r := &s.elems[s.arrs[f.arr].last]
				r.end, r.kind = int32(i), kindOf(b[r.start])
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return errSyntax
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				if f.kind == '{' {
					ki := i
					if i, vt, err = s.key(i, f); err != nil {
						return err
					}
					if s.dups && (s.kbit != 0 || s.wholeAt >= 0) {
						if s.wholeAt < 0 && f.n&s.kbit == 0 {
							f.n |= s.kbit // first seen
						} else if err = s.checkKey(f, ki, i); err != nil {
							return err
						}
					}
				} else {
					f.n++
					vt = s.element(f, i)
				}
				break
			}
			if b[i] != f.kind+2 { // } or ]
				return errSyntax
			}
			if s.dups && s.wholeAt >= 0 {
				if err := s.close(f); err != nil {
					return err
				}
			}
			i++
			if f.arr >= 0 {
				a := &s.arrs[f.arr]
				s.win, s.pend, s.pendN = a.win, a.pend, a.pendN
			}
			vt, start, kind, esc = f.node, int(f.start), f.kind, false
			s.stack = s.stack[:len(s.stack)-1]
		}
	}
}

// key reads an object's member name and its colon at i, and returns where
// the member's value starts and the node it is read for.
func (s *scanner) key(i int, f *frame) (int, *trie, error) {
	b := s.b
	if i >= len(b) || b[i] != '"' {
		return i, nil, errSyntax
	}
	ks := i + 1
	var ct *trie
	var bit int32
	// Most keys are short and plain: the first quote, backslash or
	// control character within the sixteen bytes after the opening quote
	// is a closing quote. Such a key is read as two words, compared with
	// the words of the node's keys (no call to scanString, no memequal):
	// the scan of the 3-item purchase measured 15 % faster. (A perfect
	// hash of a key's length and three bytes, for one memequal, measured
	// no faster than comparing with each key: the benchmark's branches
	// are learnt, the hash's loads are not.)
	if ks+16 <= len(b) {
		w0, w1 := load64(b, ks), load64(b, ks+8)
		n := -1
		if m := special8(w0); m != 0 {
			if z := bits.TrailingZeros64(m); byte(w0>>(z&^7)) == '"' {
				n = z >> 3
				w0 &= 1<<(z&^7) - 1
				w1 = 0
			}
		} else if m := special8(w1); m != 0 {
			if z := bits.TrailingZeros64(m); byte(w1>>(z&^7)) == '"' {
				n = 8 + z>>3
				w1 &= 1<<(z&^7) - 1
			}
		}
		if n >= 0 {
			i = ks + n + 1
			w1 |= uint64(n) << 56
			if t := f.node; t != nil {
				for k, w := range t.words0 { // child, with its index: the key's bit
					if w == w0 && t.words1[k] == w1 {
						ct, bit = t.children[k], int32(1)<<k
						break
					}
				}
				if s.quiet && ct != s.keep {
					ct = nil
				}
			}
			goto colon
		}
	}
	{
		var esc bool
		var err error
		if i, esc, err = scanString(b, i); err != nil {
			return i, nil, err
		}
		if t := f.node; t != nil && len(t.keys) > 0 {
			key := b[ks : i-1]
			if esc {
				s.keyBuf = unescape(s.keyBuf[:0], key)
				key = s.keyBuf
			}
			for k, name := range t.keys { // child, with its index: the key's bit
				if name == string(key) {
					ct, bit = t.children[k], int32(1)<<k
					break
				}
			}
			if s.quiet && ct != s.keep {
				ct = nil
			}
		}
	}
colon:
	s.kbit = bit
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return i, nil, errSyntax
	}
	f.member = ct
	return skipWS(b, i+1), ct, nil
}

// checkKey is the slow way of the duplicate-key check, for the key of the
// object of frame f whose quote is at ki and whose value starts at i:
// below a value read whole (every key is checked; once the gate has found
// the event unmapped, at the top level only), and for a key of the trie
// seen twice (named).
func (s *scanner) checkKey(f *frame, ki, i int) error {
	if (s.quiet || s.shallow) && len(s.stack) > 1 {
		return nil
	}
	b := s.b
	ke := i
	for b[ke-1] != ':' {
		ke--
	}
	for ke--; b[ke-1] != '"'; ke-- {
	}
	ke-- // the closing quote
	ks := ki + 1
	esc := bytes.IndexByte(b[ks:ke], '\\') >= 0
	if s.wholeAt >= 0 {
		return s.addKey(f, ks, ke, esc)
	}
	key := b[ks:ke]
	if esc {
		s.keyBuf = unescape(s.keyBuf[:0], key)
		key = s.keyBuf
	}
	return s.duplicate(key)
}

// addKey records the key at b[ks:ke] of the object of frame f (the
// innermost open one) and finds whether the object already has it. A key
// whose fingerprint's bit in the object's set (its header) is clear is
// new: only the others are compared with the object's earlier keys, so a
// small object costs a few instructions per key. Past wideObject keys the
// set is full, and the object is checked with a hash table when it
// closes.
func (s *scanner) addKey(f *frame, ks, ke int, esc bool) error {
	b, n := s.b, ke-ks
	var k keyRec
	switch {
	case esc:
		start := len(s.keyText)
		s.keyText = unescape(s.keyText, b[ks:ke])
		text := s.keyText[start:]
		k = keyRec{fp: fingerprint(text), off: int32(-start - 1), n: int32(len(text))}
	case n >= 8:
		// The first four and the last three bytes, and the length.
		k = keyRec{fp: load64(b, ks)&0xffffffff | load64(b, ke-8)>>40<<32 | uint64(n&0xff)<<56, off: int32(ks), n: int32(n)}
	case ks+8 <= len(b):
		k = keyRec{fp: load64(b, ks)&(1<<(8*n)-1) | uint64(n)<<56, off: int32(ks), n: int32(n)}
	default:
		k = keyRec{fp: fingerprint(b[ks:ke]), off: int32(ks), n: int32(n)}
	}
	h, bit := &s.keys[f.n], uint64(1)<<(k.fp*0x9E3779B97F4A7C15>>58)
	if h.fp&bit != 0 && len(s.keys)-int(f.n)-1 < wideObject {
		for _, o := range s.keys[f.n+1:] {
			if o.fp == k.fp && string(s.keyOf(o)) == string(s.keyOf(k)) {
				if err := s.duplicate(s.keyOf(k)); err != nil {
					return err
				}
				break
			}
		}
	}
	h.fp |= bit
	s.keys = append(s.keys, k)
	return nil
}

// fingerprint is addKey's fingerprint of a key's text, byte by byte.
func fingerprint(t []byte) uint64 {
	n := len(t)
	var fp uint64
	if n >= 8 {
		fp = uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[n-3])<<32 | uint64(t[n-2])<<40 | uint64(t[n-1])<<48
	} else {
		for i := n - 1; i >= 0; i-- {
			fp = fp<<8 | uint64(t[i])
		}
	}
	return fp | uint64(n&0xff)<<56
}

// keyOf returns the text of a recorded key.
func (s *scanner) keyOf(k keyRec) []byte {
	if k.off >= 0 {
		return s.b[k.off : k.off+k.n]
	}
	start := -k.off - 1
	return s.keyText[start : start+k.n]
}

// wideObject is the number of keys past which an object's keys are
// checked with a hash table when it closes, instead of as they come.
const wideObject = 24

var dupSeed = maphash.MakeSeed()

// open starts the check of the container of frame f (just pushed) read
// whole, or in a region read whole: the first starts the region, where
// every key is checked; an object there gets a header in keys.
func (s *scanner) open(f *frame) {
	top := len(s.stack) - 1
	if s.wholeAt < 0 {
		s.wholeAt = top
	}
	if f.kind == '{' {
		f.n = int32(len(s.keys))
		if !(s.quiet || s.shallow) || top == 0 {
			s.keys = append(s.keys, keyRec{}) // the header
		}
	}
}

// close ends the check of the container of frame f (closing, still on the
// stack) in a region where every key is checked: a wide object's keys are
// checked with a hash table (a small one's were, as they came), then
// forgotten; the region ends with its container.
func (s *scanner) close(f *frame) error {
	top := len(s.stack) - 1
	if f.kind == '{' && len(s.keys) > int(f.n) {
		if err := s.wideKeys(f); err != nil {
			return err
		}
		s.keys = s.keys[:f.n]
	}
	if s.wholeAt == top {
		s.wholeAt = -1
	}
	return nil
}

// wideKeys checks the keys of a wide object (frame f) with a hash table.
func (s *scanner) wideKeys(f *frame) error {
	if keys := s.keys[f.n+1:]; len(keys) > wideObject {
		size := 1 << bits.Len(uint(2*len(keys)))
		if cap(s.dupTable) < size {
			s.dupTable = make([]int32, size)
		}
		table := s.dupTable[:size]
		for i := range table {
			table[i] = -1
		}
		mask := uint64(size - 1)
		for j, k := range keys {
			text := s.keyOf(k)
			h := maphash.Bytes(dupSeed, text)
			for {
				at := table[h&mask]
				if at < 0 {
					table[h&mask] = int32(j)
					break
				}
				if o := keys[at]; o.fp == k.fp && string(s.keyOf(o)) == string(text) {
					s.keys = s.keys[:int(f.n)+1+j] // the keys before it, for its path
					return s.duplicate(text)
				}
				h++
			}
		}
	}
	return nil
}

// duplicate records where the duplicate key (its text) of the innermost
// open object is, as a path from the scanned value
// (context.consent.advertising, properties.products.1.price), unless one
// was found before; it returns errDuplicate for a key of the top-level
// object.
func (s *scanner) duplicate(key []byte) error {
	top := len(s.stack) == 1
	if s.dupPath != "" && !top {
		return nil
	}
	var path []byte
	last := len(s.stack) - 1
	for i := range last {
		g := &s.stack[i]
		if g.kind == '[' {
			path = strconv.AppendInt(path, int64(g.n), 10)
			path = append(path, '.')
			continue
		}
		path = append(path, truncate(s.memberKey(i), 40)...)
		path = append(path, '.')
	}
	s.dupPath = string(append(path, truncate(string(key), 40)...))
	if top {
		return errDuplicate
	}
	return nil
}

// memberKey is the key of the member being read in the object of stack
// frame i (not the innermost).
func (s *scanner) memberKey(i int) string {
	if s.wholeAt >= 0 && i >= s.wholeAt {
		// Its last key, before the header of the next object up.
		for j := i + 1; j < len(s.stack); j++ {
			if s.stack[j].kind == '{' {
				return string(s.keyOf(s.keys[s.stack[j].n-1]))
			}
		}
	}
	g := &s.stack[i]
	if g.node != nil {
		for k, c := range g.node.children {
			if c == g.member {
				return g.node.keys[k]
			}
		}
	}
	return "?"
}

// element starts element f.n of an array at i and returns the node it is
// read for: the element trie of a recorded array (the element gets its own
// window of slots), or the node of its index.
func (s *scanner) element(f *frame, i int) *trie {
	t := f.node
	if t == nil {
		return nil
	}
	if t.each != nil && s.items {
		if f.n == 0 {
			f.arr = int32(len(s.arrs))
			s.arrs = append(s.arrs, arrRec{start: f.start, first: -1, last: -1, node: t, ok: true, win: s.win, pend: s.pend, pendN: s.pendN})
		}
		a := &s.arrs[f.arr]
		if !a.ok || len(s.spans)+len(s.elems)+t.eachN > maxWindowSpans {
			a.ok = false
			if s.dups && s.wholeAt < 0 {
				// Its items are scanned again, by key, without the
				// trie: every key of them is checked.
				s.wholeAt = len(s.stack) - 1
			}
			s.win, s.pend, s.pendN = a.win, a.pend, a.pendN
			return nil
		}
		e := int32(len(s.elems))
		s.elems = append(s.elems, elemRec{start: int32(i), win: -1, next: -1})
		if a.last >= 0 {
			s.elems[a.last].next = e
		} else {
			a.first = e
		}
		a.last = e
		s.win, s.pend, s.pendN = -1, e, t.eachN
		return t.each
	}
	if t.index != nil {
		return t.index[int(f.n)]
	}
	return nil
}

// recorded returns the recorded array starting at off, or nil.
func (s *scanner) recorded(off int32) *arrRec {
	lo, hi := 0, len(s.arrs)
	for lo < hi { // arrays are recorded in document order
		m := int(uint(lo+hi) >> 1)
		if s.arrs[m].start < off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < len(s.arrs) && s.arrs[lo].start == off {
		return &s.arrs[lo]
	}
	return nil
}

// skipValid returns the end and the kind of the JSON value at i of an
// event Valid has checked, without checking it again. The scan skips so
// the values it reads nothing of (their node is nil) outside a region
// whose keys are all checked (wholeAt < 0): scanning them would decide
// nothing. Below a nil node no value is recorded, no array element is
// (element returns nil for a nil node), no key is checked twice (a key's
// bit is 0, and no whole region starts below a nil node), the gate asks
// about a member of the trie only, and the keep node is not nil; the
// depth limit was Valid's, no larger than the scan's (EvaluateValid sees
// to it). Indexing stays
// bounds-checked: bytes that were not valid after all make a wrong
// decision at worst (a panic is recovered by evaluate), never an
// out-of-bounds read.
func skipValid(b []byte, i int) (int, byte) {
	switch c := b[i]; c {
	case '"':
		return skipString(b, i), c
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1, c
				}
			}
			i++
		}
		return i, c
	case 't', 'n':
		return i + 4, c
	case 'f':
		return i + 5, c
	}
	for i < len(b) && numeric[b[i]] {
		i++
	}
	return i, '0'
}

// numeric are the bytes of a JSON number.
var numeric = func() (t [256]bool) {
	for _, c := range "0123456789+-.eE" {
		t[c] = true
	}
	return t
}()

// skipString returns the index after the closing quote of the string at i
// (its opening quote) of a valid event: eight bytes at a time to the
// first quote or backslash (an escape's second byte, even the hex digits
// of \u, is no quote to stop at).
func skipString(b []byte, i int) int {
	i++
	for {
		for i+8 <= len(b) {
			x := load64(b, i)
			quote := x ^ (ones * '"')
			back := x ^ (ones * '\\')
			if m := ((quote-ones)&^quote | (back-ones)&^back) & highs; m != 0 {
				i += bits.TrailingZeros64(m) >> 3 // the lowest flag is exact
				goto stop
			}
			i += 8
		}
		for i < len(b) && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			return i
		}
	stop:
		if b[i] == '"' {
			return i + 1
		}
		i += 2
	}
}

// skipWS returns the index of the first byte at or after i that is not
// JSON white space.
func skipWS(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// scanString scans a string starting at its quote at i, returning the
// index after its closing quote and whether it holds escapes. Control
// characters are refused; UTF-8 is checked by the caller over the whole
// event.
func scanString(b []byte, i int) (int, bool, error) {
	i++
	esc := false
	for {
		// The common case: plain characters, eight at a time; the lowest
		// flagged byte is the first one to stop at.
		for i+8 <= len(b) {
			x := load64(b, i)
			if m := special8(x); m != 0 {
				z := bits.TrailingZeros64(m)
				i += z >> 3
				if byte(x>>(z&^7)) == '"' { // read from the word: no reload
					return i + 1, esc, nil
				}
				goto stop
			}
			i += 8
		}
		for i < len(b) && !stops[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, false, errSyntax
		}
	stop:
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c < 0x20:
			return i, false, errSyntax
		}
		// An escape.
		esc = true
		if i+1 >= len(b) {
			return i, false, errSyntax
		}
		switch b[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
				return i, false, errSyntax
			}
			i += 6
		default:
			return i, false, errSyntax
		}
	}
}

// stops are the bytes a string scan stops at: a quote, a backslash, a
// control character.
var stops = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special8 flags (with its high bit) each of eight bytes that is a quote,
// a backslash or a control character (below 0x20): the bytes a string
// scan must stop at. Bytes above a flagged one may be flagged wrongly; the
// lowest flag is exact.
func special8(x uint64) uint64 {
	quote := x ^ (ones * '"')
	back := x ^ (ones * '\\')
	return ((quote-ones)&^quote | (back-ones)&^back | (x-ones*0x20)&^x) & highs
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// scanNumber scans a JSON number at i and returns the index after it.
func scanNumber(b []byte, i int) (int, error) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, errSyntax
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return i, errSyntax
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return i, errSyntax
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
			return i, errSyntax
		}
	}
	return i, nil
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
