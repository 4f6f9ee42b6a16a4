package encoding

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"unicode/utf8"
)

// CanonicalJSON rewrites JSON with every string in its plain escaping
// (no \u escapes for printable characters, no \/), keeping key order and
// number text. Input that is not JSON is returned as is.
func CanonicalJSON(b []byte) []byte {
	if !bytes.ContainsRune(b, '\\') {
		return b
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out []byte
	// Per open container: whether the next token is an object key, and
	// whether a comma is due.
	type frame struct{ object, needComma, atKey bool }
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out
		}
		if err != nil {
			return b
		}
		top := len(stack) - 1
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			out = append(out, byte(d))
			stack = stack[:top]
			if top > 0 {
				stack[top-1].needComma = true
			}
			continue
		}
		if top >= 0 {
			f := &stack[top]
			if f.needComma && (!f.object || f.atKey) {
				out = append(out, ',')
				f.needComma = false
			}
		}
		switch t := tok.(type) {
		case json.Delim:
			out = append(out, byte(t))
			if top >= 0 && stack[top].object {
				stack[top].atKey = true
			}
			stack = append(stack, frame{object: t == '{', atKey: t == '{'})
			continue
		case string:
			out = AppendJSONString(out, []byte(t))
		case json.Number:
			out = append(out, t...)
		case bool:
			out = strconv.AppendBool(out, t)
		case nil:
			out = append(out, "null"...)
		}
		if top < 0 {
			continue
		}
		f := &stack[top]
		if f.object && f.atKey {
			out = append(out, ':')
			f.atKey = false
		} else {
			f.needComma = true
			if f.object {
				f.atKey = true
			}
		}
	}
}

// AppendJSONString appends s as a JSON string, escaping what JSON requires
// (and U+2028, U+2029); invalid UTF-8 becomes U+FFFD.
func AppendJSONString(b []byte, s []byte) []byte {
	const hexd = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexd[c>>4], hexd[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexd[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
