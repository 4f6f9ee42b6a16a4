package conformance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/engine"
)

// Form bodies and query strings are compared as multisets of pairs,
// body_text byte for byte; each difference is named.
func TestPairsComparison(t *testing.T) {
	dir := t.TempDir()
	bp := `key: pairs
version: 1.0.0
name: Pairs
category: other
status: alpha
hosts: [api.example.com]
requests:
  form:
    method: POST
    url: https://api.example.com/f
    encoding: form
    body:
      a: {from: properties.a}
      n: {from: properties.n, type: decimal, scale: 2}
      tags: {from: properties.tags}
  get:
    method: GET
    url: https://api.example.com/q?fixed=1
    encoding: query
    body:
      b: {from: properties.b}
events:
  F: {vendor_event: f, request: form}
  G: {vendor_event: g, request: get}
`
	vectors := `blueprint_file: ./pairs.yaml
cases:
  - name: form pairs in any order, numbers as numbers
    event: {event: F, properties: {a: "x y", n: 12.5, tags: [t2, t1]}}
    expect:
      outcome: deliver
      requests:
        - {method: POST, url: "https://api.example.com/f", body: {tags: [t1, t2], n: 12.5, a: "x y"}}
  - name: form exact text
    event: {event: F, properties: {a: "x y", n: 12.5}}
    expect:
      outcome: deliver
      requests:
        - {method: POST, url: "https://api.example.com/f", body_text: "a=x+y&n=12.50"}
  - name: query pairs
    event: {event: G, properties: {b: "1|2"}}
    expect:
      outcome: deliver
      requests:
        - {method: GET, url: "https://api.example.com/q", query: {b: "1|2", fixed: 1}}
  - name: differences are named
    event: {event: F, properties: {a: "x", n: 1, tags: [t1]}}
    expect:
      outcome: deliver
      requests:
        - {method: POST, url: "https://api.example.com/f", body: {a: "y", n: "1", c: "z"}}
  - name: query differences are named
    event: {event: G, properties: {b: "2"}}
    expect:
      outcome: deliver
      requests:
        - {method: GET, url: "https://api.example.com/q?fixed=1", query: {b: "3"}}
`
	if err := os.WriteFile(filepath.Join(dir, "pairs.yaml"), []byte(bp), 0o600); err != nil {
		t.Fatal(err)
	}
	vf := filepath.Join(dir, "pairs.vectors.yaml")
	if err := os.WriteFile(vf, []byte(vectors), 0o600); err != nil {
		t.Fatal(err)
	}
	f, ds := conformance.LoadFile(vf)
	if f == nil {
		t.Fatal(ds)
	}
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	r := &conformance.Runner{Catalog: cat}
	want := map[string]string{
		"form pairs in any order, numbers as numbers": "",
		"form exact text":             "",
		"query pairs":                 "",
		"differences are named":       `requests[0].body.a: expected "y", got "x"; requests[0].body.c: expected "z", got nothing; requests[0].body.n: expected "1", got "1.00"; requests[0].body.tags: expected nothing, got "t1"`,
		"query differences are named": `requests[0].url: expected https://api.example.com/q?fixed=1 (without its query), got https://api.example.com/q; requests[0].query.b: expected "3", got "2"; requests[0].query.fixed: expected nothing, got "1"`,
	}
	for _, res := range r.Run(f, nil) {
		if got := strings.Join(res.Problems, "; "); got != want[res.Case.Name] {
			t.Errorf("%s:\n got %s\nwant %s", res.Case.Name, got, want[res.Case.Name])
		}
	}
}
