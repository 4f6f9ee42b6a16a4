package runtime_test

import (
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Form and query encodings: indexed flat keys from 1 (Impact's ItemSku1),
// lists of single values joined with a separator, positions kept for
// absent values (Rakuten's skulist), nested objects as name[key], and the
// faults named as the vendor names the keys.
func TestPairsEncodings(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
config:
  token: {type: secret, required: true}
hosts: [api.example.com]
values:
  currency: {from: properties.currency, type: currency}
requests:
  form:
    method: POST
    url: https://api.example.com/conv
    encoding: form
    auth: {type: basic, username: acct, password: "{config.token}"}
    body:
      OrderId: {from: properties.order_id, type: id, required: true}
      Item:
        from: properties.products
        type: array
        flatten: indexed
        items:
          Sku: {from: [sku, product_id], type: string, required: true}
          Price: {from: price, type: decimal, currency: currency, required: true}
          Quantity: {from: quantity, type: integer, min: 1, default: 1}
      meta:
        fields:
          a: {from: properties.a, type: string}
      tags: {from: properties.tags}
  ep:
    method: GET
    url: https://api.example.com/ep?mid=42
    encoding: query
    body:
      ord: {from: properties.order_id, type: id, required: true}
      skulist: {from: properties.products, each: {from: sku, type: string}, join: "|"}
      amtlist:
        from: properties.products
        each: {expr: 'decimal_mul(item.price, item.quantity ?? 1)', type: money, currency: currency}
        join: "|"
      namelist: {from: properties.products, each: {expr: 'item.name == nil ? nil : replace(item.name, "|", " ")'}, join: "|"}
events:
  Order Completed: {vendor_event: conv, request: form}
  Order Sent: {vendor_event: ep, request: ep}
`
	in, err := runtime.Bind(compileInline(t, src), "", map[string]any{"token": "sk-pairs-1"})
	if err != nil {
		t.Fatal(err)
	}
	ev := `{"type":"track","event":"Order Completed","properties":{"order_id":"o 1","currency":"usd","a":"x&y","tags":["t1","t2"],
		"products":[{"sku":"S-1","price":"12.75","quantity":2,"name":"Tee | Red"},{"product_id":"P-2","price":3}]}}`
	res := in.Evaluate([]byte(ev))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	req := res.Requests[0]
	want := "OrderId=o+1&ItemSku1=S-1&ItemPrice1=12.75&ItemQuantity1=2&ItemSku2=P-2&ItemPrice2=3.00&ItemQuantity2=1&meta%5Ba%5D=x%26y&tags=t1&tags=t2"
	if string(req.Body) != want {
		t.Errorf("form body\n%s\nwant\n%s", req.Body, want)
	}
	if ct, _ := req.Header("Content-Type"); ct != "application/x-www-form-urlencoded" || req.Encoding() != "form" {
		t.Errorf("Content-Type %q, encoding %s", ct, req.Encoding())
	}
	if text := res.String(); !strings.Contains(text, "OrderId=o+1\n") || strings.Contains(text, "sk-pairs-1") {
		t.Errorf("dry run:\n%s", text)
	}

	// Faults name the vendor's keys: ItemPrice2, ItemSku1, Item3.
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"order_id":"o","products":[{"price":1},{"sku":"s"},"x"]}}`))
	if res.Outcome != runtime.Reject || strings.Join(res.Fields, ",") != "ItemSku1,ItemPrice2" {
		t.Errorf("missing: %s %s %v: %s", res.Outcome, res.Reason, res.Fields, res.Message)
	}
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"order_id":"o","products":[{"sku":"s","price":1,"quantity":0},"x"]}}`))
	if res.Outcome != runtime.Reject || strings.Join(res.Fields, ",") != "ItemQuantity1,Item2" {
		t.Errorf("invalid: %s %s %v: %s", res.Outcome, res.Reason, res.Fields, res.Message)
	}

	// Query: the pairs follow the URL's own; joined lists keep positions.
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Sent","properties":{"order_id":"o-1","currency":"USD",
		"products":[{"sku":"S-1","price":"0.125","quantity":3,"name":"Tee | Red"},{"price":2,"name":"Cap"}]}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	req = res.Requests[0]
	if want := "https://api.example.com/ep?mid=42&ord=o-1&skulist=S-1%7C&amtlist=38%7C200&namelist=Tee+++Red%7CCap"; req.URL != want || len(req.Body) != 0 {
		t.Errorf("query URL\n%s\nwant\n%s\nbody %q", req.URL, want, req.Body)
	}
	if _, ok := req.Header("Content-Type"); ok {
		t.Error("a query request has a Content-Type")
	}
	// A list of nothing but absent values is left out; faults name list
	// positions.
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Sent","properties":{"order_id":"o-1","products":[{"price":"abc"},{}]}}`))
	if res.Outcome != runtime.Reject || strings.Join(res.Fields, ",") != "amtlist[0]" {
		t.Errorf("list faults: %s %s %v: %s", res.Outcome, res.Reason, res.Fields, res.Message)
	}
	res = in.Evaluate([]byte(`{"type":"track","event":"Order Sent","properties":{"order_id":"o-1","products":[{},{}]}}`))
	if res.Outcome != runtime.Deliver || res.Requests[0].URL != "https://api.example.com/ep?mid=42&ord=o-1" {
		t.Errorf("empty lists: %s %s: %s", res.Outcome, res.Message, res.Requests[0].URL)
	}
}

// compileInline compiles a blueprint given as text.
func compileInline(t *testing.T, src string) *engine.Blueprint {
	t.Helper()
	bp, ds := engine.Compile("demo.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	return bp
}
