package service

import (
	"fmt"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/service/live"
	"github.com/blueprint-engine/blueprint/runtime"
)

// BenchmarkLiveScrub: what the live stream pays per step and per watcher
// to scrub it with every bound integration's secrets (live.Options.Scrub,
// in the stream's write loop, off the pipeline), by number of bound
// Button integrations. A watcher slower than the steps loses some and is
// told how many.
func BenchmarkLiveScrub(b *testing.B) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		b.Fatal(err)
	}
	bp, _, err := cat.Compile("button")
	if err != nil {
		b.Fatal(err)
	}
	step := live.Message{Type: "request", At: time.Now(), EventID: "m-123456789", IntegrationID: "int_0", Item: "f2a38240ab1cd470cfb7b7b6e3368f27",
		Method: "POST", URL: "https://api.usebutton.com/v1/order",
		Request: "POST https://api.usebutton.com/v1/order\nAuthorization: Basic ***\nContent-Type: application/json\n\n" +
			`{"order_id":"o-1","total":2550,"currency":"USD","line_items":[{"identifier":"S-1","total":2550,"amount":1275,"quantity":2,"description":"Tee"}]}`}
	for _, n := range []int{1, 50, 1000} {
		s := &Service{}
		for i := range n {
			in, err := runtime.Bind(bp, "default", map[string]any{"application_id": "app-abc123", "api_key": fmt.Sprintf("sk-live-%08d-secretvalue", i)})
			if err != nil {
				b.Fatal(err)
			}
			s.bound.Store(fmt.Sprint("int_", i), in)
		}
		b.Run(fmt.Sprintf("integrations_%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.redactLive(step)
			}
		})
	}
}
