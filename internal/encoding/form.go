package encoding

import (
	"bytes"
	"fmt"
	"net/url"
	"strconv"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// Shape tells an encoder what the blueprint declares of a body's fields,
// for encodings that flatten a document into pairs.
type Shape interface {
	// Member returns the shape of the named member, or nil.
	Member(name string) Shape
	// Indexed reports a list written as indexed flat keys: the list's
	// name, the item's key and the item's number from 1 (Item + Sku + 1:
	// ItemSku1), or, for a list of single values, the name and number.
	Indexed() bool
}

// Form is application/x-www-form-urlencoded: the document's members as
// name=value pairs, in order, escaped as Go's url.QueryEscape does.
var Form Encoder = pairsEncoder{name: "form", title: "form-urlencoded", ct: "application/x-www-form-urlencoded"}

// Query writes the same pairs into the URL's query string (after the
// URL's own parameters); the request has no body.
var Query Encoder = pairsEncoder{name: "query", title: "query string", query: true}

// pairsEncoder flattens a document into name=value pairs:
//
//   - text as it is, a number as written, true and false;
//   - a list of single values as the name repeated once per value, or,
//     Indexed, as name1, name2, ...;
//   - an object as name[key] (nested: name[key][key2]);
//   - a list of objects as name[0][key], ..., or, Indexed, as
//     name+key+number from 1 (ItemSku1, ItemPrice1, ItemSku2, ...).
//
// An empty value in a list (null) is left out.
type pairsEncoder struct {
	name, title, ct string
	query           bool
}

func (e pairsEncoder) Name() string        { return e.name }
func (e pairsEncoder) Title() string       { return e.title }
func (e pairsEncoder) ContentType() string { return e.ct }
func (e pairsEncoder) InQuery() bool       { return e.query }
func (pairsEncoder) Mask() []byte          { return []byte("***") }

// Canonical: every byte of the body is this encoder's own, escaped once
// as url.QueryEscape does, the form the redactor knows.
func (pairsEncoder) Canonical(body []byte) []byte { return body }

func (pairsEncoder) Pretty(body []byte) []byte {
	return bytes.ReplaceAll(body, []byte("&"), []byte("\n"))
}

// Decode reads the pairs (url.ParseQuery): names to their values, in
// order. Conformance compares them as a multiset.
func (pairsEncoder) Decode(body []byte) (any, error) {
	return url.ParseQuery(string(body))
}

func (pairsEncoder) Encode(dst, doc []byte, secrets [][2]int, shape Shape) ([]byte, [][2]int, error) {
	w := pairWriter{dst: dst, secrets: secrets}
	root := gjson.ParseBytes(doc)
	if !root.IsObject() {
		return dst, nil, fmt.Errorf("the body is not an object")
	}
	w.object(root, "", shape)
	return w.dst, w.out, w.err
}

type pairWriter struct {
	dst     []byte
	secrets [][2]int
	out     [][2]int
	n       int
	err     error
}

func member(s Shape, name string) Shape {
	if s == nil {
		return nil
	}
	return s.Member(name)
}

func (w *pairWriter) object(v gjson.Result, prefix string, shape Shape) {
	v.ForEach(func(k, x gjson.Result) bool {
		key := k.Str
		if prefix != "" {
			key = prefix + "[" + k.Str + "]"
		}
		w.value(key, x, member(shape, k.Str))
		return w.err == nil
	})
}

func (w *pairWriter) value(key string, v gjson.Result, shape Shape) {
	switch {
	case v.IsObject():
		w.object(v, key, shape)
	case v.IsArray():
		indexed := shape != nil && shape.Indexed()
		i := 0
		v.ForEach(func(_, el gjson.Result) bool {
			i++
			switch {
			case indexed && el.IsObject():
				n := strconv.Itoa(i)
				el.ForEach(func(k, x gjson.Result) bool {
					if x.IsObject() || x.IsArray() {
						// The item's key is event data: quoted and cut, and
						// the fault is the list's, which the blueprint names.
						w.err = &FieldError{Field: key, Msg: fmt.Sprintf("item %d's %s holds a list or an object, which indexed keys cannot write", i, quoteCut(k.Str, 40))}
						return false
					}
					w.pair(key+k.Str+n, x)
					return true
				})
			case indexed:
				w.pair(key+strconv.Itoa(i), el)
			case el.IsObject() || el.IsArray():
				w.value(key+"["+strconv.Itoa(i-1)+"]", el, shape)
			default:
				w.pair(key, el)
			}
			return w.err == nil
		})
	default:
		w.pair(key, v)
	}
}

func (w *pairWriter) pair(key string, v gjson.Result) {
	if v.Type == gjson.Null {
		return
	}
	text := v.Raw
	if v.Type == gjson.String {
		text = v.Str
	}
	if w.n > 0 {
		w.dst = append(w.dst, '&')
	}
	w.n++
	w.dst = append(w.dst, url.QueryEscape(key)...)
	w.dst = append(w.dst, '=')
	start := len(w.dst)
	w.dst = append(w.dst, url.QueryEscape(text)...)
	for _, s := range w.secrets {
		if s[0] <= v.Index && v.Index < s[1] {
			w.out = append(w.out, [2]int{start, len(w.dst)})
			break
		}
	}
}

// FieldError is a value of the document that an encoding cannot write:
// Field names the body field at fault (as the blueprint does), Msg says
// why, with any event data in it quoted and cut short.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// quoteCut is s Go-quoted (control characters escaped), cut to at most n
// bytes of s with "..." when longer.
func quoteCut(s string, n int) string {
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "..."
	}
	return strconv.Quote(s)
}
