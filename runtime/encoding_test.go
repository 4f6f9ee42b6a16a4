package runtime

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/encoding"
)

// pairsEncoder is a stand-in for a second encoding (form-urlencoded): it
// writes the document's top-level members as k=v pairs. It proves that
// everything past evaluation asks the request's encoder: the body bytes,
// the Content-Type, redaction, the dry-run text and the JSON result.
type pairsEncoder struct{}

func (pairsEncoder) Name() string        { return "pairs" }
func (pairsEncoder) Title() string       { return "pairs" }
func (pairsEncoder) ContentType() string { return "application/x-test-pairs" }
func (pairsEncoder) Mask() []byte        { return []byte("***") }
func (pairsEncoder) Canonical(b []byte) []byte {
	var out []string
	for _, p := range strings.Split(string(b), "&") {
		k, v, _ := strings.Cut(p, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		out = append(out, formEscape(k)+"="+formEscape(v))
	}
	return []byte(strings.Join(out, "&"))
}
func (pairsEncoder) Pretty(b []byte) []byte { return bytes.ReplaceAll(b, []byte("&"), []byte("\n")) }
func (pairsEncoder) Decode(b []byte) (any, error) {
	return url.ParseQuery(string(b))
}
func (pairsEncoder) InQuery() bool { return false }
func (pairsEncoder) Encode(dst, doc []byte, secrets [][2]int, _ encoding.Shape) ([]byte, [][2]int, error) {
	var out [][2]int
	n := 0
	var err error
	gjson.ParseBytes(doc).ForEach(func(k, v gjson.Result) bool {
		if v.IsObject() || v.IsArray() {
			err = fmt.Errorf("%s is not a scalar", k.Str)
			return false
		}
		if n > 0 {
			dst = append(dst, '&')
		}
		n++
		dst = append(dst, formEscape(k.Str)...)
		dst = append(dst, '=')
		start := len(dst)
		dst = append(dst, formEscape(v.String())...)
		for _, s := range secrets {
			if s[0] == v.Index {
				out = append(out, [2]int{start, len(dst)})
			}
		}
		return true
	})
	return dst, out, err
}

// formEscape escapes as HTML forms do (WHATWG): * stays as it is.
func formEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "%2A", "*") }

func TestEncoderSeam(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  api_key: {type: secret, required: true}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      order_id: {from: properties.order_id, type: id, required: true}
      total: {from: properties.total, type: money}
      token: {from: {config: api_key}, secret: true}
      meta: {from: properties.meta}
events:
  Order Completed: {vendor_event: purchase, request: r}
`
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	req0 := compiler.Of(bp).Variants[0].Events[0].Request
	req0.Encoding = pairsEncoder{}
	defer func() { req0.Encoding = encoding.JSON }()
	in, err := Bind(bp, "", map[string]any{"api_key": "sk-seam-secret"})
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"order_id":"o 1","total":"2.50"}}`))
	if res.Outcome != Deliver {
		t.Fatalf("%s %s", res.Outcome, res.Message)
	}
	req := res.Requests[0]
	if got, want := string(req.Body), "order_id=o+1&total=250&token=sk-seam-secret"; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	if ct, _ := req.Header("Content-Type"); ct != "application/x-test-pairs" || req.Encoding() != "pairs" {
		t.Errorf("Content-Type %q, encoding %q", ct, req.Encoding())
	}
	if got := string(in.Redacted(req).Body); got != "order_id=o+1&total=250&token=***" {
		t.Errorf("redacted body %s", got)
	}
	text := res.String()
	if !strings.Contains(text, "order_id=o+1\n  total=250\n  token=***") || strings.Contains(text, "sk-seam") {
		t.Errorf("dry run:\n%s", text)
	}
	js, _ := res.MarshalJSON()
	if !strings.Contains(string(js), `"body":"order_id=o+1\u0026total=250\u0026token=***"`) && !strings.Contains(string(js), `"body":"order_id=o+1&total=250&token=***"`) {
		t.Errorf("json result %s", js)
	}
	// A body the encoder cannot write rejects the event, saying why.
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"order_id":"o 1","meta":{"a":1}}}`))
	if res.Outcome != Reject || res.Reason != ReasonInvalidField || !strings.Contains(res.Message, "cannot be written as pairs: meta is not a scalar") {
		t.Errorf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
}
