package docgen_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/docgen"
)

// The field table names each field as written in the request (indexed
// flat keys as ItemSku{n}, list entries as [i]) and says what the
// language's field keys do: when, internal, join, fault_name, and min/max
// on times and lists.
func TestMarkdownFieldRules(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  form:
    method: POST
    url: https://api.example.com/f
    encoding: form
    body:
      At: {from: timestamp, type: time, min: 0}
      Amount: {from: properties.total, type: decimal, scale: 2, when: 'event.properties.products == nil'}
      Item:
        from: properties.products
        flatten: indexed
        items:
          Sku: {from: sku, type: string}
  json:
    method: POST
    url: https://api.example.com/j
    body:
      variables:
        fault_name: ""
        fields:
          lines:
            from: properties.products
            type: array
            max: 100
            items:
              sku: {from: sku, type: string}
      skus:
        internal: true
        fault_name: skulist
        from: properties.products
        type: array
        each: {from: sku, type: string}
      skulist: {expr: 'fields.skus', join: "|"}
events:
  A: {vendor_event: a, request: form}
  B: {vendor_event: b, request: json}
`
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	md, err := docgen.Markdown(bp, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `At` | `timestamp` | RFC 3339, written in UTC as `2006-01-02T15:04:05Z` (fraction dropped), not before 1970-01-01T00:00:00Z |",
		"sent only when `event.properties.products == nil`",
		"| `Item` | `properties.products` | a non-empty list, mapped item by item, written as indexed flat keys from 1 |",
		"| `ItemSku{n}` | `sku` |",
		"| `variables` | its fields | object; left out of its fields' names in faults |",
		"| `variables.lines` | `properties.products` | a non-empty list, mapped item by item, at most 100 elements |",
		"| `variables.lines[i].sku` | `sku` |",
		"| `skus` | `properties.products` | not sent: a helper the fields beside it read; a non-empty list, one entry per element (null when absent); faults name it `skulist` |",
		"| `skus[i]` | `sku` |",
		"written as one text, joined with `\\|`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("docs lack %s", want)
		}
	}
	if strings.Contains(md, "\x01") {
		t.Error("docs hold the compiler's \\x01 marker")
	}
}
