package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// End-to-end delivery of the analytics vendors (GA4 and Meta) through
// `blueprint send`: the contracts' canonical events reach a local server
// byte for byte (docs/ga4-0.1.0.md and docs/meta_capi-0.1.0.md, "Canonical
// examples"), with the real credential in the query, and the vendors'
// answers end as the contracts' response rules say.

// The canonical events of docs/vendors-common.md.
const (
	canonicalPage = `{"type":"page","name":"Checkout","messageId":"m-2","anonymousId":"anon-1","userId":"u-1","timestamp":"2026-02-25T14:29:00.000Z","context":{"ip":"203.0.113.9","userAgent":"Mozilla/5.0","page":{"url":"https://shop.example/checkout?irclickid=ic-1","referrer":"https://ref.example/","title":"Checkout"},"consent":{"advertising":true,"analytics":true}}}`
)

// captured is one request as the vendor's server saw it.
type captured struct {
	method, path, query string
	header              http.Header
	body                string
}

// captureServer answers with answer(n) to its n-th request (from 1) and
// records every request.
type captureServer struct {
	mu     sync.Mutex
	reqs   []captured
	answer func(n int) (status int, body string)
}

func (s *captureServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, captured{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
	n := len(s.reqs)
	s.mu.Unlock()
	status, body := s.answer(n)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (s *captureServer) captured() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.reqs...)
}

// sendTo runs `blueprint send` with events (NDJSON) against a server
// answering with answer, with fast retries; it returns the server, the
// CLI's output and the state directory.
func sendTo(t *testing.T, answer func(n int) (int, string), key string, config []string, events ...string) (srv *captureServer, out, errs, state string) {
	t.Helper()
	srv = &captureServer{answer: answer}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, []byte(strings.Join(events, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state = t.TempDir()
	args := []string{"send", "--blueprint", key, "--state", state, "--vendor-url", hs.URL,
		"--retry-base", "5ms", "--retry-cap", "20ms", "--max-attempts", "3", "--progress", "none"}
	for _, c := range config {
		args = append(args, "--config", c)
	}
	out, errs, code := cli(t, "", append(args, path)...)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
	}
	return srv, out, errs, state
}

// expectSummary checks the last line of send's output.
func expectSummary(t *testing.T, out string, delivered, skipped, rejected, dead int) {
	t.Helper()
	d, s, r, x := summary(t, out)
	if d != delivered || s != skipped || r != rejected || x != dead {
		t.Errorf("summary %q, want %d delivered, %d skipped, %d rejected, %d dead-lettered", lastLine(out), delivered, skipped, rejected, dead)
	}
}

// vendorDeadLetters lists the dead letters of a state directory.
func vendorDeadLetters(t *testing.T, state string) []struct {
	LastError  string `json:"last_error"`
	LastStatus int    `json:"last_status"`
} {
	t.Helper()
	list, errs, code := cli(t, "", "dlq", "list", "--state", state, "--format", "json")
	var items []struct {
		LastError  string `json:"last_error"`
		LastStatus int    `json:"last_status"`
	}
	if code != 0 || json.Unmarshal([]byte(list), &items) != nil {
		t.Fatalf("dlq list: exit %d\n%s\n%s", code, list, errs)
	}
	return items
}

// expectRequest checks one captured request against the contract.
func expectRequest(t *testing.T, got captured, path, query, body string) {
	t.Helper()
	if got.method != http.MethodPost || got.path != path || got.query != query {
		t.Errorf("request %s %s?%s, want POST %s?%s", got.method, got.path, got.query, path, query)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	if a, ok := got.header["Authorization"]; ok {
		t.Errorf("Authorization %q sent; the credential travels in the query only", a)
	}
	if got.body != body {
		t.Errorf("body\n%s\nwant\n%s", got.body, body)
	}
}

// noSecret checks that the secret appears in none of the CLI's outputs.
func noSecret(t *testing.T, secret string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(s, secret) {
			t.Errorf("the secret %q was printed:\n%s", secret, s)
		}
	}
}

var ga4Config = []string{"measurement_id=G-ABC123XYZ", "api_secret=gs-secret"}

const (
	ga4Path  = "/mp/collect"
	ga4Query = "measurement_id=G-ABC123XYZ&api_secret=gs-secret"
)

func TestSendGA4CanonicalEvents(t *testing.T) {
	srv, out, errs, _ := sendTo(t, func(int) (int, string) { return 204, "" }, "ga4", ga4Config, canonicalOrder, canonicalPage)
	expectSummary(t, out, 2, 0, 0, 0)
	reqs := srv.captured()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	want := map[string]string{
		"purchase":  `{"client_id":"anon-1","user_id":"u-1","timestamp_micros":1772029800000000,"events":[{"name":"purchase","params":{"transaction_id":"o-1","currency":"USD","value":25.50,"coupon":"SAVE5","shipping":2.00,"tax":3.00,"items":[{"item_id":"p-1","item_name":"Tee","item_category":"Shirts","item_brand":"Acme","price":12.75,"quantity":2}]}}]}`,
		"page_view": `{"client_id":"anon-1","user_id":"u-1","timestamp_micros":1772029740000000,"events":[{"name":"page_view","params":{"page_location":"https://shop.example/checkout?irclickid=ic-1","page_referrer":"https://ref.example/","page_title":"Checkout"}}]}`,
	}
	for _, r := range reqs {
		name := "purchase"
		if strings.Contains(r.body, `"page_view"`) {
			name = "page_view"
		}
		expectRequest(t, r, ga4Path, ga4Query, want[name])
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("not captured: %v", want)
	}
	noSecret(t, "gs-secret", out, errs)
}

// GA4's production endpoint answers 2xx even for malformed events; a 4xx
// (here 400) is failed: a dead letter at once, with the start of the body.
func TestSendGA4ClientErrorIsDeadLetter(t *testing.T) {
	srv, out, errs, state := sendTo(t, func(int) (int, string) { return 400, `bad request: no measurement_id` }, "ga4", ga4Config, canonicalOrder)
	expectSummary(t, out, 0, 0, 0, 1)
	if n := len(srv.captured()); n != 1 {
		t.Errorf("%d attempts, want 1 (failed is permanent)", n)
	}
	dl := vendorDeadLetters(t, state)
	if len(dl) != 1 || dl[0].LastStatus != 400 || !strings.Contains(dl[0].LastError, "bad request: no measurement_id") {
		t.Errorf("dead letters %+v", dl)
	}
	noSecret(t, "gs-secret", out, errs)
}

// A 5xx is retried: the second attempt, answered 2xx, delivers the same
// bytes.
func TestSendGA4ServerErrorIsRetried(t *testing.T) {
	srv, out, _, _ := sendTo(t, func(n int) (int, string) {
		if n == 1 {
			return 503, `unavailable`
		}
		return 204, ""
	}, "ga4", ga4Config, canonicalPage)
	expectSummary(t, out, 1, 0, 0, 0)
	reqs := srv.captured()
	if len(reqs) != 2 {
		t.Fatalf("%d attempts, want 2", len(reqs))
	}
	if reqs[0].body != reqs[1].body || reqs[1].query != ga4Query {
		t.Errorf("the retry differs: %q?%q vs %q?%q", reqs[0].query, reqs[0].body, reqs[1].query, reqs[1].body)
	}
}

var metaConfig = []string{"pixel_id=123456789012345", "access_token=EAAB-secret"}

const (
	metaPath  = "/v24.0/123456789012345/events"
	metaQuery = "access_token=EAAB-secret"
	metaOK    = `{"events_received":1,"messages":[],"fbtrace_id":"A1b2C3"}`
)

func TestSendMetaCanonicalEvents(t *testing.T) {
	srv, out, errs, _ := sendTo(t, func(int) (int, string) { return 200, metaOK }, "meta_capi",
		append(metaConfig, "test_event_code=TEST12345"), canonicalOrder, canonicalPage)
	expectSummary(t, out, 2, 0, 0, 0)
	reqs := srv.captured()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	want := map[string]string{
		"Purchase": `{"data":[{"event_name":"Purchase","event_time":1772029800,"event_id":"m-1","action_source":"website","event_source_url":"https://shop.example/checkout?irclickid=ic-1&awc=aw-1&cjevent=cj-1&ranSiteID=rs-1&ranLand=20260225_1400","user_data":{"em":["8c87b489ce35cf2e2f39f80e282cb2e804932a56a213983eeeb428407d43b52d"],"external_id":["a24a7f55f278dd49fb1f99c5507800cb198a5bfe10fe2126cd0b25672152b0da"],"client_ip_address":"203.0.113.9","client_user_agent":"Mozilla/5.0"},"custom_data":{"currency":"USD","value":25.50,"order_id":"o-1","content_type":"product","content_ids":["p-1"],"contents":[{"id":"p-1","quantity":2,"item_price":12.75}],"num_items":2}}],"test_event_code":"TEST12345"}`,
		"PageView": `{"data":[{"event_name":"PageView","event_time":1772029740,"event_id":"m-2","action_source":"website","event_source_url":"https://shop.example/checkout?irclickid=ic-1","user_data":{"external_id":["a24a7f55f278dd49fb1f99c5507800cb198a5bfe10fe2126cd0b25672152b0da"],"client_ip_address":"203.0.113.9","client_user_agent":"Mozilla/5.0"}}],"test_event_code":"TEST12345"}`,
	}
	for _, r := range reqs {
		name := "Purchase"
		if strings.Contains(r.body, `"PageView"`) {
			name = "PageView"
		}
		expectRequest(t, r, metaPath, metaQuery, want[name])
		delete(want, name)
	}
	if len(want) != 0 {
		t.Errorf("not captured: %v", want)
	}
	noSecret(t, "EAAB-secret", out, errs)
}

// Meta's 4xx answers: an invalid parameter (error 100) is failed with
// Meta's message; a bad token (401, or error 190 whatever the status) is
// failed with the contract's message; all are dead letters at once.
func TestSendMetaClientErrorsAreDeadLetters(t *testing.T) {
	for _, c := range []struct {
		name            string
		status          int
		answer, message string
	}{
		{"400 error 100", 400, `{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"fbtrace_id":"x"}}`, "Invalid parameter"},
		{"400 error 190", 400, `{"error":{"message":"Error validating access token","type":"OAuthException","code":190,"fbtrace_id":"x"}}`, "bad access_token (Meta error 190): generate a new Conversions API token"},
		{"401", 401, `{"error":{"message":"Invalid OAuth access token","code":102}}`, "bad access_token (Meta answered 401): generate a new Conversions API token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, out, errs, state := sendTo(t, func(int) (int, string) { return c.status, c.answer }, "meta_capi", metaConfig, canonicalOrder)
			expectSummary(t, out, 0, 0, 0, 1)
			if n := len(srv.captured()); n != 1 {
				t.Errorf("%d attempts, want 1 (failed is permanent)", n)
			}
			dl := vendorDeadLetters(t, state)
			if len(dl) != 1 || dl[0].LastStatus != c.status || !strings.Contains(dl[0].LastError, c.message) {
				t.Errorf("dead letters %+v, want status %d and %q", dl, c.status, c.message)
			}
			noSecret(t, "EAAB-secret", out, errs)
		})
	}
}

// Retried: a 5xx, and Meta's throttling code 17 even when it comes with a
// 400; the next attempt, answered 200, delivers.
func TestSendMetaRetries(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		answer string
	}{
		{"500", 500, `{"error":{"message":"Service temporarily unavailable","code":2}}`},
		{"503 without a body", 503, ``},
		{"400 throttled", 400, `{"error":{"message":"User request limit reached","code":17}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, out, _, _ := sendTo(t, func(n int) (int, string) {
				if n == 1 {
					return c.status, c.answer
				}
				return 200, metaOK
			}, "meta_capi", metaConfig, canonicalPage)
			expectSummary(t, out, 1, 0, 0, 0)
			reqs := srv.captured()
			if len(reqs) != 2 {
				t.Fatalf("%d attempts, want 2", len(reqs))
			}
			if reqs[0].body != reqs[1].body || reqs[1].query != metaQuery || reqs[1].path != metaPath {
				t.Errorf("the retry differs: %s?%s %q vs %s?%s %q", reqs[0].path, reqs[0].query, reqs[0].body, reqs[1].path, reqs[1].query, reqs[1].body)
			}
		})
	}
}
