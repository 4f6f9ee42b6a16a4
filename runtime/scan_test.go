package runtime

import (
	"encoding/json"
	"strings"
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
		`{"properties":{"items":[{"b":1,"c":{"d":[2]}},3,{},[4,5],{"b":"x","b":"y"}],"items":[{"b":0}]}}`,
	} {
		f.Add([]byte(s))
	}
	root := newTrie()
	paths := []string{"a", "a.b", "a.b.c", "type", "event", "properties.a", "properties.a.1.b", "b.1", "properties.items"}
	for i, p := range paths {
		segs, _ := splitPath(p)
		root.add(segs, i)
	}
	// The elements of properties.items are recorded, each in its window.
	itemPaths := []string{"b", "c.d", "1"}
	each := newTrie()
	for i, p := range itemPaths {
		segs, _ := splitPath(p)
		each.add(segs, i)
	}
	arrNode := root.find("properties.items")
	arrNode.each, arrNode.eachN = each, len(itemPaths)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s scanner
		s.items = true
		err := s.scan(b, root, make([]span, len(paths)), 1<<20)
		slots := s.spans
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
		arr := slots[8]
		if arr.kind != '[' {
			return
		}
		a := s.recorded(arr.start)
		elems := gjson.GetBytes(b, "properties.items").Array()
		if a == nil {
			if len(elems) > 0 {
				t.Fatalf("properties.items has %d elements, none recorded in %q", len(elems), b)
			}
			return
		}
		k := 0
		for e := a.first; e >= 0; e = s.elems[e].next {
			r := s.elems[e]
			if k >= len(elems) || string(b[r.start:r.end]) != elems[k].Raw {
				t.Fatalf("element %d recorded as %q in %q", k, b[r.start:r.end], b)
			}
			for i, p := range itemPaths {
				var sp span
				if r.win >= 0 {
					sp = s.spans[int(r.win)+i]
				}
				g := gjson.Get(elems[k].Raw, p)
				if elems[k].IsArray() && p != "1" {
					g = gjson.Result{} // gjson reads "b" of a list as a query
				}
				if g.Exists() != sp.present() || sp.present() && string(b[sp.start:sp.end]) != g.Raw {
					t.Fatalf("element %d, %s: gjson %q, recorded %v in %q", k, p, g.Raw, sp, b)
				}
			}
			k++
		}
		if k != len(elems) {
			t.Fatalf("%d elements recorded, gjson has %d, in %q", k, len(elems), b)
		}
	})
}

// Recording the elements of a huge array of tiny elements stays within the
// budget (elements count, not only windows): past it the array is left to
// be scanned again.
func TestRecordBudget(t *testing.T) {
	root := newTrie()
	root.add([]string{"items"}, 0)
	each := newTrie()
	each.add([]string{"sku"}, 0)
	n := root.find("items")
	n.each, n.eachN = each, 1
	ev := []byte(`{"items":[` + strings.Repeat(`0,`, 400_000) + `{"sku":"a"}]}`)
	var s scanner
	s.items = true
	if err := s.scan(ev, root, make([]span, 1), 64); err != nil {
		t.Fatal(err)
	}
	if got := len(s.spans) + len(s.elems); got > maxWindowSpans+1 {
		t.Errorf("%d spans and elements recorded, budget %d", got, maxWindowSpans)
	}
	if a := s.recorded(s.spans[0].start); a == nil || a.ok {
		t.Errorf("the array past the budget is recorded as complete: %+v", a)
	}
}
