package engine_test

import (
	"fmt"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
)

// Compile reports every problem of a blueprint at once, each with its
// position and a stable code, and compiles nothing when any is an error.
func ExampleCompile() {
	src := []byte(`key: demo
version: 1.0.0
name: Demo
category: analytics
status: alpha
hosts: [api.example.com]
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      order_id: {from: properties.order_id, type: id, required: true}
      total: {expr: 'fields.order_id +'}
events:
  Order Completed: {vendor_event: purchase, request: trak}
`)
	bp, diags := engine.Compile("demo.yaml", src)
	fmt.Println(bp == nil)
	for _, d := range diags {
		fmt.Println(d)
	}
	// Output:
	// true
	// demo.yaml:8:3: warning unused_request: request track is declared but no event of any variant uses it
	// demo.yaml:13:38: error expr_syntax: unexpected end of the expression
	// demo.yaml:15:54: error unknown_request: unknown request trak; did you mean "track"?
}

// A catalog compiles each of its blueprints once; KEY alone is the newest
// release.
func ExampleCatalog_Compile() {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		panic(err)
	}
	bp, _, err := cat.Compile("button")
	if err != nil {
		panic(err)
	}
	fmt.Println(bp.Ref(), bp.VariantKeys())
	_, _, err = cat.Compile("buton")
	fmt.Println(err)
	// Output:
	// button@0.1.0 [default retail]
	// no blueprint buton in the catalog; did you mean "button"?
}

// A compiled blueprint is opaque; its accessors give what a program
// embedding the engine shows or checks: metadata, config fields, variants
// and their event maps. Variant keys match case-insensitively.
func ExampleBlueprint() {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		panic(err)
	}
	bp, _, err := cat.Compile("Button")
	if err != nil {
		panic(err)
	}
	fmt.Println(bp.Ref(), bp.Name(), bp.Category(), bp.Status(), bp.ConsentCategory())
	for _, f := range bp.ConfigFields() {
		fmt.Printf("%s %s required=%t secret=%t\n", f.Key, f.Type, f.Required, f.Secret)
	}
	v, ok := bp.Variant("Retail")
	fmt.Println(ok, v.Key, v.Name)
	for _, m := range v.Events {
		fmt.Printf("%s -> %s\n", m.Event, m.VendorEvent)
	}
	// Output:
	// button@0.1.0 Button attribution alpha advertising
	// application_id string required=true secret=false
	// api_key secret required=true secret=true
	// true retail Retail
	// Order Completed -> purchase
	// Product Added -> add_to_cart
}
