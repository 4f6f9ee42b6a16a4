package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
)

// evaluateSeeds is FuzzEvaluate's seed corpus (FuzzEvaluateValid's too):
// the events of testdata/seeds and malformed inputs.
func evaluateSeeds(f testing.TB) (out [][]byte) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "seeds", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(seeds) < 8 {
		f.Fatalf("only %d seed events in testdata/seeds", len(seeds))
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	for _, s := range []string{
		``,
		` `,
		`{}`,
		`[]`,
		`null`,
		`"Order Completed"`,
		`{"event":"Order Completed"`,
		`{"event":"Order Completed"}{}`,
		`{"event":"Order Completed",}`,
		"\xef\xbb\xbf{\"event\":\"Order Completed\"}",
		"{\"event\":\"Order Completed\",\"properties\":{\"order_id\":\"\xff\"}}",
		`{"event":"Order Completed","properties":{"order_id":"\ud800"}}`,
		`{"type":1,"event":"Order Completed"}`,
		`{"event":"Product Added","context":{"consent":{"advertising":true}},"properties":{"sku":"s","price":1e400,"quantity":1e300}}`,
		`{"event":"Order Completed","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":"NaN","currency":"usd","products":[{"sku":"s","price":"-0","quantity":"0x10"},null,[]]}}`,
		`{"event":"Order Completed","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o","total":1,"currency":"USD","products":[{"sku":"s","price":1,"quantity":9223372036854775807}]}}`,
		`{"event":"Product Added","timestamp":"0000-01-01T00:00:00+01:00","context":{"consent":{"advertising":true}},"properties":{"sku":"s"}}`,
		`{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// FuzzEvaluate feeds arbitrary bytes to the Button blueprint (retail
// variant, so that both the Order API and the activity request are
// reachable). Whatever the input, Evaluate must not panic and must return
// one well-formed result: one of the three outcomes with a reason from the
// fixed set, requests only on deliver, each with a valid JSON body and a
// Button host, fields on a field fault, no recovered panic, and the same
// result when evaluated again.
//
// The seed corpus is testdata/seeds/*.json (realistic events) plus the
// malformed inputs of evaluateSeeds; crashers found by go test -fuzz are kept under
// testdata/fuzz/FuzzEvaluate as regression seeds.
//
//	go test ./runtime -run '^$' -fuzz FuzzEvaluate -fuzztime 60s
func FuzzEvaluate(f *testing.F) {
	for _, b := range evaluateSeeds(f) {
		f.Add(b)
	}
	in := robustBind(f, "retail", robustAPIKey)
	f.Fuzz(func(t *testing.T, event []byte) {
		res, text, p := robustEvaluate(in, event)
		if len(p) == 0 {
			robustInvariants(res, text, &p)
			if res.Outcome == runtime.Deliver && len(res.Fields) > 0 {
				p.add("deliver with fields %q", res.Fields)
			}
			if res.Outcome == runtime.Deliver && robustAmounts(res, &p) {
				p.add("a line total overflowed and was delivered wrapped")
			}
			if res.Outcome == runtime.Deliver && robustTimes(res) {
				p.add("a time outside the years 0000-9999 was delivered malformed")
			}
			again := in.Evaluate(event)
			if a, b := robustSnap(res), robustSnap(again); !reflect.DeepEqual(a, b) {
				p.add("not deterministic:\n%+v\n%+v", a, b)
			}
		}
		if len(p) > 0 {
			t.Errorf("event %.500q:\n%s", event, strings.Join(p, "\n"))
		}
	})
}

// robustAmounts checks the amounts of a delivered Button body: every money
// value and quantity is a non-negative integer, and each line item's total
// is its amount times its quantity. It reports whether a line total is
// wrong because the product overflowed, which it does not add to p.
func robustAmounts(res runtime.Result, p *robustProblems) (overflow bool) {
	for _, q := range res.Requests {
		var body map[string]any
		d := json.NewDecoder(bytes.NewReader(q.Body))
		d.UseNumber()
		if d.Decode(&body) != nil {
			continue // reported by robustInvariants
		}
		num := func(where string, x any) *big.Int {
			if x == nil {
				return nil
			}
			n, ok := new(big.Int).SetString(fmt.Sprint(x), 10)
			if !ok || n.Sign() < 0 {
				if !strings.Contains(where, ".total") {
					p.add("%s = %v, want a non-negative integer", where, x)
				}
				return nil
			}
			return n
		}
		num("total", body["total"])
		if v, ok := body["value"].(map[string]any); ok && body["name"] == "add_to_cart" {
			num("value.amount", v["amount"])
			num("value.quantity", v["quantity"])
		}
		items, _ := body["line_items"].([]any)
		for i, it := range items {
			item, _ := it.(map[string]any)
			at := fmt.Sprintf("line_items[%d]", i)
			amount := num(at+".amount", item["amount"])
			quantity := num(at+".quantity", item["quantity"])
			total, ok := new(big.Int).SetString(fmt.Sprint(item["total"]), 10)
			if !ok || amount == nil || quantity == nil {
				if !ok {
					p.add("%s.total = %v, want an integer", at, item["total"])
				}
				continue
			}
			product := new(big.Int).Mul(amount, quantity)
			if total.Cmp(product) != 0 {
				if !product.IsInt64() {
					overflow = true
					continue
				}
				p.add("%s.total = %s, want %s × %s = %s", at, total, amount, quantity, product)
			}
		}
	}
	return overflow
}

var robustTimeRE = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$`)

// robustTimes reports whether a delivered Button body holds a time
// (purchase_date, time) that is not written as 2006-01-02T15:04:05Z.
func robustTimes(res runtime.Result) (malformed bool) {
	for _, q := range res.Requests {
		var body map[string]any
		if json.Unmarshal(q.Body, &body) != nil {
			continue
		}
		for _, k := range []string{"purchase_date", "time"} {
			if v, ok := body[k]; ok {
				if s, _ := v.(string); !robustTimeRE.MatchString(s) {
					malformed = true
				}
			}
		}
	}
	return malformed
}
