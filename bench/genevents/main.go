// Command genevents writes N mixed, realistic Button events as NDJSON:
// orders with 1 to 5 products (60 %), add-to-carts (25 %), page views
// (10 %, not mapped) and orders without consent (5 %). Deterministic for a
// given -seed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
)

func main() {
	n := flag.Int("n", 1000000, "number of events")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	r := rand.New(rand.NewPCG(*seed, 2))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	ctx := func(consent bool) string {
		return fmt.Sprintf(`"context":{"ip":"203.0.113.%d","user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15","locale":"en-US","page":{"url":"https://shop.example.com/p?btn_ref=srctok-%016x","path":"/p"},"consent":{"advertising":%v,"analytics":true},"click_ids":{"btn_ref":"srctok-%016x"}}`,
			r.IntN(250), r.Uint64(), consent, r.Uint64())
	}
	for i := range *n {
		switch p := r.IntN(100); {
		case p < 65:
			items := 1 + r.IntN(5)
			fmt.Fprintf(w, `{"type":"track","event":"Order Completed","message_id":"m-%d","anonymous_id":"anon-%d","user_id":"cust-%d","timestamp":"2026-11-24T10:%02d:%02d.%03dZ","traits":{"email":"User%d@Example.com"},%s,"properties":{"order_id":"ord-%d","total":%d.%02d,"revenue":%d.%02d,"currency":"USD","products":[`,
				i, i, r.IntN(100000), r.IntN(60), r.IntN(60), r.IntN(1000), r.IntN(1000), ctx(p >= 60), i, r.IntN(500), r.IntN(100), r.IntN(400), r.IntN(100))
			for k := range items {
				if k > 0 {
					w.WriteByte(',')
				}
				fmt.Fprintf(w, `{"product_id":"p-%d","sku":"SKU-%d","name":"Product %d","price":%d.%02d,"quantity":%d,"category":"Cat %d","brand":"Acme"}`,
					r.IntN(10000), r.IntN(10000), k, r.IntN(200), r.IntN(100), 1+r.IntN(3), r.IntN(20))
			}
			w.WriteString("]}}\n")
		case p < 90:
			fmt.Fprintf(w, `{"type":"track","event":"Product Added","messageId":"m-%d","userId":"cust-%d","timestamp":"2026-11-24T10:%02d:%02dZ",%s,"properties":{"product_id":"p-%d","sku":"SKU-%d","name":"Trail Shoe","price":%d.99,"quantity":%d,"currency":"EUR","category":"Shoes"}}`+"\n",
				i, r.IntN(100000), r.IntN(60), r.IntN(60), ctx(true), r.IntN(10000), r.IntN(10000), r.IntN(200), 1+r.IntN(2))
		default:
			fmt.Fprintf(w, `{"type":"page","name":"Product","message_id":"m-%d","anonymous_id":"anon-%d","timestamp":"2026-11-24T10:00:00Z",%s,"properties":{"path":"/p/%d"}}`+"\n",
				i, i, ctx(true), r.IntN(1000))
		}
	}
}
