package conv

import (
	"strings"
	"unicode/utf8"
)

// AppendNormalizedName appends the normalised form of an event name: trimmed
// of surrounding white space, lower-cased, and every run of spaces, '-' and
// '_' turned into one '_'.
func AppendNormalizedName(dst []byte, name string) []byte {
	name = strings.TrimSpace(name)
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			name = strings.ToLower(name) // rare: non-ASCII names
			break
		}
	}
	inRun := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == ' ' || c == '-' || c == '_' {
			if !inRun {
				dst = append(dst, '_')
				inRun = true
			}
			continue
		}
		inRun = false
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// NormalizeName returns the normalised form of an event name.
func NormalizeName(name string) string {
	return string(AppendNormalizedName(make([]byte, 0, len(name)), name))
}
