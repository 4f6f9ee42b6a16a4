package conv

import "testing"

func TestAppendFixed(t *testing.T) {
	for _, c := range []struct {
		n     int64
		scale int
		want  string
	}{
		{2550, 2, "25.50"}, {5, 3, "0.005"}, {3, 0, "3"}, {0, 2, "0.00"}, {0, 0, "0"}, {-1, 2, "-0.01"},
		{100000000, 2, "1000000.00"}, {-9223372036854775808, 0, "-9223372036854775808"}, {9223372036854775807, 18, "9.223372036854775807"},
		{1, 18, "0.000000000000000001"},
	} {
		if got := string(AppendFixed(nil, c.n, c.scale)); got != c.want {
			t.Errorf("AppendFixed(%d, %d) = %s, want %s", c.n, c.scale, got, c.want)
		}
	}
}

func TestNaturalScale(t *testing.T) {
	for in, want := range map[string]int{"25.50": 2, "1e3": 0, "1.5e-3": 4, "12": 0, "0.125": 3, "1.25E+1": 1, "1e-40": 18, "-3.0": 1} {
		if got := NaturalScale([]byte(in)); got != want {
			t.Errorf("NaturalScale(%s) = %d, want %d", in, got, want)
		}
	}
}

func TestDecimalText(t *testing.T) {
	for in, want := range map[string]string{
		"1001": "1001", "1.0e3": "1000", "1000.00": "1000", "1E3": "1000", "0.1e1": "1", "-0": "0", "-0.0e5": "0",
		"-5": "-5", "1.5": "1.5", "1.50": "1.5", "2.5e-1": "0.25", "-2.5E-3": "-0.0025", "1e21": "1000000000000000000000",
		"12345678901234567890": "12345678901234567890", "9007199254740993e0": "9007199254740993", "0": "0", "0.000": "0",
		"100e-2": "1", "1e+2": "100",
	} {
		if got, ok := DecimalText(in); !ok || got != want {
			t.Errorf("DecimalText(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "-", "01", "1.", ".5", "1e", "1e1000", "1e-1000", "abc", "+1", "1.5x"} {
		if got, ok := DecimalText(in); ok {
			t.Errorf("DecimalText(%q) = %q, want refused", in, got)
		}
	}
}
