package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

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
	for _, s := range []string{
		`{"a":1,"a":2}`, `{"a":{"x":1,"x":2},"b":1}`, `{"a":1,"\u0061":2}`, `[{"k":1},{"k":1}]`, `{"a":{"k":1},"b":{"k":1}}`,
		`{"\ud800":1,"\udc00":2}`, `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"ka":10,"kb":11,"kc":12,"kd":13,"ke":14,"kf":15,"kg":16,"k3":17}`,
		`{"abcdefgh-1":1,"abcdefgh-2":2,"abcd-xyz-1":3,"abcd---z-1":4}`, `{"a":1,"a":2`,
		`{"x":"q\"}\\","y":{"z":["]",{"a":1,"a":2}]},"a":{"b":{"c":"v","d":[1,{"e":"\u0022"}]}},"b":[0,{"x":1},{"x":1}]}`,
		`{"properties":{"items":[{"b":1,"z":{"q":"\\"},"b":2},{"x":[[1],{"y":"]"}],"c":{"d":[1,2],"e":-1e5}}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s scanner
		s.items = true
		err := s.scan(b, root, make([]span, len(paths)), 1<<20)
		slots := s.spans
		if (err == nil) != json.Valid(b) {
			t.Fatalf("scanner err=%v, encoding/json valid=%v for %q", err, json.Valid(b), b)
		}
		// Checking duplicate keys: with the root read whole, a duplicate
		// is found exactly when encoding/json reads a key twice in one
		// object; otherwise, exactly when a key of the trie is twice in
		// its object (refTrieDuplicate). The main scan runs on UTF-8 only,
		// as Evaluate checks it first. The values recorded are the same.
		for _, whole := range []bool{true, false} {
			root.whole = whole
			var d scanner
			d.items, d.dups = true, true
			derr := d.scan(b, root, make([]span, len(paths)), 1<<20)
			found := errors.Is(derr, errDuplicate) || d.dupPath != ""
			var want bool
			if err == nil && utf8.Valid(b) {
				want = refTrieDuplicate(b, root)
				if whole {
					want = refHasDuplicate(b)
				}
			}
			switch {
			case err != nil && derr == nil:
				t.Fatalf("checking duplicates, %q is accepted (err %v without)", b, err)
			case err == nil && utf8.Valid(b) && found != want:
				t.Fatalf("whole=%v: duplicate found=%v (%v %q), want %v, in %q", whole, found, derr, d.dupPath, want, b)
			case errors.Is(derr, errDuplicate) && len(d.stack) != 1:
				// (The stack the scan stopped in, not the path: a
				// top-level key may itself hold a dot.)
				t.Fatalf("a duplicate below the top level (%q, %d levels deep) stopped the scan of %q", d.dupPath, len(d.stack), b)
			case derr == nil && !slices.Equal(d.spans, s.spans):
				t.Fatalf("recorded %v checking duplicates, %v without, in %q", d.spans, s.spans, b)
			}
			if err != nil || !utf8.Valid(b) {
				continue
			}
			// Valid bytes scanned as Valid-checked (values nobody reads
			// skipped): the same error, duplicate, values and elements.
			var v scanner
			v.items, v.dups, v.valid = true, true, true
			verr := v.scan(b, root, make([]span, len(paths)), 1<<20)
			if verr != derr || v.dupPath != d.dupPath || !slices.Equal(v.spans, d.spans) || !slices.Equal(v.elems, d.elems) || !slices.Equal(v.arrs, d.arrs) {
				t.Fatalf("whole=%v: skipping what nobody reads, %v %q %v %v; reading all, %v %q %v %v; in %q", whole, verr, v.dupPath, v.spans, v.elems, derr, d.dupPath, d.spans, d.elems, b)
			}
		}
		root.whole = false
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

// refHasDuplicate is the reference for duplicate keys: whether
// encoding/json, reading valid JSON token by token, meets a key twice in
// one object (keys compared unescaped).
func refHasDuplicate(b []byte) bool {
	type open struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*open
	d := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		var top *open
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if delim, ok := tok.(json.Delim); ok && (delim == '}' || delim == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.keys != nil {
			if top.wantKey {
				k := tok.(string)
				if top.keys[k] {
					return true
				}
				top.keys[k], top.wantKey = true, false
				continue
			}
			top.wantKey = true // a value: the next token is a key
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &open{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			stack = append(stack, &open{})
		}
	}
}

// refTrieDuplicate is the reference for duplicate keys of the trie: whether
// a key the trie names (from root, through each and index children as
// the scanner follows them) is twice in its object, as encoding/json
// reads it.
func refTrieDuplicate(b []byte, root *trie) bool {
	d := json.NewDecoder(bytes.NewReader(b))
	var walk func(t *trie) bool
	walk = func(t *trie) (dup bool) {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for d.More() {
				kt, _ := d.Token()
				k := kt.(string)
				var c *trie
				if t != nil && len(t.keys) > 0 {
					c = t.child([]byte(k))
				}
				if c != nil {
					dup = dup || seen[k]
					seen[k] = true
				}
				dup = walk(c) || dup
			}
			d.Token()
		case json.Delim('['):
			for n := 0; d.More(); n++ {
				var c *trie
				switch {
				case t == nil:
				case t.each != nil:
					c = t.each
				case t.index != nil:
					c = t.index[n]
				}
				dup = walk(c) || dup
			}
			d.Token()
		}
		return dup
	}
	return walk(root)
}

// The duplicate check names where the key is, and checks wide objects
// (a hash table) as well as small ones.
func TestDuplicatePaths(t *testing.T) {
	wide := func(dup string) string {
		var b strings.Builder
		b.WriteString(`{`)
		for i := range 1000 {
			fmt.Fprintf(&b, `"key-%04d":%d,`, i, i)
		}
		b.WriteString(dup + `"end":1}`)
		return b.String()
	}
	for _, tt := range []struct{ doc, path string }{
		{`{"a":1,"a":2}`, "a"},
		{`{"a":1,"\u0061":2}`, "a"},
		{`{"a":{"b":[0,{"c":{"d":1,"e":1,"d":2}}]}}`, "a.b.1.c.d"},
		{`{"x":[[],[{"k":1}],[{"k":1},{"k":1,"k":2}]]}`, "x.2.1.k"},
		{`{"a":1,"a":{"x":1,"x":2}}`, "a"},
		{`{"a":{"x":1,"x":2},"a":1}`, "a"},
		{`{"b":{"x":1,"x":2},"c":{"y":1,"y":1}}`, "b.x"},
		{`{"w":` + wide(`"key-0999":0,`) + `}`, "w.key-0999"},
		{`{"w":` + wide("") + `,"v":` + wide(`"end":0,`) + `}`, "v.end"},
		{`{"` + strings.Repeat("k", 100) + `":{"a":1,"a":1}}`, strings.Repeat("k", 40) + "....a"},
		{`{"w":` + wide("") + `}`, ""},
		{`{"abcdefgh-1":1,"abcdefgh-2":2,"abcd-xyz-1":3,"abcd---z-1":4,"b":{"a":1},"c":{"a":1}}`, ""},
	} {
		var s scanner
		s.dups = true
		root := newTrie()
		root.whole = true // every key checked
		err := s.scan([]byte(tt.doc), root, nil, 64)
		// One in the top-level object stops the scan; one below is
		// recorded.
		top := tt.path != "" && !strings.Contains(tt.path, ".")
		if errors.Is(err, errDuplicate) != top || err != nil && !top || s.dupPath != tt.path {
			t.Errorf("%.80s: %v at %q, want the duplicate at %q", tt.doc, err, s.dupPath, tt.path)
		}
	}
}
