package suggest

import "testing"

func TestClosest(t *testing.T) {
	cands := []string{"advertising", "analytics", "attribution", "cdp", "cloud_storage", "other", "activity", "required"}
	for name, want := range map[string]string{
		"requird":   "required",    // one edit
		"activty":   "activity",    // one edit
		"Required":  "required",    // case
		"attrib":    "attribution", // the only candidate it starts
		"a":         "",            // too short to be a prefix guess
		"ad":        "",
		"an":        "",
		"cloud":     "cloud_storage",
		"xyzzy":     "",
		"attribute": "attribution", // two edits
	} {
		if got := Closest(name, cands); got != want {
			t.Errorf("Closest(%q) = %q, want %q", name, got, want)
		}
	}
	// Two candidates start with it: no guess.
	if got := Closest("cl", []string{"cloud", "clock"}); got != "" {
		t.Errorf("ambiguous prefix: %q", got)
	}
}
