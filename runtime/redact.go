package runtime

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/blueprint-engine/blueprint/internal/encoding"
)

// Mask replaces a secret wherever it is shown.
const Mask = "***"

// minSecretLen is the shortest form scrubbed from free text: shorter
// values would mask unrelated text. Such secrets are still masked wherever
// they are known to be (auth, secret headers and fields), and so are their
// encodings of minSecretLen bytes or more.
const minSecretLen = 4

// redactor scrubs secret config values, the credentials rendered from
// them, and the encodings they travel in, from any text.
//
// What it knows (forms), per secret value s:
//
//   - s as written, url.QueryEscape(s), url.PathEscape(s), s in a JSON
//     string (with and without HTML escaping) and in a Go-quoted string;
//   - s in base64 (standard and URL alphabets, padded or not) at any offset
//     of any base64 text: for each of the 3 alignments of s in a 3-byte
//     group, the run of characters that depends on s alone, that run with
//     the last, partial character and padding (s ending the text), and the
//     whole encodings of s, s+":" and ":"+s (Basic credentials).
//
// Per credential rendered at Bind (auth headers without their scheme word,
// secret headers, the decoded user:password of Basic auth, the query auth
// value): the credential as a unit, in the text forms above.
//
// A text is scrubbed as written, as it reads once its JSON string
// escapes (\uXXXX in any mix, \", \\, \/ ...) are undone, and as it reads
// once its percent-escapes (%XX, either case, in any mix) are undone, with
// '+' read as a space too (form bodies and query strings), so
// that a secret behind escapes is found too. Every occurrence of every form is masked
// (overlapping ones as one ***), and so is the start of a secret form
// (minSecretLen bytes or more) cut short right before a cut mark ("..." or
// "…"): text cut to a length keeps no start of a secret either. All of it
// is linear in the length of the text.
type redactor struct {
	// probes are the forms that hold no other form: a text holds a form
	// if and only if it holds a probe (the fast path: almost no text
	// holds one).
	probes []string
	// grams are the 4-byte windows of cuttable forms: a cut mark not
	// preceded by one cannot follow the start of a secret.
	grams gramSet
	// m, the automaton masking the forms, is built from secrets and
	// credentials at the first text that may hold a form (found, mayCut),
	// which most integrations never see: built at Bind, it was 85 % of a
	// bound integration's memory (about 14 KB of the 17 KB of a Button
	// integration), for a text nobody may ever scrub.
	once                 sync.Once
	m                    *matcher
	secrets, credentials []string
	// spaced: some form holds a space (see formViews).
	spaced bool
}

// matcher returns the automaton, building it once.
func (r *redactor) matcher() *matcher {
	r.once.Do(func() {
		forms := redactForms(r.secrets, r.credentials)
		r.m = newMatcher(sortedForms(forms), forms)
	})
	return r.m
}

func newRedactor(secrets []string, credentials ...string) *redactor {
	forms := redactForms(secrets, credentials)
	if len(forms) == 0 {
		return &redactor{}
	}
	all := sortedForms(forms)
	r := &redactor{secrets: slices.Clip(secrets), credentials: slices.Clip(credentials)}
	for _, f := range all {
		if !slices.ContainsFunc(r.probes, func(p string) bool { return strings.Contains(f, p) }) {
			r.probes = append(r.probes, f)
		}
	}
	n := 0
	for f, cuttable := range forms {
		if cuttable {
			n += len(f)
		}
		r.spaced = r.spaced || strings.IndexByte(f, ' ') >= 0
	}
	r.grams = newGramSet(n)
	for f, cuttable := range forms {
		for i := 0; cuttable && i+4 <= len(f); i++ {
			r.grams.add(f[i : i+4])
		}
	}
	r.probes = slices.Clip(r.probes)
	return r
}

// redactForms are the forms to mask of the secrets and credentials, each
// with whether it is cuttable (its start is masked before a cut mark).
func redactForms(secrets, credentials []string) map[string]bool {
	forms := map[string]bool{} // form -> cuttable (its start is masked before a cut mark)
	add := func(f string, cuttable bool) {
		if len(f) >= minSecretLen {
			forms[f] = forms[f] || cuttable
		}
	}
	for _, s := range secrets {
		for _, f := range textForms(s) {
			add(f, true)
		}
		for _, f := range base64Forms(s) {
			add(f, true)
		}
	}
	// A credential starts with public text (a user name): its start is not
	// masked before a cut mark, the secret's own forms are.
	for _, c := range credentials {
		for _, f := range textForms(c) {
			add(f, false)
		}
	}
	return forms
}

// sortedForms are the forms, shortest first (a form holding an earlier
// probe is no probe), then in byte order: the automaton built from them
// is the same whenever it is built.
func sortedForms(forms map[string]bool) []string {
	all := make([]string, 0, len(forms))
	for f := range forms {
		all = append(all, f)
	}
	slices.SortFunc(all, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return all
}

// textForms are s as written and in the escapes text carries it in.
func textForms(s string) []string {
	j, _ := json.Marshal(s) // HTML-escaped: <, >, & as \u003c ...
	q := strconv.Quote(s)
	plain := encoding.AppendJSONString(nil, []byte(s))
	return []string{s, url.QueryEscape(s), url.PathEscape(s), string(j[1 : len(j)-1]), string(plain[1 : len(plain)-1]), q[1 : len(q)-1]}
}

// base64Forms are s in base64 wherever it sits in the encoded text.
func base64Forms(s string) []string {
	var out []string
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(s)), enc.EncodeToString([]byte(s+":")), enc.EncodeToString([]byte(":"+s)))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for a := 0; a < 3; a++ {
			// s starting a bytes into a 3-byte group: the characters from
			// the first one holding bits of s only...
			e := enc.EncodeToString(append(make([]byte, a), s...))
			from := (8*a + 5) / 6
			// ...to the last one holding bits of s only,
			to := (8*a + 8*len(s)) / 6
			if to > from {
				out = append(out, e[from:to])
			}
			// and, when s ends the text, on to its end.
			out = append(out, e[from:], strings.TrimRight(e[from:], "="))
		}
	}
	return out
}

// credentials are the credentials the integration's requests carry, as
// rendered at Bind: each secret header's value without its scheme word
// (Basic, Bearer), the user:password a Basic credential decodes to, and
// the query auth value.
func (in *Integration) credentials() []string {
	var out []string
	for _, rp := range in.requests {
		for _, h := range rp.headers {
			if !h.Secret {
				continue
			}
			scheme, cred, ok := strings.Cut(h.Value, " ")
			if !ok || scheme == "" || strings.ContainsAny(scheme, "=:") {
				cred = h.Value
			}
			out = append(out, cred)
			if strings.EqualFold(scheme, "Basic") {
				if b, err := base64.StdEncoding.DecodeString(cred); err == nil {
					out = append(out, string(b))
				}
			}
		}
		if rp.queryAuth != "" {
			_, v, _ := strings.Cut(rp.queryAuth, "=")
			if raw, err := url.QueryUnescape(v); err == nil {
				out = append(out, raw)
			}
			out = append(out, v)
		}
	}
	return out
}

// active: there is something to mask (every form holds a probe, so a
// redactor with forms has one).
func (r *redactor) active() bool { return r != nil && len(r.probes) > 0 }

// found reports whether any form occurs in s as written.
func (r *redactor) found(s string) bool {
	for _, p := range r.probes {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// holds reports whether s holds a form, as written or behind JSON string
// escapes.
func (r *redactor) holds(s string) bool {
	if !r.active() {
		return false
	}
	if r.found(s) {
		return true
	}
	if strings.IndexByte(s, '\\') >= 0 {
		if v, _, _ := jsonView(s, false); r.found(v) {
			return true
		}
	}
	for _, plus := range r.formViews(s) {
		if v, _, _ := percentView(s, plus, false); r.found(v) {
			return true
		}
	}
	return false
}

// formViews says which percent views of s may show a secret that s hides:
// none when s holds neither '%' nor '+'; the view with '+' read as a
// space when s holds a '+' (form bodies and query strings write spaces
// so, and their encoders disagree on which other characters they escape:
// URLSearchParams keeps '*', others keep '/' or ':'); the view with '+'
// kept when s holds a '%' (a secret holding '+' itself, or a path).
//
// Only a form holding a space can be found in the view with '+' read as
// one and not in the others: text with a '+' (a time zone, a phone
// number) pays for that view only when some secret holds a space.
func (r *redactor) formViews(s string) []bool {
	pct := strings.IndexByte(s, '%') >= 0
	plus := r.spaced && strings.IndexByte(s, '+') >= 0
	switch {
	case pct && plus:
		return []bool{false, true}
	case plus:
		return []bool{true}
	case pct:
		return []bool{false}
	}
	return nil
}

// String scrubs s.
func (r *redactor) String(s string) string {
	if out, ok := r.scrub(s); ok {
		return out
	}
	return s
}

// Bytes scrubs b, returning b itself when there is nothing to scrub.
func (r *redactor) Bytes(b []byte) []byte {
	if out, ok := r.scrub(bstr(b)); ok {
		return []byte(out)
	}
	return b
}

// scrub returns s with every span to mask masked, and whether there was
// one.
func (r *redactor) scrub(s string) (string, bool) {
	if !r.active() {
		return s, false
	}
	out, ok := r.scrubOnce(s)
	if !ok {
		return s, false
	}
	// A secret holding the mask's character (*) can form again around a
	// mask: scrub again (each pass shortens the text), a few times at
	// most, then show nothing of it.
	for i := 0; r.holds(out); i++ {
		if i == maxRescrubs {
			return Mask, true
		}
		out, _ = r.scrubOnce(out)
	}
	return out, true
}

// maxRescrubs bounds the passes over text whose masks formed a secret
// again.
const maxRescrubs = 4

// scrubOnce masks every span of s in one pass.
func (r *redactor) scrubOnce(s string) (string, bool) {
	var spans [][2]int
	if r.found(s) || r.mayCut(s) {
		spans = r.matcher().spans(s, spans)
	}
	if strings.IndexByte(s, '\\') >= 0 {
		// The view's map back to s is built only when the view holds
		// something to mask (it takes 8 bytes per byte of s).
		if v, _, _ := jsonView(s, false); len(v) != len(s) && (r.found(v) || r.mayCut(v)) {
			v, from, to := jsonView(s, true)
			for _, sp := range r.matcher().spans(v, nil) {
				spans = append(spans, [2]int{int(from[sp[0]]), int(to[sp[1]-1])})
			}
		}
	}
	for _, plus := range r.formViews(s) {
		// Percent-escapes in any mix and case: what QueryEscape and
		// PathEscape do not write but other encoders do (lower-case hex,
		// '/' or '=' left as they are), a vendor echoing a credential or
		// a query value included; and, in form text, '+' for a space.
		if v, _, _ := percentView(s, plus, false); v != s && (r.found(v) || r.mayCut(v)) {
			v, from, to := percentView(s, plus, true)
			for _, sp := range r.matcher().spans(v, nil) {
				spans = append(spans, [2]int{int(from[sp[0]]), int(to[sp[1]-1])})
			}
		}
	}
	if len(spans) == 0 {
		return s, false
	}
	return maskSpans(s, spans), true
}

// percentView undoes the percent-escapes of s (%XX, hex digits of either
// case) wherever they are, and with plus reads '+' as a space; anything
// else is kept. With maps, from[i] and to[i] are the start and end in s
// of what view byte i came from.
func percentView(s string, plus, maps bool) (view string, from, to []int32) {
	b := make([]byte, 0, len(s))
	if maps {
		from = make([]int32, 0, len(s))
		to = make([]int32, 0, len(s))
	}
	for i := 0; i < len(s); {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			if maps {
				from = append(from, int32(i))
				to = append(to, int32(i+3))
			}
			i += 3
			continue
		}
		if plus && s[i] == '+' {
			b = append(b, ' ')
		} else {
			b = append(b, s[i])
		}
		if maps {
			from = append(from, int32(i))
			to = append(to, int32(i+1))
		}
		i++
	}
	return string(b), from, to
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// cutMark ends text that was cut short (truncate); vendors write "…".
const (
	cutMark  = "..."
	cutMark2 = "…"
)

// isCut reports whether a cut mark starts at s[i].
func isCut(s string, i int) bool {
	switch s[i] {
	case '.':
		return i+2 < len(s) && s[i+1] == '.' && s[i+2] == '.'
	case cutMark2[0]:
		return strings.HasPrefix(s[i:], cutMark2)
	}
	return false
}

// mayCut reports whether some cut mark of s follows 4 bytes that belong
// to a cuttable form: only then can it follow the start of a secret. A run
// of dots costs a few checks, whatever its length.
func (r *redactor) mayCut(s string) bool {
	check := func(at int) bool { return at >= 4 && r.grams.has(s[at-4:at]) }
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '.')
		if j < 0 {
			break
		}
		start := i + j
		end := start
		for end < len(s) && s[end] == '.' {
			end++
		}
		// Mark starts in the run: start .. end-3. Windows before the first
		// four differ; from the fifth on they are all "....".
		for at := start; at <= end-3 && at <= start+4; at++ {
			if check(at) {
				return true
			}
		}
		i = end
	}
	if strings.IndexByte(s, cutMark2[0]) >= 0 {
		for i := 0; ; {
			j := strings.Index(s[i:], cutMark2)
			if j < 0 {
				break
			}
			if check(i + j) {
				return true
			}
			i += j + len(cutMark2)
		}
	}
	return false
}

// maskSpans replaces each span of s, overlapping or touching ones
// merged, with Mask.
func maskSpans(s string, spans [][2]int) string {
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	var b strings.Builder
	b.Grow(len(s))
	last := 0
	for i := 0; i < len(spans); {
		start, end := spans[i][0], spans[i][1]
		for i++; i < len(spans) && spans[i][0] <= end; i++ {
			end = max(end, spans[i][1])
		}
		b.WriteString(s[last:start])
		b.WriteString(Mask)
		last = end
	}
	b.WriteString(s[last:])
	return b.String()
}

// jsonView undoes the JSON string escapes of s wherever they are (\uXXXX
// with surrogate pairs, \" \\ \/ \b \f \n \r \t; anything else is kept).
// With maps, from[i] and to[i] are the start and end in s of what view
// byte i came from.
func jsonView(s string, maps bool) (view string, from, to []int32) {
	b := make([]byte, 0, len(s))
	if maps {
		from = make([]int32, 0, len(s))
		to = make([]int32, 0, len(s))
	}
	emit := func(p []byte, start, end int) {
		b = append(b, p...)
		if maps {
			for range p {
				from = append(from, int32(start))
				to = append(to, int32(end))
			}
		}
	}
	var one [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			// A run without escapes, up to the next backslash, as it is.
			j := len(s)
			if k := strings.IndexByte(s[i+1:], '\\'); k >= 0 {
				j = i + 1 + k
			}
			b = append(b, s[i:j]...)
			for ; maps && i < j; i++ {
				from = append(from, int32(i))
				to = append(to, int32(i+1))
			}
			i = j
			continue
		}
		var dec byte
		switch s[i+1] {
		case '"', '\\', '/':
			dec = s[i+1]
		case 'b':
			dec = '\b'
		case 'f':
			dec = '\f'
		case 'n':
			dec = '\n'
		case 'r':
			dec = '\r'
		case 't':
			dec = '\t'
		case 'u':
			r, ok := jsonHex4(s, i+2)
			if !ok {
				emit([]byte{c}, i, i+1)
				i++
				continue
			}
			end := i + 6
			if utf16.IsSurrogate(r) {
				if r2, ok := jsonHex4(s, i+8); ok && s[i+6] == '\\' && s[i+7] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, end = d, i+12
					}
				}
			}
			n := utf8.EncodeRune(one[:], r)
			emit(one[:n], i, end)
			i = end
			continue
		default:
			emit([]byte{c}, i, i+1)
			i++
			continue
		}
		emit([]byte{dec}, i, i+2)
		i += 2
	}
	return string(b), from, to
}

// jsonHex4 reads 4 hex digits at s[i:] as a rune.
func jsonHex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// matcher is an Aho-Corasick automaton over the forms: one pass over a
// text finds every occurrence of every form, and at each position the
// longest start of a cuttable form that ends there.
type matcher struct {
	root  [256]int32 // the root's transitions (0: stay at the root)
	nodes []acNode
}

type acNode struct {
	edges []acEdge
	fail  int32
	depth int32
	// match is the length of the longest form ending here (0: none).
	match int32
	// cut is the length of the longest start of a cuttable form ending
	// here.
	cut      int32
	cuttable bool // on the path of a cuttable form
}

type acEdge struct {
	b  byte
	to int32
}

func newMatcher(forms []string, cuttable map[string]bool) *matcher {
	m := &matcher{nodes: make([]acNode, 1, 1+len(forms)*8)}
	for _, f := range forms {
		n := int32(0)
		for i := 0; i < len(f); i++ {
			n = m.child(n, f[i])
			m.nodes[n].cuttable = m.nodes[n].cuttable || cuttable[f]
		}
		m.nodes[n].match = int32(len(f))
	}
	// Breadth first: a node's failure link (its longest proper suffix in
	// the trie) is known before the node's children need it.
	queue := make([]int32, 0, len(m.nodes))
	for _, e := range m.nodes[0].edges {
		m.root[e.b] = e.to
		queue = append(queue, e.to)
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		nu := &m.nodes[u]
		if nu.match == 0 {
			nu.match = m.nodes[nu.fail].match
		}
		if nu.cuttable {
			nu.cut = nu.depth
		} else {
			nu.cut = m.nodes[nu.fail].cut
		}
		for _, e := range nu.edges {
			if u != 0 {
				m.nodes[e.to].fail = m.next(m.nodes[u].fail, e.b)
			}
			queue = append(queue, e.to)
		}
	}
	return m
}

func (m *matcher) child(n int32, b byte) int32 {
	for _, e := range m.nodes[n].edges {
		if e.b == b {
			return e.to
		}
	}
	m.nodes = append(m.nodes, acNode{depth: m.nodes[n].depth + 1})
	to := int32(len(m.nodes) - 1)
	m.nodes[n].edges = append(m.nodes[n].edges, acEdge{b, to})
	return to
}

// next is the state after reading b in state st.
func (m *matcher) next(st int32, b byte) int32 {
	for st != 0 {
		for _, e := range m.nodes[st].edges {
			if e.b == b {
				return e.to
			}
		}
		st = m.nodes[st].fail
	}
	return m.root[b]
}

// spans appends the byte ranges of s to mask: every occurrence of a form,
// and the start of a cuttable form (minSecretLen bytes or more) right
// before a cut mark.
func (m *matcher) spans(s string, out [][2]int) [][2]int {
	st := int32(0)
	for i := 0; i < len(s); i++ {
		if st != 0 {
			if d := int(m.nodes[st].cut); d >= minSecretLen && isCut(s, i) {
				out = append(out, [2]int{i - d, i})
			}
		}
		st = m.next(st, s[i])
		if l := int(m.nodes[st].match); l > 0 {
			out = append(out, [2]int{i + 1 - l, i + 1})
		}
	}
	return out
}

// gramSet is a set of 4-byte strings, as a bitset with false positives.
type gramSet struct {
	bits  []uint64
	shift uint
}

func newGramSet(n int) gramSet {
	size := uint(64)
	for size < uint(8*n) {
		size <<= 1
	}
	shift := uint(32)
	for s := size; s > 1; s >>= 1 {
		shift--
	}
	return gramSet{bits: make([]uint64, size/64), shift: shift}
}

func (g gramSet) hash(w string) uint32 {
	x := uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16 | uint32(w[3])<<24
	return x * 2654435761 >> g.shift
}

func (g gramSet) add(w string) {
	h := g.hash(w)
	g.bits[h/64] |= 1 << (h % 64)
}

func (g gramSet) has(w string) bool {
	if len(g.bits) == 0 {
		return false
	}
	h := g.hash(w)
	return g.bits[h/64]&(1<<(h%64)) != 0
}
