package runtime_test

import (
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// exampleButton compiles the Button blueprint from the embedded catalog.
func exampleButton() *engine.Blueprint {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		log.Fatal(err)
	}
	bp, diags, err := cat.Compile("button@0.1.0")
	if err != nil || bp == nil {
		log.Fatalf("button@0.1.0: %v %v", err, diags)
	}
	return bp
}

// Bind checks the config once: a refused config is a *runtime.ConfigError
// naming every key at fault, and its text never holds the secret api_key.
func ExampleBind() {
	bp := exampleButton()

	_, err := runtime.Bind(bp, "default", map[string]any{
		"application_id": "shop-1", // not an app-... id
		"api_key":        "sk-live-abc",
	})
	var ce *runtime.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Keys)
		fmt.Println(err)
	}

	in, err := runtime.Bind(bp, "retail", map[string]any{
		"application_id": "app-abc123def456",
		"api_key":        "sk-live-abc",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(in.Variant())
	// Output:
	// [application_id]
	// invalid_config: application_id "shop-1" does not match ^app-[0-9a-zA-Z]+$
	// retail
}

// A mapped event with consent and every required field is delivered: the
// result holds the vendor request, built byte for byte. Print only its
// Redacted view: the real Authorization header carries the api_key.
func ExampleIntegration_Evaluate() {
	in, err := runtime.Bind(exampleButton(), "default", map[string]any{
		"application_id": "app-abc123def456",
		"api_key":        "sk-live-abc",
	})
	if err != nil {
		log.Fatal(err)
	}
	res := in.Evaluate([]byte(`{
		"type": "track",
		"event": "Order Completed",
		"user_id": "cust-1001",
		"timestamp": "2026-11-24T10:15:30.123Z",
		"context": {"consent": {"advertising": true}},
		"properties": {
			"order_id": "ord-5001",
			"revenue": 140.0,
			"currency": "usd",
			"products": [{"product_id": "p-1", "name": "Trail Shoe", "price": 70, "quantity": 2}]
		}
	}`))

	fmt.Println(res.Outcome, res.VendorEvent, res.Warnings)
	for _, req := range res.Requests {
		view := in.Redacted(req)
		fmt.Println(view.Method, view.URL)
		names := make([]string, 0, len(view.Headers))
		for name := range view.Headers {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Printf("%s: %s\n", name, view.Headers[name])
		}
		fmt.Println(string(view.Body))
	}
	// Output:
	// deliver purchase [missing_attribution_token]
	// POST https://api.usebutton.com/v1/order
	// Authorization: Basic ***
	// Content-Type: application/json
	// {"order_id":"ord-5001","total":14000,"currency":"USD","purchase_date":"2026-11-24T10:15:30Z","customer":{"id":"cust-1001"},"line_items":[{"identifier":"p-1","quantity":2,"amount":7000,"total":14000,"description":"Trail Shoe"}]}
}

// An event that is not in the variant's event map, or whose consent is
// denied or missing, is skipped with a stable reason code.
func ExampleIntegration_Evaluate_skip() {
	in, err := runtime.Bind(exampleButton(), "default", map[string]any{
		"application_id": "app-abc123def456",
		"api_key":        "sk-live-abc",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, event := range []string{
		// Product Added is mapped in the retail variant only.
		`{"type": "track", "event": "Product Added", "properties": {"sku": "SKU-1"}}`,
		// Consent missing means denied.
		`{"type": "track", "event": "Order Completed", "properties": {"order_id": "ord-1"}}`,
		`{"type": "identify", "user_id": "cust-1001"}`,
	} {
		res := in.Evaluate([]byte(event))
		fmt.Println(res.Outcome, res.Reason)
	}
	// Output:
	// skip event_not_mapped
	// skip consent_denied
	// skip event_not_mapped
}

// A mapped event that breaks a field rule is rejected, naming every field
// at fault by its Button path; an event that is not a JSON object is
// rejected as invalid_event.
func ExampleIntegration_Evaluate_reject() {
	in, err := runtime.Bind(exampleButton(), "default", map[string]any{
		"application_id": "app-abc123def456",
		"api_key":        "sk-live-abc",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, event := range []string{
		// No order_id, and the second product has no price.
		`{"event": "Order Completed", "timestamp": "2026-11-24T10:15:30Z",
		  "context": {"consent": {"advertising": true}},
		  "properties": {"total": 10, "currency": "USD",
		                 "products": [{"sku": "a", "price": 10}, {"sku": "b"}]}}`,
		// Nothing missing, but a quantity of 0 and a currency that is not a code.
		`{"event": "Order Completed", "timestamp": "2026-11-24T10:15:30Z",
		  "context": {"consent": {"advertising": true}},
		  "properties": {"order_id": "ord-1", "total": 10, "currency": "dollars",
		                 "products": [{"sku": "a", "price": 10, "quantity": 0}]}}`,
		`[{"event": "Order Completed"}]`,
	} {
		res := in.Evaluate([]byte(event))
		fmt.Println(res.Outcome, res.Reason, res.Fields)
	}
	// Output:
	// reject missing_required_field [order_id line_items[1].total]
	// reject invalid_field [currency line_items[0].quantity]
	// reject invalid_event []
}

// One event sent to every installed integration: Valid checks it once, and
// EvaluateEach decides for each integration what its EvaluateValid would,
// scanning the event once for all those bound to the same variant of the
// same blueprint (here the two retail tenants). A Valid error is the
// invalid_event reject each integration's Evaluate gives.
func ExampleEvaluateEach() {
	bp := exampleButton()
	var ins []*runtime.Integration
	for _, tenant := range []struct{ variant, app, key string }{
		{"retail", "app-tenant1", "sk-live-one"},
		{"default", "app-tenant2", "sk-live-two"},
		{"retail", "app-tenant3", "sk-live-three"},
	} {
		in, err := runtime.Bind(bp, tenant.variant, map[string]any{"application_id": tenant.app, "api_key": tenant.key})
		if err != nil {
			log.Fatal(err)
		}
		ins = append(ins, in)
	}
	v, err := runtime.Valid([]byte(`{"type": "track", "event": "Product Added",
		"timestamp": "2026-11-24T10:12:05Z", "context": {"consent": {"advertising": true}},
		"properties": {"product_id": "p-1", "price": 25, "currency": "USD", "quantity": 1}}`))
	if err != nil {
		log.Fatal(err) // each integration would reject it: invalid_event, err's message
	}
	var results []runtime.Result // kept across events: no allocation but the requests
	results = runtime.EvaluateEach(results[:0], v, ins)
	for i, res := range results {
		fmt.Println(ins[i].Variant(), res.Outcome, res.Reason, res.Fields)
	}
	// Output:
	// retail deliver  []
	// default skip event_not_mapped []
	// retail deliver  []
}
