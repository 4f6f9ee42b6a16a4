// Package diag holds the diagnostics the blueprint compiler reports: values
// with a position, a severity, a stable snake_case code and a message.
//
// One position type serves the whole project: a file name, a 1-based line and
// a 1-based column counted in runes. Every library's own notion of position
// (yaml.v3 nodes, expr offsets, JSON Schema pointers) is converted to it at the
// boundary.
package diag

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Limit is the most diagnostics a List keeps; Capped adds one final
// "and N more" diagnostic after it.
const Limit = 100

// Pos is a position in a source file. Line and Col are 1-based; Col counts
// runes. The zero Pos means "no position" (the file as a whole).
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

// String renders FILE:LINE:COL, leaving out what is unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Severity says whether a diagnostic stops compilation.
type Severity int

const (
	// Error diagnostics make Compile return no blueprint.
	Error Severity = iota
	// Warning diagnostics are reported beside a compiled blueprint.
	Warning
)

func (s Severity) String() string {
	if s == Warning {
		return "warning"
	}
	return "error"
}

// MarshalText writes the severity as "error" or "warning".
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Diagnostic is one finding of the compiler.
type Diagnostic struct {
	Pos
	Severity Severity `json:"severity"`
	// Code is stable snake_case; docs/diagnostics.md lists every one.
	Code string `json:"code"`
	// Message is one line for humans; it never holds a secret value.
	Message string `json:"message"`
	// dropped counts the errors and warnings a too_many_diagnostics
	// diagnostic stands for.
	dropped [2]int
}

// String renders the diagnostic as FILE:LINE:COL: SEVERITY CODE: message.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s %s: %s", d.Pos, d.Severity, d.Code, d.Message)
}

// MarshalJSON flattens the position into the object.
func (d Diagnostic) MarshalJSON() ([]byte, error) {
	type flat struct {
		File     string   `json:"file"`
		Line     int      `json:"line"`
		Col      int      `json:"col"`
		Severity Severity `json:"severity"`
		Code     string   `json:"code"`
		Message  string   `json:"message"`
	}
	return json.Marshal(flat{d.File, d.Line, d.Col, d.Severity, d.Code, d.Message})
}

// List is an ordered collection of diagnostics.
type List []Diagnostic

// Errorf appends an error diagnostic.
func (l *List) Errorf(pos Pos, code, format string, args ...any) {
	*l = append(*l, Diagnostic{Pos: pos, Severity: Error, Code: code, Message: fmt.Sprintf(format, args...)})
}

// Warnf appends a warning diagnostic.
func (l *List) Warnf(pos Pos, code, format string, args ...any) {
	*l = append(*l, Diagnostic{Pos: pos, Severity: Warning, Code: code, Message: fmt.Sprintf(format, args...)})
}

// HasErrors reports whether any diagnostic is an error.
func (l List) HasErrors() bool {
	for _, d := range l {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Err returns the list as an error when it holds an error diagnostic, else nil.
func (l List) Err() error {
	if l.HasErrors() {
		return l
	}
	return nil
}

// Error joins the diagnostics, one per line.
func (l List) Error() string {
	lines := make([]string, len(l))
	for i, d := range l {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Sorted returns the diagnostics sorted by file, line, column, code and
// message, without exact duplicates, capped at Limit with a final
// "and N more" diagnostic.
func (l List) Sorted() List {
	out := slices.Clone(l)
	slices.SortStableFunc(out, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Col, b.Col),
			cmp.Compare(a.Severity, b.Severity),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
	out = slices.Compact(out)
	if len(out) > Limit {
		rest := List(out[Limit:])
		errs, warns := rest.Counts()
		sev := Warning
		if errs > 0 {
			sev = Error
		}
		out = append(out[:Limit:Limit], Diagnostic{
			Pos:      rest[0].Pos, // where the ones left out start
			Severity: sev,
			Code:     "too_many_diagnostics",
			Message:  fmt.Sprintf("and %d more from here on (%d errors, %d warnings)", len(rest), errs, warns),
			dropped:  [2]int{errs, warns},
		})
	}
	return out
}

// Counts returns how many errors and warnings the list holds, those a
// too_many_diagnostics diagnostic stands for included.
func (l List) Counts() (errors, warnings int) {
	for _, d := range l {
		switch {
		case d.Code == "too_many_diagnostics":
			errors += d.dropped[0]
			warnings += d.dropped[1]
		case d.Severity == Error:
			errors++
		default:
			warnings++
		}
	}
	return errors, warnings
}
