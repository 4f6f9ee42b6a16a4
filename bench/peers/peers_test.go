package peers

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

var event = func() []byte {
	b, err := os.ReadFile("../../runtime/testdata/bench/button_purchase_3_items.json")
	if err != nil {
		panic(err)
	}
	return b
}()

func integration(tb testing.TB) *runtime.Integration {
	cat, _ := engine.NewCatalog(blueprints.FS)
	bp, ds, err := cat.Compile("button@0.1.0")
	if bp == nil {
		tb.Fatal(err, ds)
	}
	in, err := runtime.Bind(bp, "default", map[string]any{"application_id": "app-abc123", "api_key": "sk-bench"})
	if err != nil {
		tb.Fatal(err)
	}
	return in
}

// The hand-written mapping produces the same body as the blueprint, so the
// comparison is of the same work.
func TestSameBody(t *testing.T) {
	res := integration(t).Evaluate(event)
	body, auth, err := ButtonPurchase(event, "sk-bench")
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(res.Requests[0].Body, &a)
	json.Unmarshal(body, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("bodies differ:\nblueprint %s\nby hand   %s", res.Requests[0].Body, body)
	}
	if h, _ := res.Requests[0].Header("Authorization"); h != auth {
		t.Errorf("auth %q vs %q", h, auth)
	}
}

// BenchmarkButtonPurchase: the same event, bytes in to body bytes out, by
// the engine and by hand, in the same run.
func BenchmarkButtonPurchase(b *testing.B) {
	in := integration(b)
	b.Run("blueprint", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res := in.Evaluate(event); len(res.Requests) != 1 {
				b.Fatal(res)
			}
		}
	})
	b.Run("go_encoding_json_by_hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if body, _, err := ButtonPurchase(event, "sk-bench"); err != nil || !bytes.HasPrefix(body, []byte("{")) {
				b.Fatal(err)
			}
		}
	})
}
