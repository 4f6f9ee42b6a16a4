// Package encoding is the one place that decides how a vendor request's
// body is written on the wire, and everything that follows from it: its
// Content-Type, how a secret inside it is masked in redacted views, how it
// is shown to people, and how conformance compares it.
//
// Evaluation writes every body in one pass into a pooled buffer as a JSON
// object (the document): fields in declaration order, absent ones left
// out, with the byte ranges of secret values recorded. An Encoder turns
// that document into the bytes sent. JSON sends it as it is (no copy
// beyond the request's own, no second pass); other encoders transcode it,
// so a new encoding never touches evaluation. The compiler knows the
// encodings by name (Lookup) for the blueprint's `encoding:` key and to
// check a declared Content-Type against the body.
package encoding

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// Encoder writes, shows and reads one body encoding.
type Encoder interface {
	// Name is the encoding as a blueprint names it (json).
	Name() string
	// Title names it for people (docs): "JSON".
	Title() string
	// ContentType is the Content-Type header value the body is sent with
	// ("" when there is no body).
	ContentType() string
	// InQuery reports an encoding written into the URL's query string
	// instead of a body.
	InQuery() bool
	// Encode appends the wire form of doc, the evaluated body (a JSON
	// object), to dst. secrets are the byte ranges of doc that hold secret
	// values; it returns the ranges of the output that hold them (which
	// may be secrets itself: the caller copies what it keeps). shape says
	// what the blueprint declares of the fields (nil: nothing).
	Encode(dst, doc []byte, secrets [][2]int, shape Shape) (out []byte, outSecrets [][2]int, err error)
	// Mask is written in place of a secret value in a redacted body.
	Mask() []byte
	// Canonical returns body with every escape in its canonical form (JSON:
	// no \u escape of a printable character, no \/), so that the
	// redactor, which knows each secret as written and in its canonical
	// encodings, finds a secret that an odd escape would hide (sk\u002d...).
	// The structure is kept; it may return body itself.
	Canonical(body []byte) []byte
	// Pretty renders a body for people (dry runs): it may return body.
	Pretty(body []byte) []byte
	// Decode reads a body as sent into the value conformance compares
	// with a vector's expected body (JSON: maps, slices, json.Number).
	Decode(body []byte) (any, error)
}

// JSON is the default encoding: the document as it is.
var JSON Encoder = jsonEncoder{}

var registry = []Encoder{JSON, Form, Query}

// Lookup returns the encoder of a name.
func Lookup(name string) (Encoder, bool) {
	for _, e := range registry {
		if e.Name() == name {
			return e, true
		}
	}
	return nil, false
}

type jsonEncoder struct{}

func (jsonEncoder) Name() string        { return "json" }
func (jsonEncoder) Title() string       { return "JSON" }
func (jsonEncoder) ContentType() string { return "application/json" }
func (jsonEncoder) Mask() []byte        { return []byte(`"***"`) }
func (jsonEncoder) InQuery() bool       { return false }

func (jsonEncoder) Encode(dst, doc []byte, secrets [][2]int, _ Shape) ([]byte, [][2]int, error) {
	if len(secrets) > 0 && len(dst) > 0 {
		secrets = slices.Clone(secrets)
		for i := range secrets {
			secrets[i][0] += len(dst)
			secrets[i][1] += len(dst)
		}
	}
	return append(dst, doc...), secrets, nil
}

func (jsonEncoder) Canonical(body []byte) []byte { return CanonicalJSON(body) }

func (jsonEncoder) Pretty(body []byte) []byte {
	var b bytes.Buffer
	if json.Indent(&b, body, "", "  ") != nil {
		return body
	}
	return b.Bytes()
}

func (jsonEncoder) Decode(body []byte) (any, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errTrailing
	}
	return v, nil
}

var errTrailing = jsonError("more data after the JSON value")

type jsonError string

func (e jsonError) Error() string { return string(e) }

// ContentTypeOK reports whether a declared Content-Type names the media
// type enc writes (parameters such as charset aside).
func ContentTypeOK(enc Encoder, declared string) bool {
	media, _, _ := strings.Cut(declared, ";")
	want, _, _ := strings.Cut(enc.ContentType(), ";")
	return strings.EqualFold(strings.TrimSpace(media), want)
}

// Redact returns body with each secret range replaced by enc's mask.
func Redact(enc Encoder, body []byte, secrets [][2]int) []byte {
	if len(secrets) == 0 {
		return body
	}
	mask := enc.Mask()
	var b []byte
	last := 0
	for _, rg := range secrets {
		b = append(b, body[last:rg[0]]...)
		b = append(b, mask...)
		last = rg[1]
	}
	return append(b, body[last:]...)
}
