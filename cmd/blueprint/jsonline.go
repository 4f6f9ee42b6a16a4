package main

import (
	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/runtime"
)

// wholeJSON reports whether line is one whole JSON value: readEvents reads
// NDJSON when the first line is one. gjson's validator recurses once per
// level of nesting, so it is given only lines nested within the runtime's
// limit (a 10 MB line of [ overflowed the stack and killed the process).
// A line nested deeper counts as a whole value when its brackets close: it
// is then an event the runtime rejects as nested too deep.
func wholeJSON(line []byte) bool {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range line {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	if deepest <= runtime.DefaultMaxDepth {
		return gjson.ValidBytes(line)
	}
	return depth == 0 && !inString
}
