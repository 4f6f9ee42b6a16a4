package runtime_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// Array items are normally resolved by the main scan, each element in its
// own window of slots; past the per-event budget (or for items read in
// several ways) they are scanned again element by element. Both routes
// must give the same result, whatever the items hold.
func TestItemRoutesAgree(t *testing.T) {
	var events [][]byte
	for _, name := range []string{"button_purchase_3_items", "button_purchase_items_10", "button_purchase_items_100", "reject_missing_order_id"} {
		ev, err := os.ReadFile(filepath.Join("testdata", "bench", name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	for _, props := range []string{
		robustGoodOrder,
		`"order_id":"o","total":5,"currency":"JPY","products":[{"sku":"a","price":"5","quantity":"2"},3,{},[1,2],{"product_id":"p","price":-1},{"sku":"\u0062","name":"x\"y","category":["a"]}]`,
		`"order_id":"o","total":5,"currency":"USD","products":[{"sku":"a","price":1}],"products":[{"sku":"b","price":2}]`,
		`"order_id":"o","total":5,"currency":"USD","products":[{"sku":"a","sku":"b","price":1,"price":2,"quantity":0}]`,
		`"order_id":"o","total":5,"currency":"USD","products":[{"sku":"a","brand":"b","variant":"v"},{"sku":"c","brand":{"x":1}}]`,
		`"order_id":"o","total":5,"currency":"USD","products":[]`,
	} {
		events = append(events, robustOrder(props))
	}
	in := robustBind(t, "retail", "sk-test-key")
	for _, ev := range events {
		want := in.Evaluate(ev)
		for _, budget := range []int{0, 1, 20, 60} {
			restore := runtime.SetWindowBudget(budget)
			got := in.Evaluate(ev)
			restore()
			if !sameResult(got, want) {
				t.Errorf("budget %d, event %.80s...:\n got %s\nwant %s", budget, ev, got, want)
			}
		}
	}
}

func sameResult(a, b runtime.Result) bool {
	if a.Outcome != b.Outcome || a.Reason != b.Reason || a.Message != b.Message || !reflect.DeepEqual(a.Fields, b.Fields) || !reflect.DeepEqual(a.Warnings, b.Warnings) || len(a.Requests) != len(b.Requests) {
		return false
	}
	for i := range a.Requests {
		if a.Requests[i].URL != b.Requests[i].URL || string(a.Requests[i].Body) != string(b.Requests[i].Body) {
			return false
		}
	}
	return !strings.Contains(a.Message, "internal error")
}
