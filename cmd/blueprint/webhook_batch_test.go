package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestWebhookBatches250 is issue #12's check: with batching on (batch
// size 100), 250 events sent by `blueprint send` arrive in 3 requests of
// at most 100, every event exactly once, byte for byte, and the run does
// not wait out the batch interval once its input is read.
func TestWebhookBatches250(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	defer srv.Close()
	var in strings.Builder
	for i := range 250 {
		fmt.Fprintf(&in, `{"type":"track","event":"E","messageId":"m-%03d","n":%d}`+"\n", i, i)
	}
	out, errs, code := cli(t, in.String(), "send", "--blueprint", "webhook", "--state", t.TempDir(), "--vendor-url", srv.URL,
		"--config", "url=https://hooks.example.com/in", "--config", "batch_enabled=true", "--config", "batch_size=100",
		"--config", "batch_interval_ms=60000", "--progress", "none", "-")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "250 delivered, 0 skipped, 0 rejected, 0 dead-lettered") {
		t.Fatalf("summary:\n%s", out)
	}
	if len(bodies) != 3 {
		t.Fatalf("%d requests, want 3", len(bodies))
	}
	seen := map[string]int{}
	for _, b := range bodies {
		n := strings.Count(b, `"messageId"`)
		if n > 100 || !strings.HasPrefix(b, `{"batch":[{"type"`) {
			t.Fatalf("a batch of %d: %.80s", n, b)
		}
		for i := range 250 {
			if strings.Contains(b, fmt.Sprintf(`{"type":"track","event":"E","messageId":"m-%03d","n":%d}`, i, i)) {
				seen[fmt.Sprint(i)]++
			}
		}
	}
	if len(seen) != 250 {
		t.Fatalf("%d distinct events arrived, want 250", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("event %s arrived %d times", k, n)
		}
	}
}
