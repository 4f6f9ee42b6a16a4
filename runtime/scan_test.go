package runtime

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzScanner: the scanner accepts exactly what encoding/json accepts, and
// records the same values gjson finds.
func FuzzScanner(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `{"a":1}`, `{"a":"\u00e9\ud83d\ude00","b":[1,2.5e-3,-0,true,false,null]}`, `{"a":{"b":{"c":"x"}}}`,
		`{"a":1,}`, `[1,]`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `"\x"`, `{"a":"\u12"}`, `{"a" 1}`, `tru`, ` {"a":[]} `,
		`{"a":1}{"b":2}`, `{"type":"track","event":"E","properties":{"a":[{"b":1},{"b":"x"}]}}`, "{\"a\":\"\x01\"}",
	} {
		f.Add([]byte(s))
	}
	root := newTrie()
	paths := []string{"a", "a.b", "a.b.c", "type", "event", "properties.a", "properties.a.1.b", "b.1"}
	for i, p := range paths {
		segs, _ := splitPath(p)
		root.add(segs, i)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s scanner
		slots := make([]span, len(paths))
		err := s.scan(b, root, slots, 1<<20)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("scanner err=%v, encoding/json valid=%v for %q", err, json.Valid(b), b)
		}
		if err != nil {
			return
		}
		for i, p := range paths {
			r := gjson.GetBytes(b, p)
			sp := slots[i]
			if r.Exists() != sp.present() {
				t.Fatalf("%s: gjson exists=%v %q, scanner present=%v in %q", p, r.Exists(), r.Raw, sp.present(), b)
			}
			if sp.present() && string(b[sp.start:sp.end]) != r.Raw {
				t.Fatalf("%s: gjson %q, scanner %q in %q", p, r.Raw, b[sp.start:sp.end], b)
			}
		}
	})
}
