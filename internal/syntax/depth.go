package syntax

import "bytes"

// The nesting pre-scan. A YAML parser recurses once per level of nesting,
// and goccy/go-yaml (the position finder used after a syntax error) does
// quadratic work in it: 300,000 nested [ in a 600 KB file took over 13 GB.
// scanDepth reads the text once, following how YAML nests (indentation,
// "- " entries, "key:" pairs, flow [ ] { }, quoted scalars, block scalars,
// comments), so that a file nested deeper than the limit is refused, at the
// token where the limit is crossed, before any parser sees it.
//
// The count is the one of the node tree (check): mappings and lists, the
// top-level one included. Where the text is not valid YAML the scan still
// ends, in one pass, with some count; the parser then reports the error.

var bom = []byte("\ufeff")

// noSkip: no scalar is being skipped.
const noSkip = -2

type depthScan struct {
	src   []byte
	limit int
	// block holds the open block collections, innermost last.
	block []blockLevel
	// flow holds the open flow collections, innermost last: '[' or '{',
	// or 'p' for the single-pair mapping that "key: value" makes inside a
	// flow sequence ([a: b] is a list holding a mapping).
	flow []byte
	// flowAt and flowPeak are, for each of flow, where it opens and the
	// deepest level reached inside it.
	flowAt, flowPeak []int
	// skip: while not noSkip, lines indented more than skip continue a
	// plain or block scalar and are not read.
	skip int
	// quote is the quote character of a quoted scalar still open at the
	// end of a line, else 0.
	quote byte
	// In flow context: at the start of a token (a quote there starts a
	// quoted scalar), and after a quoted scalar or a closed collection (a
	// ':' right after it is a key indicator, as in {"a":1}).
	flowToken, flowJSONKey bool
	// keyAt is where the last node in flow context started, and keyPeak
	// the deepest level inside it when it is a collection (else 0): a key,
	// if ": " follows.
	keyAt, keyPeak int
	// peak is the deepest nesting flowScan reached.
	peak int
	// at is the offset where the limit was crossed, or -1.
	at int
}

type blockLevel struct {
	col int
	seq bool
}

// scanDepth returns the offset of the token that opens a collection nested
// deeper than limit, or -1.
func scanDepth(src []byte, limit int) int {
	var block [16]blockLevel
	var flow [16]byte
	s := depthScan{src: src, limit: limit, skip: noSkip, at: -1, block: block[:0], flow: flow[:0]}
	ls := 0
	if bytes.HasPrefix(src, bom) {
		ls = len(bom) // the stream's byte order mark is not indentation
		// (Parse refuses any other: see strayBOM.)
	}
	cr := bytes.IndexByte(src, '\r') >= 0
	for ls < len(src) && s.at < 0 {
		le, next := lineEnd(src, ls, cr)
		s.line(ls, le)
		ls = next
	}
	return s.at
}

// lineEnd returns the end of the line starting at ls and the start of the
// next one. A line ends at \n, \r\n or \r, as YAML reads line breaks
// (cr: src holds a \r).
func lineEnd(src []byte, ls int, cr bool) (le, next int) {
	le, next = len(src), len(src)
	if i := bytes.IndexByte(src[ls:], '\n'); i >= 0 {
		le, next = ls+i, ls+i+1
	}
	if !cr {
		return le, next
	}
	if i := bytes.IndexByte(src[ls:le], '\r'); i >= 0 {
		le, next = ls+i, ls+i+1
		if next < len(src) && src[next] == '\n' {
			next++
		}
	}
	return le, next
}

func (s *depthScan) depth() int { return len(s.block) + len(s.flow) }

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

func (s *depthScan) skipBlank(i, le int) int {
	for i < le && isBlank(s.src[i]) {
		i++
	}
	return i
}

// blankAfter reports whether the byte after i ends a token: a blank or the
// end of the line.
func (s *depthScan) blankAfter(i, le int) bool { return i+1 >= le || isBlank(s.src[i+1]) }

func (s *depthScan) line(ls, le int) {
	src := s.src
	i := ls
	if s.quote != 0 {
		if i = s.quoted(i, le); s.quote != 0 {
			return
		}
		if len(s.flow) == 0 {
			return // after a scalar that spans lines: a comment, or an error
		}
		s.flowToken, s.flowJSONKey = false, true
	}
	if len(s.flow) > 0 {
		s.flowScan(i, le)
		return
	}
	j := s.skipBlank(i, le)
	if j == le || src[j] == '#' {
		return // blank lines and comments end no scalar
	}
	col := j - ls
	if col == 0 && le-j >= 3 && (bytes.HasPrefix(src[j:le], []byte("---")) || bytes.HasPrefix(src[j:le], []byte("..."))) && s.blankAfter(j+2, le) {
		// A document marker: everything before it is closed.
		s.block, s.skip = s.block[:0], noSkip
		if j = s.skipBlank(j+3, le); j == le || src[j] == '#' {
			return
		}
		s.node(ls, j, le)
		return
	}
	if col == 0 && src[j] == '%' {
		return // a directive
	}
	if s.skip != noSkip {
		if col > s.skip {
			return
		}
		s.skip = noSkip
	}
	s.node(ls, j, le)
}

// parentCol is the column of the innermost block collection (-1: none):
// the lines of a scalar in it are indented more.
func (s *depthScan) parentCol() int {
	if n := len(s.block); n > 0 {
		return s.block[n-1].col
	}
	return -1
}

// popAbove ends the block collections indented more than col.
func (s *depthScan) popAbove(col int) {
	n := len(s.block)
	for n > 0 && s.block[n-1].col > col {
		n--
	}
	s.block = s.block[:n]
}

// open records a block collection starting at column col and reports
// whether it crosses the limit.
func (s *depthScan) open(col int, seq bool) bool {
	s.popAbove(col)
	n := len(s.block)
	if n > 0 && s.block[n-1].col == col {
		if s.block[n-1].seq == seq {
			return false // the next entry of the same collection
		}
		if s.block[n-1].seq {
			// A key at the column of a list: the list was the value of
			// the previous key (key:\n- a\nnext: b) and ends here.
			s.block = s.block[:n-1]
			if n > 1 && s.block[n-2].col == col && !s.block[n-2].seq {
				return false
			}
		}
		// Else a list at the column of its key (key:\n- a): one deeper.
	}
	s.block = append(s.block, blockLevel{col: col, seq: seq})
	return s.depth() > s.limit
}

// node reads the tokens of a line in block context from i: "- " and "? "
// indicators, keys, and the value that ends the line.
func (s *depthScan) node(ls, i, le int) {
	src := s.src
	first := i         // the first token of the line
	start := -1        // where the node being read starts (its anchor or tag), or -1
	valueOnly := false // after "key:", the rest of the line is a value
	// key records a mapping whose key starts at start (or at): it reports
	// whether the limit is crossed.
	key := func(at int) bool {
		if start >= 0 {
			at = start
		}
		if s.open(at-ls, false) {
			s.at = at
			return true
		}
		return false
	}
	for i < le {
		c := src[i]
		col := i - ls
		switch {
		case c == '#':
			return
		case (c == '-' || c == '?') && !valueOnly && start < 0 && s.blankAfter(i, le):
			if s.open(col, c == '-') {
				s.at = i
				return
			}
			i++
		case c == ':' && s.blankAfter(i, le):
			// An empty key ("&a: b"), or the value of an explicit key
			// ("? k" then ": v", which may hold "- " entries).
			if !valueOnly && key(i) {
				return
			}
			i, start, valueOnly = i+1, -1, i != first
		case c == '&' || c == '!':
			// An anchor (letters, digits, - and _) or a tag before a node.
			if start < 0 {
				start = i
			}
			for i++; i < le && !isBlank(src[i]) && (c == '!' || isAnchorChar(src[i])); i++ {
			}
		case c == '|' || c == '>':
			s.skip = s.parentCol()
			return
		case c == '[' || c == '{':
			if !valueOnly {
				s.popAbove(col) // what is indented more has ended
			}
			before := s.depth()
			s.flowToken, s.flowJSONKey, s.peak = true, false, 0
			k := s.flowScan(i, le)
			if s.at >= 0 || len(s.flow) > 0 || valueOnly {
				return
			}
			if k = s.skipBlank(k, le); k == le || src[k] != ':' || !s.blankAfter(k, le) {
				return
			}
			// The collection was a key ([a, b]: c): the mapping holding
			// it is one level above what the scan counted.
			if key(i) {
				return
			}
			if s.depth() > before && s.peak+1 > s.limit {
				s.at = i
				return
			}
			i, start, valueOnly = k+1, -1, true
		case c == '"' || c == '\'':
			s.quote = c
			k := s.quoted(i+1, le)
			if s.quote != 0 {
				return // the scalar goes on over the next lines
			}
			k = s.skipBlank(k, le)
			if valueOnly || k == le || src[k] != ':' || !s.blankAfter(k, le) {
				return // a quoted value
			}
			if key(i) {
				return
			}
			i, start, valueOnly = k+1, -1, true
		default:
			// A plain scalar: a key when ": " follows on the line.
			k := -1
			if !valueOnly {
				k = s.plainKeyEnd(i, le)
			}
			if k < 0 {
				s.skip = s.parentCol()
				return
			}
			if key(i) {
				return
			}
			i, start, valueOnly = k+1, -1, true
		}
		i = s.skipBlank(i, le)
	}
}

func isTagChar(c byte) bool {
	return c > ' ' && c < 0x7f && bytes.IndexByte([]byte("{}#\"<>\\^`|"), c) < 0
}

func isAnchorChar(c byte) bool {
	return c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// plainKeyEnd returns the offset of the ": " that ends a plain key starting
// at i, or -1 when the line holds a plain value.
func (s *depthScan) plainKeyEnd(i, le int) int {
	src := s.src
	for j := i; j < le; j++ {
		switch src[j] {
		case ':':
			if s.blankAfter(j, le) {
				return j
			}
		case '#':
			if j > i && isBlank(src[j-1]) {
				return -1
			}
		}
	}
	return -1
}

// quoted reads a quoted scalar from i, up to the end of the line; it
// returns the offset after the closing quote (s.quote is then 0), or le.
func (s *depthScan) quoted(i, le int) int {
	src, q := s.src, s.quote
	for i < le {
		switch c := src[i]; {
		case q == '"' && c == '\\':
			i += 2
			continue
		case c == q:
			if q == '\'' && i+1 < le && src[i+1] == '\'' {
				i += 2
				continue
			}
			s.quote = 0
			return i + 1
		}
		i++
	}
	return le
}

// flowScan reads flow context from i to the end of the line, or to where
// the outermost flow collection closes; it returns where it stopped.
func (s *depthScan) flowScan(i, le int) int {
	src := s.src
	for i < le {
		c := src[i]
		switch {
		case isBlank(c):
		case c == '#' && (s.flowToken || i == 0 || isBlank(src[i-1]) || src[i-1] == '\n' || src[i-1] == '\r'):
			return le // a comment
		case c == '[' || c == '{':
			if s.push(c, i) {
				return le
			}
			s.flowToken, s.flowJSONKey = true, false
		case c == ']' || c == '}':
			if n := len(s.flow); n > 0 && s.flow[n-1] == 'p' {
				s.pop()
			}
			if n := len(s.flow); n > 0 {
				s.keyAt = s.flowAt[n-1]
				s.keyPeak = s.pop()
			}
			s.flowToken, s.flowJSONKey = false, true
			if len(s.flow) == 0 {
				return i + 1 // back in block context
			}
		case c == ',':
			if n := len(s.flow); n > 0 && s.flow[n-1] == 'p' {
				s.pop()
			}
			s.flowToken, s.flowJSONKey = true, false
		case c == ':' && (s.flowJSONKey || s.flowToken || s.blankAfter(i, le)):
			// A key indicator (at the start of a flow token, as after an
			// anchor in [&a :], yaml.v3 reads ':' as one whatever follows):
			// inside a list, the pair is a mapping, one level above its
			// key (which may be a collection: [[a]: b]).
			if n := len(s.flow); n > 0 && s.flow[n-1] == '[' {
				if s.push('p', s.keyAt) {
					return le
				}
				if s.keyPeak > 0 && s.raise(s.keyPeak+1) {
					s.at = s.keyAt
					return le
				}
			}
			s.flowToken, s.flowJSONKey = true, false
		case c == '?' && s.flowToken:
			// An explicit key (yaml.v3 reads any ? starting a flow token
			// so): inside a list, a single-pair mapping.
			if n := len(s.flow); n > 0 && s.flow[n-1] == '[' && s.push('p', i) {
				return le
			}
		case (c == '!' || c == '&') && s.flowToken:
			// A tag (yaml.v3 reads [ ] , into it) or an anchor: the node
			// follows.
			for i++; i < le && (c == '!' && isTagChar(src[i]) || isAnchorChar(src[i])); i++ {
			}
			continue
		case (c == '"' || c == '\'') && s.flowToken:
			s.quote, s.keyAt, s.keyPeak = c, i, 0
			if i = s.quoted(i+1, le); s.quote != 0 {
				return le
			}
			s.flowToken, s.flowJSONKey = false, true
			continue
		default:
			if s.flowToken {
				s.keyAt, s.keyPeak = i, 0
			}
			s.flowToken, s.flowJSONKey = false, false
		}
		i++
	}
	return le
}

// push opens a flow collection (or a single-pair mapping, 'p') at offset
// at, and reports whether it crosses the limit.
func (s *depthScan) push(c byte, at int) bool {
	s.flow = append(s.flow, c)
	s.flowAt = append(s.flowAt, at)
	s.flowPeak = append(s.flowPeak, s.depth())
	if s.raise(s.depth()) {
		s.at = at
		return true
	}
	return false
}

// raise records that the innermost flow collection reaches depth d, and
// reports whether d is past the limit.
func (s *depthScan) raise(d int) bool {
	if n := len(s.flowPeak); n > 0 {
		s.flowPeak[n-1] = max(s.flowPeak[n-1], d)
	}
	s.peak = max(s.peak, d)
	return d > s.limit
}

// pop closes the innermost flow collection and returns the deepest level
// reached inside it.
func (s *depthScan) pop() int {
	n := len(s.flow) - 1
	peak := s.flowPeak[n]
	s.flow, s.flowAt, s.flowPeak = s.flow[:n], s.flowAt[:n], s.flowPeak[:n]
	if n > 0 {
		s.flowPeak[n-1] = max(s.flowPeak[n-1], peak)
	}
	return peak
}
