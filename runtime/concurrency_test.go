package runtime_test

import (
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// robustSnapshot is everything a Result says, as plain comparable data:
// the request bodies and headers are copied byte for byte.
type robustSnapshot struct {
	Outcome     runtime.Outcome
	Reason      string
	Fields      []string
	Warnings    []string
	Message     string
	Event       string
	VendorEvent string
	Requests    []robustRequest
}

type robustRequest struct {
	Method  string
	URL     string
	Headers []runtime.Header
	Body    string
}

func robustSnap(res runtime.Result) robustSnapshot {
	s := robustSnapshot{
		Outcome: res.Outcome, Reason: res.Reason, Message: res.Message,
		Event: res.Event, VendorEvent: res.VendorEvent,
		Fields: append([]string{}, res.Fields...), Warnings: append([]string{}, res.Warnings...),
	}
	for _, q := range res.Requests {
		s.Requests = append(s.Requests, robustRequest{
			Method: q.Method, URL: q.URL,
			Headers: append([]runtime.Header{}, q.Headers...),
			Body:    string(q.Body),
		})
	}
	return s
}

// TestConcurrentEvaluate shares one *Integration between 8 goroutines, each
// evaluating 10 000 events (1 000 with -short) from a mix of six, and checks
// every result against the same event evaluated alone beforehand. Run it
// with -race: the pooled evaluation state must never leak between events.
func TestConcurrentEvaluate(t *testing.T) {
	in := robustBind(t, "retail", robustAPIKey)
	const consent = `"context":{"consent":{"advertising":true},"click_ids":{"btn_ref":"srctok-1"},"ip":"203.0.113.9","user_agent":"UA/1.0"}`
	events := []struct {
		name    string
		event   []byte
		outcome runtime.Outcome
		reason  string
	}{
		{"deliver purchase", []byte(`{"type":"track","event":"Order Completed","user_id":"cust-1","messageId":"m-1","timestamp":"2026-11-24T10:15:30.123Z","traits":{"email":"Jane.Doe@Example.com"},` + consent + `,"properties":{"order_id":"ord-1","revenue":"140.005","currency":"usd","products":[{"product_id":"p-1","sku":"SKU-1","name":"Shoe","price":99.99,"quantity":1,"category":"Shoes","brand":"Acme"},{"sku":"SKU-2","price":"15","quantity":"2","variant":"red"}]}}`),
			runtime.Deliver, ""},
		{"deliver add_to_cart", []byte(`{"type":"track","event":"Product Added","userId":42,"message_id":"m-2","timestamp":"2026-02-25T16:30:00+02:00",` + consent + `,"properties":{"product_id":"p-9","name":"Hat","price":"1.005","currency":"JPY","quantity":3,"url":"https://shop.example.com/p/9"}}`),
			runtime.Deliver, ""},
		{"skip consent", []byte(`{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":false}},"properties":{"order_id":"ord-2","total":1,"currency":"USD","products":[{"sku":"s","price":1}]}}`),
			runtime.Skip, runtime.ReasonConsentDenied},
		{"skip unmapped", []byte(`{"type":"track","event":"Checkout Started",` + consent + `,"properties":{"order_id":"ord-3"}}`),
			runtime.Skip, runtime.ReasonEventNotMapped},
		{"reject missing order_id", []byte(`{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z",` + consent + `,"properties":{"total":10,"currency":"EUR","products":[{"sku":"s","price":10}]}}`),
			runtime.Reject, runtime.ReasonMissingRequiredField},
		{"reject invalid quantity", []byte(`{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z",` + consent + `,"properties":{"order_id":"ord-4","total":10,"currency":"EUR","products":[{"sku":"s","price":10,"quantity":2},{"sku":"t","price":1,"quantity":0}]}}`),
			runtime.Reject, runtime.ReasonInvalidField},
	}
	want := make([]robustSnapshot, len(events))
	for i, e := range events {
		res := in.Evaluate(e.event)
		if res.Outcome != e.outcome || res.Reason != e.reason {
			t.Fatalf("%s alone: got %s %s (%s), want %s %s", e.name, res.Outcome, res.Reason, res.Message, e.outcome, e.reason)
		}
		want[i] = robustSnap(res)
	}
	if f := want[4].Fields; len(f) != 1 || f[0] != "order_id" {
		t.Fatalf("missing order_id names %q", f)
	}
	if f := want[5].Fields; len(f) != 1 || f[0] != "line_items[1].quantity" {
		t.Fatalf("invalid quantity names %q", f)
	}

	const goroutines = 8
	perGoroutine := 10_000
	if testing.Short() {
		perGoroutine = 1_000
	}
	var wg sync.WaitGroup
	errs := make(chan string, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			// A different interleaving per goroutine: a small LCG.
			x := uint32(g*7919 + 1)
			for i := 0; i < perGoroutine; i++ {
				x = x*1664525 + 1013904223
				k := int(x>>16) % len(events)
				got := robustSnap(in.Evaluate(events[k].event))
				if !reflect.DeepEqual(got, want[k]) {
					errs <- fmt.Sprintf("goroutine %d, event %d (%s): got\n%+v\nwant\n%+v", g, i, events[k].name, got, want[k])
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
