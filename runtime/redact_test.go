package runtime

import (
	"strings"
	"testing"
)

// Text cut short before it is scrubbed keeps no start of a secret.
func TestRedactCutSecret(t *testing.T) {
	r := newRedactor([]string{"sk-live-SECRET123"})
	for in, want := range map[string]string{
		`"xxxxsk-live-SE..." is not a currency`: `"xxxx***..." is not a currency`,
		`vendor: padding sk-live...`:            `vendor: padding ***...`,
		`a sk-live-SECRET123 b sk-l...`:         `a *** b ***...`,
		`c2stbGl2ZS1TRUNSRVQxMjM6 and c2st...`:  `*** and ***...`, // Basic auth's base64, cut
		`sk-... is too short to tell`:           `sk-... is too short to tell`,
		`nothing cut here sk-live`:              `nothing cut here sk-live`,
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// Text made of cut marks (an event name of dots) is scrubbed without
// looking at every mark (it took seconds; BenchmarkRedactDots measures).
func TestRedactManyCutMarks(t *testing.T) {
	r := newRedactor([]string{strings.Repeat("k", 1024)})
	dots := strings.Repeat(".", 300_000)
	if got := r.String(dots + "kkkk..."); got != dots+"***..." {
		t.Errorf("the cut secret after the dots was not masked: ...%q", got[len(got)-12:])
	}
}

func BenchmarkRedactDots(b *testing.B) {
	r := newRedactor([]string{strings.Repeat("k", 1024)})
	s := strings.Repeat(".", 30_000)
	for b.Loop() {
		r.String(s)
	}
}
