package runtime

import "testing"

func TestCanonicalJSON(t *testing.T) {
	cases := map[string]string{
		`{"a":"sk\u002dx","b":[1,2.50,{"c":"\/"}],"d":{},"e":[],"f":null,"g":true}`: `{"a":"sk-x","b":[1,2.50,{"c":"/"}],"d":{},"e":[],"f":null,"g":true}`,
		`[{"a":[[]]},{"b":"\t"}]`: `[{"a":[[]]},{"b":"\t"}]`,
		`{"plain":"no escapes"}`:  `{"plain":"no escapes"}`,
		`not json \u`:             `not json \u`,
	}
	for in, want := range cases {
		if got := string(canonicalJSON([]byte(in))); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}
