package runtime

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/conv"
)

// FuzzPlainMinorUnits: whenever plainMinorUnits decides an amount, it is
// MinorUnitsSign's: the same minor units, not negative, no error.
//
//	go test ./runtime -run '^$' -fuzz FuzzPlainMinorUnits -fuzztime 30s
func FuzzPlainMinorUnits(f *testing.F) {
	for _, s := range []string{"0", "0.0", "99.99", "15.0", "27.5", "1", "0.001", "1.234", "999999999999999999", "99999999999999999.9",
		"9999999999999999", "9223372036854775807", "-0", "-1.5", "1e2", "1.", ".5", "01", "1.5e-1", "12345678901234567890"} {
		for exp := range 4 {
			f.Add(s, exp)
		}
	}
	f.Fuzz(func(t *testing.T, s string, exp int) {
		if exp < 0 || exp > 3 {
			return
		}
		n, ok := plainMinorUnits([]byte(s), exp)
		if !ok {
			return
		}
		m, neg, err := conv.MinorUnitsSign([]byte(s), exp, true)
		if err != nil || neg || m != n {
			t.Errorf("%q exp %d: plain %d, MinorUnitsSign %d %v %v", s, exp, n, m, neg, err)
		}
	})
}

// TestAppendHex32 compares appendHex32 with encoding/hex.
func TestAppendHex32(t *testing.T) {
	for _, s := range []string{"", "a", "jane.doe@example.com"} {
		sum := sha256.Sum256([]byte(s))
		if got, want := string(appendHex32([]byte("x"), &sum)), "x"+hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%q: %s, want %s", s, got, want)
		}
	}
	var all [32]byte
	for b := range 256 {
		all[b%32] = byte(b)
		if b%32 == 31 {
			if got, want := string(appendHex32(nil, &all)), hex.EncodeToString(all[:]); got != want {
				t.Errorf("%s, want %s", got, want)
			}
		}
	}
}

// TestAppendLowerTrim: the one-pass ASCII lowering writes what
// strings.ToLower of the trimmed text does, non-ASCII text included.
func TestAppendLowerTrim(t *testing.T) {
	for _, s := range []string{"", " ", "Jane.Doe@Example.COM", "  A@B.C\\t", "ÉLISE@Example.com", "abc\\u00e9", "Z@[]^_`{", "Üx "} {
		if got, want := string(appendLowerTrim([]byte("x"), []byte(s))), "x"+strings.ToLower(strings.TrimSpace(s)); got != want {
			t.Errorf("%q: %q, want %q", s, got, want)
		}
	}
}
