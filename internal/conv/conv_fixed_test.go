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
