package runtime

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
)

// BenchmarkWriteBody measures writing the vendor body alone (writeObject
// on a scanned and mapped event, shared values already computed), the
// part of Evaluate the body writers decide.
func BenchmarkWriteBody(b *testing.B) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		b.Fatal(err)
	}
	bp, _, err := cat.Compile("button@0.1.0")
	if err != nil || bp == nil {
		b.Fatal(err)
	}
	in, err := Bind(bp, "retail", map[string]any{"application_id": "app-1", "api_key": "sk-bench"})
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"button_purchase_3_items", "button_purchase_items_1", "button_purchase_items_100", "button_purchase_items_1000"} {
		ev, err := os.ReadFile(filepath.Join("testdata", "bench", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			c := ctxPool.Get().(*evalCtx)
			defer c.release()
			if msg := c.scan(in, ev, nil); msg != "" {
				b.Fatal(msg)
			}
			var res Result
			e := c.mapEvent(&res)
			if e == nil {
				b.Fatal(res.Message)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.out = c.out[:0]
				c.secrets = c.secrets[:0]
				c.scratch = c.scratch[:0]
				if !c.writeObject(e.Request.Body, &c.top) || c.nMissing+c.nBad > 0 {
					b.Fatal("no body")
				}
			}
		})
	}
}
