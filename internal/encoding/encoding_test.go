package encoding

import (
	"slices"
	"testing"
)

func TestCanonicalJSON(t *testing.T) {
	cases := map[string]string{
		`{"a":"sk\u002dx","b":[1,2.50,{"c":"\/"}],"d":{},"e":[],"f":null,"g":true}`: `{"a":"sk-x","b":[1,2.50,{"c":"/"}],"d":{},"e":[],"f":null,"g":true}`,
		`[{"a":[[]]},{"b":"\t"}]`: `[{"a":[[]]},{"b":"\t"}]`,
		`{"plain":"no escapes"}`:  `{"plain":"no escapes"}`,
		`not json \u`:             `not json \u`,
	}
	for in, want := range cases {
		if got := string(CanonicalJSON([]byte(in))); got != want {
			t.Errorf("%s\n got %s\nwant %s", in, got, want)
		}
	}
}

// The JSON encoder sends the document as it is, with its secret ranges
// moved by what dst already held; Redact masks them.
func TestJSONEncode(t *testing.T) {
	doc := []byte(`{"a":"x","k":"sk-1"}`)
	secrets := [][2]int{{13, 19}}
	out, ranges, err := JSON.Encode([]byte("pre"), doc, secrets, nil)
	if err != nil || string(out) != `pre{"a":"x","k":"sk-1"}` || !slices.Equal(ranges, [][2]int{{16, 22}}) {
		t.Fatalf("Encode = %s %v %v", out, ranges, err)
	}
	if secrets[0] != [2]int{13, 19} {
		t.Error("Encode changed the caller's ranges")
	}
	if got := string(Redact(JSON, doc, secrets)); got != `{"a":"x","k":"***"}` {
		t.Errorf("Redact = %s", got)
	}
	if _, err := JSON.Decode([]byte(`{"a":1} {}`)); err == nil {
		t.Error("Decode took trailing data")
	}
	if v, err := JSON.Decode([]byte(`{"n":2550}`)); err != nil || v.(map[string]any)["n"].(interface{ String() string }).String() != "2550" {
		t.Errorf("Decode = %v, %v", v, err)
	}
	if e, ok := Lookup("json"); !ok || e != JSON || ContentTypeOK(e, "application/json; charset=utf-8") != true {
		t.Error("Lookup(json)")
	}
}
