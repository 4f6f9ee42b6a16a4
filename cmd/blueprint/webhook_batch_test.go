package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// TestWebhookForwardsSignedBytes is issue #12's other webhook check:
// blueprint send forwards a track, a page and an identify event byte for
// byte (white space, key order, 1e3, 2.0 and \u00e9 untouched), and each
// request's X-Signature verifies as the platform's ingestion verifies it
// (internal/service/ingest.go: sha256= hex HMAC-SHA256(secret,
// X-Timestamp + "." + raw body), X-Timestamp in Unix milliseconds near the
// receiver's clock).
func TestWebhookForwardsSignedBytes(t *testing.T) {
	const secret = "whsec-0123456789abcdef0123456789abcdef"
	events := []string{
		`{"type":"track","event":"Order Completed","messageId":"m-1","properties":{"total":1e3,"q":2.0,"name":"caf\u00e9 <&>"}}`,
		`{ "type" : "page", "name":"Checkout",  "messageId":"m-2" }`,
		`{"type":"identify","messageId":"m-3","userId":"u-1","traits":{"email":" Jane@Example.com "}}`,
	}
	var mu sync.Mutex
	got := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ts, sig := r.Header.Get("X-Timestamp"), r.Header.Get("X-Signature")
		ms, err := strconv.ParseInt(ts, 10, 64)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(ts + "."))
		m.Write(b)
		ok := err == nil && time.Since(time.UnixMilli(ms)).Abs() < 5*time.Minute &&
			hmac.Equal([]byte(strings.ToLower(sig)), []byte("sha256="+hex.EncodeToString(m.Sum(nil))))
		if !ok || r.Method != http.MethodPost || r.URL.Path != "/in" || r.Header.Get("Authorization") != "" {
			t.Errorf("%s %s: X-Timestamp %q X-Signature %q Authorization %q: not what the receiver accepts", r.Method, r.URL.Path, ts, sig, r.Header.Get("Authorization"))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		mu.Lock()
		got[string(b)] = true
		mu.Unlock()
	}))
	defer srv.Close()
	out, errs, code := cli(t, strings.Join(events, "\n")+"\n", "send", "--blueprint", "webhook", "--state", t.TempDir(), "--vendor-url", srv.URL,
		"--config", "url=https://hooks.example.com/in", "--config", "authentication=hmac", "--config", "signing_secret="+secret, "--progress", "none", "-")
	if code != 0 || !strings.Contains(out, "3 delivered, 0 skipped, 0 rejected, 0 dead-lettered") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	for _, e := range events {
		if !got[e] {
			t.Errorf("not received byte for byte: %s", e)
		}
	}
	if strings.Contains(out+errs, secret) {
		t.Error("the CLI printed the signing secret")
	}
}
