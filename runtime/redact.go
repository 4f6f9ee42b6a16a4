package runtime

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
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
	r *strings.Replacer
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
	var pairs []string
	for _, f := range forms {
		pairs = append(pairs, f, Mask)
	}
	return &redactor{r: strings.NewReplacer(pairs...)}
}

// String scrubs s.
func (r *redactor) String(s string) string {
	if r == nil || r.r == nil {
		return s
	}
	return r.r.Replace(s)
}

// Bytes scrubs b, returning b itself when there is nothing to scrub.
func (r *redactor) Bytes(b []byte) []byte {
	if r == nil || r.r == nil {
		return b
	}
	s := r.r.Replace(string(b))
	return []byte(s)
}
