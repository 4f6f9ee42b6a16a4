package runtime

import (
	"encoding/base64"
	"strings"
	"sync"
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

// A secret holding the mask's character cannot form again around a mask.
func TestRedactMaskCannotReform(t *testing.T) {
	for _, c := range []struct{ secret, in string }{
		{"*bcd", "*bcdbcd"},
		{"***x", "***xxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
		{"a**b", "a**a**bb"},
	} {
		r := newRedactor([]string{c.secret})
		if got := r.String(c.in); strings.Contains(got, c.secret) {
			t.Errorf("secret %q: String(%q) = %q", c.secret, c.in, got)
		}
	}
}

// The secret in base64 at any offset of any base64 text, in both
// alphabets, padded or not: none of the characters that depend on it alone
// is left.
func TestRedactBase64AnyOffset(t *testing.T) {
	const secret = "sk-test-123?>~"
	r := newRedactor([]string{secret})
	for pre := 0; pre < 7; pre++ {
		for post := 0; post < 4; post++ {
			plain := strings.Repeat("p", pre) + secret + strings.Repeat("q", post)
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				e := enc.EncodeToString([]byte(plain))
				got := r.String("token " + e + " end")
				a := pre % 3
				core := enc.EncodeToString(append(make([]byte, a), secret...))[(8*a+5)/6 : (8*a+8*len(secret))/6]
				if strings.Contains(got, core) || !strings.Contains(got, Mask) {
					t.Errorf("%d+%d bytes around, %s: %q", pre, post, e, got)
				}
			}
		}
	}
}

// A secret written with JSON escapes, in any mix and in any text (JSON
// or not), is found and masked in place, escapes included.
func TestRedactJSONEscapesAnyMix(t *testing.T) {
	r := newRedactor([]string{"sk-test-123"})
	for in, want := range map[string]string{
		`{"k":"\u0073k-test-123","n":1}`:              `{"k":"***","n":1}`,
		`not json: \u0073\u006B\u002dtest\u002d123 !`: `not json: *** !`,
		`{"k":"sk\u002dtest-123`:                      `{"k":"***`, // JSON cut short
		`x \u0073k-t...`:                              `x ***...`,  // cut after the start of the secret
		`sk\/test \u0073k`:                            `sk\/test \u0073k`,
	} {
		if got := r.String(in); got != want {
			t.Errorf("String(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRedactLazyMatcher: the automaton is built at the first text that may
// hold a secret, once, however many goroutines scrub at the same time
// (run with -race), and masks as one built at once does.
func TestRedactLazyMatcher(t *testing.T) {
	const secret = "sk-lazy-0123456789"
	r := newRedactor([]string{secret}, "Basic dXNlcjpzay1sYXp5LTAxMjM0NTY3ODk=")
	if r.m != nil {
		t.Fatal("the automaton was built before any text needed it")
	}
	if got := r.String("nothing to hide"); got != "nothing to hide" || r.m != nil {
		t.Fatalf("a clean text built the automaton or changed: %q", got)
	}
	text := "key=" + secret + " cut sk-lazy-01234..."
	want := newRedactor([]string{secret}, "Basic dXNlcjpzay1sYXp5LTAxMjM0NTY3ODk=")
	want.matcher()
	w := want.String(text)
	if strings.Contains(w, "0123456789") || strings.Contains(w, "sk-lazy-01234") {
		t.Fatalf("not masked: %q", w)
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = r.String(text)
		}()
	}
	wg.Wait()
	for _, g := range got {
		if g != w {
			t.Fatalf("lazy %q, eager %q", g, w)
		}
	}
}
