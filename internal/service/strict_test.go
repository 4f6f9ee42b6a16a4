package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeMethodNotAllowed: a known path asked with a method it does not
// take is 405 with Allow and the error body of DESIGN §6, on both
// listeners; an unknown path stays 404.
func TestServeMethodNotAllowed(t *testing.T) {
	h := start(t)
	tok := h.login()
	for _, c := range []struct {
		base, method, path, allow string
	}{
		{h.admin, "DELETE", "/v1/admin/integrations", "GET, HEAD"},
		{h.admin, "PUT", "/v1/admin/integrations/int_x", "GET, HEAD, PATCH, DELETE"},
		{h.admin, "GET", "/v1/admin/auth/login", "POST"},
		{h.admin, "GET", "/v1/admin/sources/", ""},
		{h.admin, "DELETE", "/v1/admin/sources", "GET, HEAD, POST"},
		{h.admin, "POST", "/metrics", "GET, HEAD"},
		{h.admin, "POST", "/healthz", "GET, HEAD"},
		{h.admin, "PATCH", "/v1/admin/integrations/int_x/dlq/replay", "GET, HEAD, POST"}, // GET: dead letter "replay"
		{h.admin, "PUT", "/v1/admin/users/usr_x", "PATCH, DELETE"},
		{h.admin, "GET", "/v1/admin/users/me/password", "POST"},
		{h.ingest, "GET", "/v1/events", "POST"},
		{h.ingest, "PUT", "/v1/batch", "POST"},
	} {
		req, _ := http.NewRequest(c.method, c.base+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		decodeBody(resp, &out)
		switch {
		case c.allow == "" && (resp.StatusCode != 404 || errCode(out) != "NOT_FOUND"):
			t.Errorf("%s %s: %d %v, want 404 NOT_FOUND", c.method, c.path, resp.StatusCode, out)
		case c.allow != "" && (resp.StatusCode != 405 || errCode(out) != "METHOD_NOT_ALLOWED" || resp.Header.Get("Allow") != c.allow):
			t.Errorf("%s %s: %d Allow %q %v, want 405 METHOD_NOT_ALLOWED Allow %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), out, c.allow)
		}
	}
	// Unknown paths, on and off /v1: 404 with the error body.
	for _, p := range []string{"/v1/admin/nope", "/nope"} {
		if st, out, _ := h.call("GET", p, tok, nil); st != 404 || errCode(out) != "NOT_FOUND" {
			t.Errorf("GET %s: %d %v", p, st, out)
		}
	}
}

// TestServeIngestOrderAndLimits: what can be refused without the body
// (pipeline key, signature headers, timestamp) is 401 whatever the body's
// size; each size limit has its own code.
func TestServeIngestOrderAndLimits(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)
	big := []byte(`{"type":"page","p":"` + strings.Repeat("x", 70<<10) + `"}`)
	unsigned := func(path string, body []byte, hdr map[string]string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", h.ingest+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+pk)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		decodeBody(resp, &out)
		return resp.StatusCode, out
	}
	now := time.Now().UnixMilli()
	if st, out := unsigned("/v1/events", big, nil); st != 401 || errCode(out) != "MISSING_SIGNATURE" {
		t.Errorf("unsigned event over 64 KB: %d %v, want 401 MISSING_SIGNATURE", st, out)
	}
	stale := strconv.FormatInt(now-10*60*1000, 10)
	if st, out := unsigned("/v1/events", big, map[string]string{"X-Timestamp": stale, "X-Signature": "sha256=00"}); st != 401 || errCode(out) != "STALE_TIMESTAMP" {
		t.Errorf("stale event over 64 KB: %d %v, want 401 STALE_TIMESTAMP", st, out)
	}
	if st, out := h.post("/v1/events", pk, sk, big, now); st != 413 || errCode(out) != "EVENT_TOO_LARGE" {
		t.Errorf("signed event over 64 KB: %d %v, want 413 EVENT_TOO_LARGE", st, out)
	}
	many := []byte(`{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"page"},`, 501), ",") + `]}`)
	if st, out := h.post("/v1/batch", pk, sk, many, now); st != 400 || errCode(out) != "TOO_MANY_EVENTS" {
		t.Errorf("501 events: %d %v, want 400 TOO_MANY_EVENTS", st, out)
	}
	heavy := []byte(`{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"page","p":"`+strings.Repeat("x", 60000)+`"},`, 90), ",") + `]}`)
	if st, out := h.post("/v1/batch", pk, sk, heavy, now); st != 413 || errCode(out) != "BATCH_TOO_LARGE" {
		t.Errorf("batch over 5 MB: %d %v, want 413 BATCH_TOO_LARGE", st, out)
	}
	// Per-event faults are named by index; the batch answer keeps its shape
	// even when no event was accepted.
	st, out := h.post("/v1/batch", pk, sk, []byte(`{"batch":[1,`+string(big)+`]}`), now)
	f, _ := out["failed"].([]any)
	if st != 200 || out["success"] != true || out["accepted"] != float64(0) || len(f) != 2 ||
		fmt.Sprintf("%v %v", f[0].(map[string]any)["index"], f[0].(map[string]any)["error"].(map[string]any)["code"]) != "0 INVALID_EVENT" ||
		fmt.Sprintf("%v %v", f[1].(map[string]any)["index"], f[1].(map[string]any)["error"].(map[string]any)["code"]) != "1 EVENT_TOO_LARGE" {
		t.Errorf("batch of two bad events: %d %v", st, out)
	}
}

// TestServeEvery429HasRetryAfter: the account lock (after five wrong
// passwords, each of them 401) and the rate limit both say when to come
// back.
func TestServeEvery429HasRetryAfter(t *testing.T) {
	h := start(t)
	for i := range 5 {
		if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": "wrong-" + strconv.Itoa(i)}); st != 401 || errCode(out) != "INVALID_CREDENTIALS" {
			t.Fatalf("wrong password %d: %d %v, want 401 INVALID_CREDENTIALS", i+1, st, out)
		}
	}
	for _, pw := range []string{"wrong", adminPass} {
		st, out, hdr := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": pw})
		if ra, err := strconv.Atoi(hdr.Get("Retry-After")); st != 429 || errCode(out) != "ACCOUNT_LOCKED" || err != nil || ra < 1 {
			t.Fatalf("locked, %q: %d %v Retry-After %q", pw, st, out, hdr.Get("Retry-After"))
		}
	}
	// The lock ending as it is answered still says a second, never 0.
	h.clock.Store(int64(15*time.Minute - 200*time.Millisecond))
	if st, _, hdr := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass}); st == 429 && hdr.Get("Retry-After") != "1" {
		t.Fatalf("lock about to end: Retry-After %q, want 1", hdr.Get("Retry-After"))
	}
}

// TestServeReplayUnknownIDs: a replay naming IDs that are not dead letters
// of the integration (a made-up reject, a made-up item) is 404 naming
// them all in error.ids, and nothing is replayed; a reject replayed once
// is no longer a dead letter.
func TestServeReplayUnknownIDs(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	id := installButton(t, h, tok, "Button", "sk-test-123")
	bad := []byte(`{"type":"track","event":"Order Completed","messageId":"m-bad","context":{"consent":{"advertising":true}},"properties":{"total":1,"currency":"USD"}}`)
	if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), bad, time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	base := "/v1/admin/integrations/" + id + "/dlq"
	var dlq map[string]any
	waitFor(t, "the reject", func() bool {
		_, dlq, _ = h.call("GET", base+"?kind=reject", tok, nil)
		return len(dlq["data"].([]any)) == 1
	})
	rej := dlq["data"].([]any)[0].(map[string]any)["id"].(string)
	st, out, _ := h.call("POST", base+"/replay", tok, map[string]any{"ids": []string{rej, "rej_nope", "nope"}})
	if e, _ := out["error"].(map[string]any); st != 404 || errCode(out) != "NOT_FOUND" || fmt.Sprint(e["ids"]) != "[nope rej_nope]" {
		t.Fatalf("replay with unknown ids: %d %v, want 404 naming nope and rej_nope", st, out)
	}
	if _, dlq, _ = h.call("GET", base+"?kind=reject", tok, nil); len(dlq["data"].([]any)) != 1 {
		t.Fatalf("the known reject was replayed by a refused replay: %v", dlq)
	}
	if st, out, _ = h.call("POST", base+"/replay", tok, map[string]any{"ids": []string{rej}}); st != 200 || out["replayed"] != float64(1) {
		t.Fatalf("replay: %d %v", st, out)
	}
	if st, out, _ = h.call("POST", base+"/replay", tok, map[string]any{"ids": []string{rej}}); st != 404 || errCode(out) != "NOT_FOUND" {
		t.Fatalf("the reject replayed again: %d %v, want 404", st, out)
	}
}

// TestServeListLimitCapped: every list serves at most 100 a page (DESIGN
// §6 "max 100"): a larger limit is served as 100, not refused.
func TestServeListLimitCapped(t *testing.T) {
	h := start(t)
	tok := h.login()
	for i := range 102 {
		if i%50 == 0 { // within the 100 requests a minute of a user
			h.clock.Add(int64(time.Minute))
		}
		if st, out, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "s" + strconv.Itoa(i)}); st != 201 {
			t.Fatalf("source %d: %d %v", i, st, out)
		}
	}
	for _, q := range []string{"", "?limit=101", "?limit=1000", "?limit=99999999999999999999"} {
		st, out, _ := h.call("GET", "/v1/admin/sources"+q, tok, nil)
		want := 100
		if q == "" {
			want = 50
		}
		if st != 200 || len(out["data"].([]any)) != want || out["has_more"] != true || out["next_cursor"] == nil {
			t.Errorf("sources%s: %d, %d entries, has_more %v", q, st, len(out["data"].([]any)), out["has_more"])
		}
	}
}

func decodeBody(resp *http.Response, v any) {
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	_ = json.Unmarshal(b.Bytes(), v)
}

// TestServeDisableKeepsQueued: DESIGN §6, `{"enabled":false}` stops
// delivery without losing queued requests. A request whose first attempt
// failed (503, retried) is not attempted while its integration is
// disabled, nor made a dead letter; enabled again, it is delivered.
func TestServeDisableKeepsQueued(t *testing.T) {
	release := make(chan struct{})
	var hits atomic.Int32
	var vendorOK atomic.Bool
	var fake http.Handler
	h := startWith(t, options{fastOwner: true, vendor: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-release // the first attempt is in flight while the integration is disabled
		}
		if !vendorOK.Load() {
			http.Error(w, `{"meta":{"status":"error"},"error":{"message":"busy"}}`, http.StatusServiceUnavailable)
			return
		}
		fake.ServeHTTP(w, r)
	})})
	fake = h.fake
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	id := installButton(t, h, tok, "Button", apiKey)
	if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order("q-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	waitFor(t, "the first attempt", func() bool { return hits.Load() == 1 })
	if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"enabled": false}); st != 200 || out["enabled"] != false {
		t.Fatalf("disable: %d %v", st, out)
	}
	close(release) // 503: the request is due again in 20 to 50 ms
	time.Sleep(500 * time.Millisecond)
	if n := hits.Load(); n != 1 {
		t.Fatalf("%d attempts while disabled, want the one in flight only", n)
	}
	if _, dlq, _ := h.call("GET", "/v1/admin/integrations/"+id+"/dlq", tok, nil); len(dlq["data"].([]any)) != 0 {
		t.Fatalf("the queued request became a dead letter while disabled: %v", dlq)
	}
	vendorOK.Store(true)
	if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"enabled": true}); st != 200 {
		t.Fatalf("enable: %d %v", st, out)
	}
	waitFor(t, "the queued order delivered once enabled", func() bool { _, ok := h.fake.Order("q-1"); return ok })
}

// TestServeLiveAnswersLikeTheAPI: the live endpoint answers an expired
// token EXPIRED_TOKEN (DESIGN §6's code, as every other call does) and a
// plain GET, not a WebSocket, 426 in the API's error body.
func TestServeLiveAnswersLikeTheAPI(t *testing.T) {
	h := start(t)
	tok := h.login()
	if st, out, hdr := h.call("GET", "/v1/admin/live?access_token="+tok, "", nil); st != 426 || errCode(out) != "UPGRADE_REQUIRED" || hdr.Get("Upgrade") != "websocket" {
		t.Errorf("plain GET with a token: %d %v", st, out)
	}
	if st, out, _ := h.call("GET", "/v1/admin/live", "", nil); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("plain GET without a token: %d %v", st, out)
	}
	h.clock.Store(int64(16 * time.Minute))
	for _, path := range []string{"/v1/admin/live?access_token=" + tok, "/v1/admin/integrations"} {
		if st, out, _ := h.call("GET", path, tok, nil); st != 401 || errCode(out) != "EXPIRED_TOKEN" {
			t.Errorf("%s with an expired token: %d %v, want 401 EXPIRED_TOKEN", path, st, out)
		}
	}
}
