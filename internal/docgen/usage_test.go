package docgen

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

func TestReachable(t *testing.T) {
	st := func(lo, hi int) []compiler.StatusRange { return []compiler.StatusRange{{Lo: lo, Hi: hi}} }
	when := &compiler.Expr{Text: "status > 0"}
	var (
		all1xx5xx = &compiler.ResponseRule{Statuses: st(100, 599), Description: "100-599"}
		anyWhen   = &compiler.ResponseRule{When: when, Description: "any, when"}
		anyStatus = &compiler.ResponseRule{Description: "any"}
		after     = &compiler.ResponseRule{Statuses: st(200, 200), Description: "200 after any"}
		anyAgain  = &compiler.ResponseRule{Description: "any again"}
	)
	// A rule matching any status is not taken by rules that name every
	// status from 100 to 599 (a server may answer outside them), nor is a
	// when rule matching any status; once a rule without when matches any
	// status, nothing after it can match.
	got := reachable([]*compiler.ResponseRule{all1xx5xx, anyWhen, anyStatus, after, anyAgain})
	var names []string
	for _, r := range got {
		names = append(names, r.Description)
	}
	if want := "100-599|any, when|any"; strings.Join(names, "|") != want {
		t.Errorf("reachable = %s, want %s", strings.Join(names, "|"), want)
	}
	// A status split over several earlier rules is taken.
	got = reachable([]*compiler.ResponseRule{
		{Statuses: st(400, 449)}, {Statuses: st(450, 499)}, {Statuses: st(404, 404), Description: "404"},
	})
	if len(got) != 2 {
		t.Errorf("a 404 after 400-449 and 450-499 is kept: %d rules", len(got))
	}
}
