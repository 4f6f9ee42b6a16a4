// Package suggest finds the closest name to a misspelt one, for "did you mean" hints.
package suggest

import (
	"fmt"
	"sort"
	"strings"
)

// DidYouMean returns `; did you mean "x"?` for the closest candidate within a
// small edit distance, or "".
func DidYouMean(name string, candidates []string) string {
	if best := Closest(name, candidates); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// Closest returns the candidate nearest to name: at most a third of the
// longer word away (at least 1, at most 3 edits), ties broken
// alphabetically; failing that, the only candidate name (3 or more
// letters) is the start of.
func Closest(name string, candidates []string) string {
	for _, c := range candidates {
		if c != name && strings.EqualFold(c, name) {
			return c
		}
	}
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	best, bestD := "", 1<<30
	for _, c := range sorted {
		if c == name {
			continue
		}
		d := editDistance(name, c)
		limit := min(max(max(len(name), len(c))/3, 1), 3)
		if d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" && len(name) >= 3 {
		// An abbreviation (attrib for attribution) is too many edits
		// away, but the only candidate it starts is a good guess.
		var only string
		for _, c := range sorted {
			if c != name && len(c) > len(name) && strings.HasPrefix(strings.ToLower(c), strings.ToLower(name)) {
				if only != "" {
					return ""
				}
				only = c
			}
		}
		return only
	}
	return best
}

// editDistance is the optimal string alignment distance (Levenshtein plus
// transpositions) between a and b, over bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30 // not a typo of a key
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
