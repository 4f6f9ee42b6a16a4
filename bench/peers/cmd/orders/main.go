// Command orders writes N Order Completed events as NDJSON, each shaped
// like runtime/testdata/bench/button_purchase_3_items.json (about 1.4 KB, 3
// products) with varied ids, emails, times, amounts, quantities and
// currencies, for bench/compare.sh. Every event is consented and carries
// context.click_ids.btn_ref, so that every peer (the hand-written Go mapping
// included, which reads only that) must produce the engine's body.
// Deterministic for a given -seed.
//
// The variation: about 10 % of events have no user id (no customer), 10 %
// no email, 5 % an email with spaces around it, 30 % a subtotal (else
// revenue is the total), 20 % a timestamp with an offset; the currency is
// USD, EUR, lower-case usd, JPY (exponent 0) or KWD (exponent 3); some USD
// prices have a third decimal 5 (rounded half away from zero).
//
// Usage: go run ./bench/peers/cmd/orders [-n 20000] [-seed 1] > orders.ndjson
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
)

var names = []string{"Trail Shoe", "Running Socks", "Water Bottle", "Rain Jacket", "Head Lamp", "Hiking Pole"}
var categories = []string{"Shoes", "Accessories", "Outerwear", "Camping"}

func main() {
	n := flag.Int("n", 20000, "number of events")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	r := rand.New(rand.NewPCG(*seed, 3))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()

	uuid := func() string {
		a, b := r.Uint64(), r.Uint64()
		return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
	}
	for i := range *n {
		cur, exp := "USD", 2
		switch p := r.IntN(100); {
		case p < 15:
			cur = "EUR"
		case p < 25:
			cur = "usd"
		case p < 35:
			cur, exp = "JPY", 0
		case p < 45:
			cur, exp = "KWD", 3
		}
		// money writes a JSON number with the currency's decimals (and, for
		// some two-decimal amounts, a third decimal 5 to round).
		money := func(max int) string {
			whole := r.IntN(max)
			switch exp {
			case 0:
				return fmt.Sprintf("%d", whole*100+r.IntN(100))
			case 3:
				return fmt.Sprintf("%d.%03d", whole, r.IntN(1000))
			}
			if r.IntN(10) == 0 {
				return fmt.Sprintf("%d.%02d5", whole, r.IntN(100))
			}
			return fmt.Sprintf("%d.%02d", whole, r.IntN(100))
		}

		fmt.Fprintf(w, `{"type":"track","event":"Order Completed","message_id":"%s","anonymous_id":"anon-%s",`, uuid(), uuid())
		if r.IntN(10) != 0 {
			fmt.Fprintf(w, `"user_id":"cust-%d",`, 1000+r.IntN(1000000))
		}
		ts := fmt.Sprintf("2026-11-%02dT%02d:%02d:%02d.%03d", 1+r.IntN(30), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(1000))
		switch r.IntN(10) {
		case 0:
			ts += "+02:00"
		case 1:
			ts += "-05:00"
		default:
			ts += "Z"
		}
		fmt.Fprintf(w, `"timestamp":"%s","traits":{`, ts)
		switch p := r.IntN(20); {
		case p < 2:
		case p < 3:
			fmt.Fprintf(w, `"email":" Jane.Doe%d@Example.com ",`, r.IntN(1000000))
		default:
			fmt.Fprintf(w, `"email":"Jane.Doe%d@Example.com",`, r.IntN(1000000))
		}
		fmt.Fprintf(w, `"first_name":"Jane","last_name":"Doe"},"context":{"ip":"203.0.113.%d","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1","locale":"en-US","page":{"url":"https://shop.example.com/checkout/complete?step=3","path":"/checkout/complete","referrer":"https://shop.example.com/cart","title":"Thank you"},"campaign":{"source":"button","medium":"affiliate","name":"black-friday"},"consent":{"advertising":true,"analytics":true,"functional":true,"marketing":true},"click_ids":{"btn_ref":"srctok-%016x"}},`,
			1+r.IntN(254), r.Uint64())
		fmt.Fprintf(w, `"properties":{"order_id":"ord-%d","total":%s,"revenue":%s,`, 5000+i, money(300), money(250))
		if r.IntN(10) < 3 {
			fmt.Fprintf(w, `"subtotal":%s,`, money(250))
		}
		fmt.Fprintf(w, `"tax":%s,"shipping":%s,"currency":"%s","coupon":"BF2026","products":[`, money(20), money(10), cur)
		for k := range 3 {
			if k > 0 {
				w.WriteByte(',')
			}
			id := 1 + r.IntN(100000)
			fmt.Fprintf(w, `{"product_id":"p-%d","sku":"SKU-%d","name":"%s","price":%s,"quantity":%d,"category":"%s"`,
				id, id, names[r.IntN(len(names))], money(120), 1+r.IntN(3), categories[r.IntN(len(categories))])
			switch k {
			case 0:
				fmt.Fprintf(w, `,"brand":"Acme","variant":"blue","url":"https://shop.example.com/p/%d"}`, id)
			case 1:
				w.WriteString(`,"brand":"Acme"}`)
			default:
				w.WriteString(`}`)
			}
		}
		w.WriteString("]}}\n")
	}
}
