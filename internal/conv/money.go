// Package conv holds the value conversions shared by the compiler (as
// expression helpers) and the runtime (as type rules): money in minor units
// from decimal text, ISO 4217 exponents, RFC 3339 times, event-name
// normalisation. Every function is deterministic and side-effect free.
package conv

import (
	"errors"
	"math"
	"slices"
)

// Errors returned by MinorUnits.
var (
	ErrNotDecimal = errors.New("not a plain decimal number")
	ErrTooLarge   = errors.New("amount too large")
)

// MinorUnits converts a decimal amount written as text (a JSON number, or a
// plain decimal such as "25.50" or "-3") into integer minor units with the
// given exponent, rounding half away from zero. It works on the digits as
// written and never goes through a float: "1.005" with exponent 2 is 101.
// JSON exponent notation ("1.5e2") is accepted only when allowExp is set.
func MinorUnits(text []byte, exp int, allowExp bool) (int64, error) {
	n, _, err := MinorUnitsSign(text, exp, allowExp)
	return n, err
}

// MinorUnitsSign is MinorUnits that also reports whether the amount as
// written is below zero: "-0.001" is 0 minor units, but negative ("-0"
// and "-0.00" are not).
func MinorUnitsSign(text []byte, exp int, allowExp bool) (minor int64, negative bool, err error) {
	i := 0
	neg := false
	if i < len(text) && text[i] == '-' {
		neg = true
		i++
	}
	intStart := i
	for i < len(text) && isDigit(text[i]) {
		i++
	}
	intDigits := text[intStart:i]
	if len(intDigits) == 0 {
		return 0, false, ErrNotDecimal
	}
	var fracDigits []byte
	if i < len(text) && text[i] == '.' {
		i++
		fs := i
		for i < len(text) && isDigit(text[i]) {
			i++
		}
		fracDigits = text[fs:i]
		if len(fracDigits) == 0 {
			return 0, false, ErrNotDecimal
		}
	}
	e10 := 0
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		if !allowExp {
			return 0, false, ErrNotDecimal
		}
		i++
		eneg := false
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			eneg = text[i] == '-'
			i++
		}
		es := i
		for i < len(text) && isDigit(text[i]) {
			if e10 < 1_000_000 {
				e10 = e10*10 + int(text[i]-'0')
			}
			i++
		}
		if i == es {
			return 0, false, ErrNotDecimal
		}
		if eneg {
			e10 = -e10
		}
	}
	if i != len(text) {
		return 0, false, ErrNotDecimal
	}
	// value = digits(int+frac) * 10^(e10 - len(frac)); minor = value * 10^exp
	shift := exp + e10 - len(fracDigits)
	var n uint64
	digit := func(d byte) error {
		if n > (math.MaxInt64-uint64(d-'0'))/10 {
			return ErrTooLarge
		}
		n = n*10 + uint64(d-'0')
		return nil
	}
	all := len(intDigits) + len(fracDigits)
	at := func(k int) byte {
		if k < len(intDigits) {
			return intDigits[k]
		}
		return fracDigits[k-len(intDigits)]
	}
	keep := all
	if shift < 0 {
		keep = all + shift // digits kept before the rounding digit
	}
	for k := 0; k < keep && k < all; k++ {
		if err := digit(at(k)); err != nil {
			return 0, false, err
		}
	}
	if shift < 0 {
		if keep >= 0 && keep < all && at(keep) >= '5' {
			if n == math.MaxInt64 {
				return 0, false, ErrTooLarge
			}
			n++
		}
	} else {
		for ; shift > 0; shift-- {
			if n == 0 {
				break
			}
			if n > math.MaxInt64/10 {
				return 0, false, ErrTooLarge
			}
			n *= 10
		}
	}
	if neg {
		// Below zero as written, even if it rounds to 0 minor units.
		nonzero := slices.ContainsFunc(intDigits, func(d byte) bool { return d != '0' }) ||
			slices.ContainsFunc(fracDigits, func(d byte) bool { return d != '0' })
		return -int64(n), nonzero, nil
	}
	return int64(n), false, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// CurrencyExponent returns the ISO 4217 minor-unit exponent of a
// three-letter upper-case code: 0 for BIF CLP DJF GNF ISK JPY KMF KRW PYG
// RWF UGX VND VUV XAF XOF XPF; 3 for BHD IQD JOD KWD LYD OMR TND; 2 for every
// other code.
func CurrencyExponent(code string) int {
	switch code {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

// ValidCurrency reports whether s is three letters A-Z.
func ValidCurrency(s []byte) bool {
	if len(s) != 3 {
		return false
	}
	for _, c := range s {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// NaturalScale returns the fraction digits of a decimal as written, its
// exponent applied ("25.50" 2, "1e3" 0, "1.5e-3" 4), clamped to 0..18;
// 0 for text that is not a decimal.
func NaturalScale(text []byte) int {
	i := 0
	for i < len(text) && text[i] != '.' && text[i] != 'e' && text[i] != 'E' {
		i++
	}
	frac := 0
	if i < len(text) && text[i] == '.' {
		i++
		for i < len(text) && isDigit(text[i]) {
			i++
			frac++
		}
	}
	if i < len(text) && (text[i] == 'e' || text[i] == 'E') {
		i++
		neg := false
		if i < len(text) && (text[i] == '+' || text[i] == '-') {
			neg = text[i] == '-'
			i++
		}
		e := 0
		for i < len(text) && isDigit(text[i]) {
			if e < 1000 {
				e = e*10 + int(text[i]-'0')
			}
			i++
		}
		if neg {
			frac += e
		} else {
			frac -= e
		}
	}
	return min(max(frac, 0), 18)
}

// AppendFixed appends n units of 10^-scale as a decimal with exactly scale
// fraction digits, never an exponent: 2550, 2 is 25.50; 5, 3 is 0.005;
// 3, 0 is 3.
func AppendFixed(dst []byte, n int64, scale int) []byte {
	if n < 0 {
		dst = append(dst, '-')
	}
	u := uint64(n)
	if n < 0 {
		u = uint64(-n) // MinInt64 wraps to its own magnitude as uint64
	}
	var buf [24]byte
	i := len(buf)
	for k := 0; k < scale || u > 0 || k <= scale; k++ {
		if k == scale && scale > 0 {
			i--
			buf[i] = '.'
		}
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 && k >= scale {
			break
		}
	}
	return append(dst, buf[i:]...)
}

// Decimal is an exact decimal: N units of 10^-Scale.
type Decimal struct {
	N     int64
	Scale int
}

// ParseDecimal reads a decimal as written (a JSON number when allowExp,
// else plain decimal text), exactly up to 18 fraction digits.
func ParseDecimal(text []byte, allowExp bool) (Decimal, error) {
	scale := NaturalScale(text)
	n, _, err := MinorUnitsSign(text, scale, allowExp)
	if err != nil {
		return Decimal{}, err
	}
	return Decimal{n, scale}.trim(), nil
}

// trim drops trailing zero fraction digits.
func (d Decimal) trim() Decimal {
	for d.Scale > 0 && d.N%10 == 0 {
		d.N /= 10
		d.Scale--
	}
	return d
}

// Append writes d with its scale's fraction digits.
func (d Decimal) Append(dst []byte) []byte { return AppendFixed(dst, d.N, d.Scale) }

// Mul returns a×b exactly; ErrTooLarge when it does not fit 18 fraction
// digits and 64 bits.
func (d Decimal) Mul(b Decimal) (Decimal, error) {
	if d.N == 0 || b.N == 0 {
		return Decimal{}, nil
	}
	p := d.N * b.N
	if p/b.N != d.N || (d.N == -1 && b.N == math.MinInt64) || (b.N == -1 && d.N == math.MinInt64) {
		return Decimal{}, ErrTooLarge
	}
	r := Decimal{p, d.Scale + b.Scale}.trim()
	if r.Scale > 18 {
		return Decimal{}, ErrTooLarge
	}
	return r, nil
}

// Add returns a+b exactly; ErrTooLarge when it does not fit 64 bits.
func (d Decimal) Add(b Decimal) (Decimal, error) {
	for d.Scale < b.Scale {
		if d.N > math.MaxInt64/10 || d.N < math.MinInt64/10 {
			return Decimal{}, ErrTooLarge
		}
		d.N *= 10
		d.Scale++
	}
	for b.Scale < d.Scale {
		if b.N > math.MaxInt64/10 || b.N < math.MinInt64/10 {
			return Decimal{}, ErrTooLarge
		}
		b.N *= 10
		b.Scale++
	}
	s := d.N + b.N
	if (s > d.N) != (b.N > 0) && b.N != 0 {
		return Decimal{}, ErrTooLarge
	}
	return Decimal{s, d.Scale}.trim(), nil
}
