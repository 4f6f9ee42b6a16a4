package runtime

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Mask replaces a secret wherever it is shown.
const Mask = "***"

// minSecretLen is the shortest secret scrubbed from free text: shorter
// values would mask unrelated text. Such secrets are still masked wherever
// they are known to be (auth, secret headers and fields).
const minSecretLen = 4

// redactor scrubs secret config values, and the encodings they travel in,
// from any text.
type redactor struct {
	r     *strings.Replacer
	forms []string // distinct, longest first
}

func newRedactor(secrets []string) *redactor {
	var forms []string
	add := func(s string) {
		if len(s) >= minSecretLen {
			forms = append(forms, s)
		}
	}
	for _, s := range secrets {
		add(s)
		add(url.QueryEscape(s))
		add(url.PathEscape(s))
		if j, err := json.Marshal(s); err == nil {
			add(string(j[1 : len(j)-1]))
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
			add(enc.EncodeToString([]byte(s)))
			add(enc.EncodeToString([]byte(s + ":")))
			add(enc.EncodeToString([]byte(":" + s)))
		}
	}
	if len(forms) == 0 {
		return &redactor{}
	}
	// Longest first, so that an encoding containing the raw value wins.
	sort.Slice(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	forms = slices.Compact(forms)
	var pairs []string
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return &redactor{r: strings.NewReplacer(pairs...), forms: forms}
}

// found reports whether any secret form occurs in s: the fast path, since
// almost no text holds one.
func (r *redactor) found(s string) bool {
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// String scrubs s.
func (r *redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	if r.found(s) {
		s = r.r.Replace(s)
	}
	if strings.Contains(s, cutMark) {
		s = r.cutPrefixes(s)
	}
	return s
}

// cutMark ends text that was cut short (truncate).
const cutMark = "..."

// maxCuts is how many cut marks of one text cutPrefixes looks at.
const maxCuts = 8

// cutPrefixes masks the start of a secret left just before a cut: text is
// cut (to 40 or 200 bytes) before it is scrubbed, and a secret cut in two
// no longer matches as a whole.
func (r *redactor) cutPrefixes(s string) string {
	// A message holds a few cut values at most: only the first cut marks
	// not inside a run of dots are looked at, so that text made of dots
	// cannot make this slow.
	looked := 0
	for i := 0; looked < maxCuts; {
		j := strings.Index(s[i:], cutMark)
		if j < 0 {
			return s
		}
		at := i + j
		if at > 0 && s[at-1] == '.' {
			i = at + len(cutMark)
			continue
		}
		looked++
		for _, f := range r.forms {
			for l := min(len(f)-1, at); l >= minSecretLen; l-- {
				if strings.HasSuffix(s[:at], f[:l]) {
					s = s[:at-l] + Mask + s[at:]
					at += len(Mask) - l
					break
				}
			}
		}
		i = at + len(cutMark)
	}
	return s
}

// Bytes scrubs b, returning b itself when there is nothing to scrub.
func (r *redactor) Bytes(b []byte) []byte {
	if r == nil || r.r == nil || !r.found(bstr(b)) {
		return b
	}
	return []byte(r.r.Replace(string(b)))
}

func (r *redactor) active() bool { return r != nil && r.r != nil }
