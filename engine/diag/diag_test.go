package diag

import (
	"strings"
	"testing"
)

func TestSortedCapsAndDedups(t *testing.T) {
	var l List
	for i := 150; i > 0; i-- {
		l.Errorf(Pos{File: "b.yaml", Line: i, Col: 1}, "unknown_key", "unknown key k%d", i)
	}
	l.Errorf(Pos{File: "b.yaml", Line: 7, Col: 1}, "unknown_key", "unknown key k7") // duplicate
	l.Warnf(Pos{File: "a.yaml", Line: 9, Col: 2}, "unused_warning", "w")
	s := l.Sorted()
	if len(s) != Limit+1 {
		t.Fatalf("%d diagnostics, want %d", len(s), Limit+1)
	}
	if s[0].File != "a.yaml" || s[1].Line != 1 || s[2].Line != 2 {
		t.Errorf("not sorted: %v %v %v", s[0], s[1], s[2])
	}
	last := s[Limit]
	if last.String() != "b.yaml:100:1: error too_many_diagnostics: and 51 more from here on (51 errors, 0 warnings)" {
		t.Errorf("summary %v", last)
	}
	if e, w := s.Counts(); e != 150 || w != 1 {
		t.Errorf("Counts() = %d errors, %d warnings; want 150 and 1 (the left-out ones included)", e, w)
	}
	if got := s[1].String(); got != "b.yaml:1:1: error unknown_key: unknown key k1" {
		t.Errorf("String() = %q", got)
	}
	if !strings.Contains(s.Error(), "\n") || !s.HasErrors() || s.Err() == nil {
		t.Error("List as error")
	}
}
