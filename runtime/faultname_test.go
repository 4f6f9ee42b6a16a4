package runtime_test

import (
	"slices"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// fault_name renames a field in faults, and everything inside it; "" on
// an object leaves a wrapper out (GraphQL's variables: CJ names
// variables.newOrders[0].orderId newOrders[0].orderId). What is written is
// unchanged.
func TestFaultName(t *testing.T) {
	src := `key: demo
version: 1.0.0
name: Demo
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/e
    body:
      query: {const: "mutation M"}
      variables:
        fault_name: ""
        fields:
          newOrders:
            expr: '[event]'
            type: array
            items:
              orderId: {from: properties.order_id, type: id, required: true}
              lines:
                from: properties.products
                fault_name: items
                items:
                  sku: {from: sku, type: string, required: true}
      skus:
        from: properties.skus
        fault_name: skulist
        internal: true
        items:
          sku: {from: [sku, product_id], type: string, fault_name: ""}
events:
  E: {vendor_event: e, request: r}
`
	in := bindInline(t, src)
	eval := func(props string) runtime.Result {
		return in.Evaluate([]byte(`{"type":"track","event":"E","properties":` + props + `}`))
	}
	res := eval(`{"products":[{"sku":"a"},{}]}`)
	if want := []string{"newOrders[0].items[1].sku", "newOrders[0].orderId"}; res.Reason != runtime.ReasonMissingRequiredField || !slices.Equal(sorted(res.Fields), want) {
		t.Errorf("got %s %s %v, want missing %v", res.Outcome, res.Reason, res.Fields, want)
	}
	res = eval(`{"order_id":"o-1","products":"x"}`)
	if want := []string{"newOrders[0].items"}; res.Reason != runtime.ReasonInvalidField || !slices.Equal(res.Fields, want) {
		t.Errorf("got %s %s %v, want invalid %v", res.Outcome, res.Reason, res.Fields, want)
	}
	// An item's one field named by the item: a vendor's list of single
	// values (skulist[1]), for a bad value and for an item not an object.
	res = eval(`{"order_id":"o-1","skus":[{"sku":"a"},{"sku":{"x":1}},7]}`)
	if want := []string{"skulist[1]", "skulist[2]"}; res.Reason != runtime.ReasonInvalidField || !slices.Equal(sorted(res.Fields), want) {
		t.Errorf("got %s %s %v, want invalid %v", res.Outcome, res.Reason, res.Fields, want)
	}
	res = eval(`{"order_id":"o-1","products":[{"sku":"a"}]}`)
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	if got, want := string(res.Requests[0].Body), `{"query":"mutation M","variables":{"newOrders":[{"orderId":"o-1","lines":[{"sku":"a"}]}]}}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
