package send_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// BenchmarkSend sends Button orders to a loopback server over keep-alive
// connections, from as many goroutines as the sender's concurrency.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"meta":{"status":"ok"}}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	in := button(b)
	req := in.Evaluate(order("bench")).Requests[0]
	s := send.New(send.Options{VendorURL: u, Concurrency: 16})
	b.ReportAllocs()
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if a := s.Do(context.Background(), in, "button", req); a.Outcome != runtime.Delivered {
				b.Fatalf("%+v", a)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
