package service_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// raw makes a management request with the given Content-Type ("" sends
// none) and decodes the JSON answer.
func (h *harness) raw(method, path, token, contentType, body string) (int, map[string]any, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(method, h.admin+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	if out == nil {
		out = map[string]any{"_raw": string(b)}
	}
	return resp.StatusCode, out, resp.Header
}

// TestServeCurlDefaultContentType: `curl -d '{...}'` without
// -H 'Content-Type: application/json' sends
// application/x-www-form-urlencoded. DESIGN §6 names no 415: the body is
// read as JSON, and refused with 400 INVALID_JSON only when it is not.
func TestServeCurlDefaultContentType(t *testing.T) {
	h := start(t)
	const form = "application/x-www-form-urlencoded"
	st, out, _ := h.raw("POST", "/v1/admin/auth/login", "", form, `{"email":"`+adminEmail+`","password":"`+adminPass+`"}`)
	if st != 200 || out["access_token"] == nil {
		t.Fatalf("login as curl -d sends it: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	if st, out, _ = h.raw("POST", "/v1/admin/sources", tok, form, `{"name":"web"}`); st != 201 || out["secret_key"] == nil {
		t.Fatalf("source as curl -d sends it: %d %v", st, out)
	}
	id := installButton(t, h, tok, "Button", "sk-wrong-1")
	if st, out, _ = h.raw("POST", "/v1/admin/integrations/"+id+"/dlq/replay", tok, form, `{"all":true}`); st != 200 || out["replayed"] != float64(0) {
		t.Fatalf("replay as curl -d sends it: %d %v", st, out)
	}
	if st, out, _ = h.raw("POST", "/v1/admin/sources", tok, form, `name=web2`); st != 400 || errCode(out) != "INVALID_JSON" {
		t.Fatalf("a real form body: %d %v, want 400 INVALID_JSON", st, out)
	}
	if st, out, _ = h.raw("POST", "/v1/admin/sources", tok, "text/xml", `<name>web3</name>`); st != 415 || errCode(out) != "UNSUPPORTED_MEDIA_TYPE" {
		t.Fatalf("an XML body: %d %v, want 415", st, out)
	}
}

// TestServeCatalogPages: the catalog is a list like the others (DESIGN
// §6: ?cursor=&limit=, default 50, max 100).
func TestServeCatalogPages(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, all, _ := h.call("GET", "/v1/admin/integration-catalog", tok, nil)
	n := len(all["data"].([]any))
	if n < 2 || all["has_more"] != false || all["next_cursor"] != nil {
		t.Fatalf("whole catalog: %v", all)
	}
	var keys []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatal("the cursor does not advance")
		}
		st, out, _ := h.call("GET", "/v1/admin/integration-catalog?limit=1&cursor="+cursor, tok, nil)
		if st != 200 || len(out["data"].([]any)) != 1 {
			t.Fatalf("page %d: %d %v", pages, st, out)
		}
		keys = append(keys, out["data"].([]any)[0].(map[string]any)["key"].(string))
		if out["has_more"] != true {
			if out["next_cursor"] != nil {
				t.Fatalf("last page with a next_cursor: %v", out)
			}
			break
		}
		cursor = out["next_cursor"].(string)
	}
	if len(keys) != n {
		t.Fatalf("paged %d entries (%v), the whole list has %d", len(keys), keys, n)
	}
	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "cursor=nope"} {
		if st, out, _ := h.call("GET", "/v1/admin/integration-catalog?"+q, tok, nil); st != 400 || errCode(out) != "INVALID_PARAMETER" {
			t.Errorf("?%s: %d %v, want 400 INVALID_PARAMETER", q, st, out)
		}
	}
}

// TestServeEndpointCodes: every endpoint of DESIGN §6, its success and
// each error code it can answer, in the embedded mode.
func TestServeEndpointCodes(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	refresh := out["refresh_token"].(string)
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	a := installButton(t, h, tok, "A", apiKey)
	b := installButton(t, h, tok, "B", apiKey)
	cfg := map[string]any{"application_id": "app-abc123", "api_key": apiKey}
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`

	type tc struct {
		method, path string
		token        string
		body         any
		status       int
		code         string
	}
	cases := []tc{
		// Auth.
		{"POST", "/v1/admin/auth/login", "", nil, 400, "INVALID_JSON"},
		{"POST", "/v1/admin/auth/login", "", `{"email":1}`, 400, "INVALID_JSON"},
		{"POST", "/v1/admin/auth/refresh", "", `{"refresh_token":`, 400, "INVALID_JSON"},
		{"POST", "/v1/admin/auth/refresh", "", `{"token":"x"}`, 400, "UNKNOWN_FIELD"},
		{"POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": "nope"}, 401, "INVALID_TOKEN"},
		{"POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": tok}, 401, "INVALID_TOKEN"}, // an access token is no refresh token
		{"POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh}, 200, ""},
		// Any authenticated endpoint: no token, a forged one, a refresh token.
		{"GET", "/v1/admin/integration-catalog", "", nil, 401, "INVALID_TOKEN"},
		{"GET", "/v1/admin/integration-catalog", "x.y.z", nil, 401, "INVALID_TOKEN"},
		{"GET", "/v1/admin/integration-catalog", refresh, nil, 401, "INVALID_TOKEN"},
		// Catalog.
		{"GET", "/v1/admin/integration-catalog", tok, nil, 200, ""},
		{"GET", "/v1/admin/integration-catalog/button", tok, nil, 200, ""},
		{"GET", "/v1/admin/integration-catalog/nope", tok, nil, 404, "NOT_FOUND"},
		// Install.
		{"POST", "/v1/admin/integration-catalog/nope/install", tok, map[string]any{"name": "X", "config": cfg}, 404, "NOT_FOUND"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, `{"name":`, 400, "INVALID_JSON"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, `{"name":"X","config":"x"}`, 400, "INVALID_JSON"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, `{"name":"X","colour":"red"}`, 400, "UNKNOWN_FIELD"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, big, 413, "BODY_TOO_LARGE"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "A", "config": cfg}, 409, "NAME_TAKEN"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "X", "variant": "nope", "config": cfg}, 422, "INVALID_VARIANT"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "X", "config": cfg, "delivery_mode": "client_side"}, 422, "INVALID_DELIVERY_MODE"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "X", "config": map[string]any{"application_id": 5}}, 422, "INVALID_CONFIG"},
		{"POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "X", "config": cfg, "source_ids": []string{"src_nope"}}, 422, "INVALID_SOURCE"},
		// Integrations.
		{"GET", "/v1/admin/integrations", tok, nil, 200, ""},
		{"GET", "/v1/admin/integrations?limit=101", tok, nil, 200, ""}, // served as 100
		{"GET", "/v1/admin/integrations?limit=0", tok, nil, 400, "INVALID_PARAMETER"},
		{"GET", "/v1/admin/integrations?cursor=nope", tok, nil, 400, "INVALID_PARAMETER"},
		{"GET", "/v1/admin/integrations/" + a, tok, nil, 200, ""},
		{"GET", "/v1/admin/integrations/int_nope", tok, nil, 404, "NOT_FOUND"},
		{"PATCH", "/v1/admin/integrations/int_nope", tok, map[string]any{"name": "Z"}, 404, "NOT_FOUND"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, `{"enabled":"no"}`, 400, "INVALID_JSON"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, `{"colour":"red"}`, 400, "UNKNOWN_FIELD"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, map[string]any{"name": "B"}, 409, "NAME_TAKEN"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, map[string]any{"name": " "}, 422, "INVALID_NAME"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, map[string]any{"variant": "nope"}, 422, "INVALID_VARIANT"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, map[string]any{"config": map[string]any{"api_key": nil}}, 422, "INVALID_CONFIG"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, map[string]any{"source_ids": []string{"src_nope"}}, 422, "INVALID_SOURCE"},
		{"PATCH", "/v1/admin/integrations/" + a, tok, map[string]any{"config": map[string]any{"api_key": "***"}, "variant": "retail"}, 200, ""},
		{"GET", "/v1/admin/integrations/" + a + "/revisions", tok, nil, 200, ""},
		{"GET", "/v1/admin/integrations/" + a + "/revisions?limit=0", tok, nil, 400, "INVALID_PARAMETER"},
		{"GET", "/v1/admin/integrations/int_nope/revisions", tok, nil, 404, "NOT_FOUND"},
		{"DELETE", "/v1/admin/integrations/int_nope", tok, nil, 404, "NOT_FOUND"},
		// Sources.
		{"POST", "/v1/admin/sources", tok, map[string]string{"name": "app"}, 201, ""},
		{"POST", "/v1/admin/sources", tok, map[string]string{"name": "web"}, 409, "NAME_TAKEN"},
		{"POST", "/v1/admin/sources", tok, map[string]string{"name": ""}, 422, "INVALID_NAME"},
		{"POST", "/v1/admin/sources", tok, `{"name":5}`, 400, "INVALID_JSON"},
		{"GET", "/v1/admin/sources", tok, nil, 200, ""},
		// Dead letters.
		{"GET", "/v1/admin/integrations/" + a + "/dlq", tok, nil, 200, ""},
		{"GET", "/v1/admin/integrations/int_nope/dlq", tok, nil, 404, "NOT_FOUND"},
		{"GET", "/v1/admin/integrations/" + a + "/dlq?kind=x", tok, nil, 400, "INVALID_PARAMETER"},
		{"GET", "/v1/admin/integrations/" + a + "/dlq?limit=x", tok, nil, 400, "INVALID_PARAMETER"},
		{"GET", "/v1/admin/integrations/" + a + "/dlq/nope", tok, nil, 404, "NOT_FOUND"},
		{"GET", "/v1/admin/integrations/" + a + "/dlq/rej_nope", tok, nil, 404, "NOT_FOUND"},
		{"POST", "/v1/admin/integrations/int_nope/dlq/replay", tok, map[string]any{"all": true}, 404, "NOT_FOUND"},
		{"POST", "/v1/admin/integrations/" + a + "/dlq/replay", tok, `{"all":`, 400, "INVALID_JSON"},
		{"POST", "/v1/admin/integrations/" + a + "/dlq/replay", tok, `{}`, 422, "INVALID_REPLAY"},
		{"POST", "/v1/admin/integrations/" + a + "/dlq/replay", tok, map[string]any{"ids": []string{"nope"}}, 404, "NOT_FOUND"},
		{"POST", "/v1/admin/integrations/" + a + "/dlq/replay", tok, map[string]any{"all": true}, 200, ""},
		// Disabled: no replay (409), and enabled again.
		{"PATCH", "/v1/admin/integrations/" + b, tok, map[string]any{"enabled": false}, 200, ""},
		{"POST", "/v1/admin/integrations/" + b + "/dlq/replay", tok, map[string]any{"all": true}, 409, "INTEGRATION_DISABLED"},
		{"PATCH", "/v1/admin/integrations/" + b, tok, map[string]any{"enabled": true}, 200, ""},
		{"DELETE", "/v1/admin/integrations/" + b, tok, nil, 204, ""},
		// Users.
		{"POST", "/v1/admin/users", tok, map[string]string{"email": "x@example.com", "password": "short"}, 422, "INVALID_PASSWORD"},
		{"GET", "/v1/admin/users", tok, nil, 200, ""},
		{"DELETE", "/v1/admin/users/usr_nope", tok, nil, 404, "NOT_FOUND"},
		{"PATCH", "/v1/admin/users/usr_nope", tok, map[string]string{"role": "viewer"}, 404, "NOT_FOUND"},
		{"PATCH", "/v1/admin/users/usr_nope", tok, `{"email":"x@example.com"}`, 400, "UNKNOWN_FIELD"},
		{"PATCH", "/v1/admin/users/usr_nope", tok, map[string]string{"role": "admin"}, 422, "INVALID_ROLE"},
		{"PATCH", "/v1/admin/users/usr_nope", tok, map[string]string{"password": "short"}, 422, "INVALID_PASSWORD"},
		{"POST", "/v1/admin/users/me/password", tok, map[string]string{"current_password": adminPass, "new_password": "short"}, 422, "INVALID_PASSWORD"},
		{"POST", "/v1/admin/users/me/password", tok, map[string]string{"current_password": "wrong-pass", "new_password": "a-long-password"}, 401, "INVALID_CREDENTIALS"},
		{"POST", "/v1/admin/users/me/password", tok, `{"password":"x"}`, 400, "UNKNOWN_FIELD"},
		// Unknown endpoints.
		{"GET", "/v1/admin/nope", tok, nil, 404, "NOT_FOUND"},
	}
	for _, c := range cases {
		st, out, _ := h.call(c.method, c.path, c.token, c.body)
		if st != c.status || errCode(out) != c.code {
			t.Errorf("%s %s %.80v: %d %.300v, want %d %s", c.method, c.path, c.body, st, out, c.status, c.code)
		}
		if st >= 400 {
			e, _ := out["error"].(map[string]any)
			if m, _ := e["message"].(string); m == "" {
				t.Errorf("%s %s: error without a message: %v", c.method, c.path, out)
			}
			if st == 422 {
				if f, _ := e["fields"].([]any); len(f) == 0 {
					t.Errorf("%s %s: 422 without fields: %v", c.method, c.path, out)
				}
			}
		}
	}

	// Open endpoints, no token.
	for _, p := range []string{h.admin + "/metrics", h.admin + "/healthz", h.admin + "/readyz", h.admin + "/v1/admin/openapi.json", h.admin + "/", h.ingest + "/healthz"} {
		resp, err := http.Get(p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}

	// Live: 401 without a token, 403 from another origin, 101 with one.
	ws := "ws" + strings.TrimPrefix(h.admin, "http") + "/v1/admin/live"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, resp, err := websocket.Dial(ctx, ws, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("live without a token: %v %v", err, resp)
	}
	if _, resp, err := websocket.Dial(ctx, ws+"?access_token="+tok, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"https://evil.example"}}}); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("live from another origin: %v %v", err, resp)
	}
	c, _, err := websocket.Dial(ctx, ws+"?access_token="+tok+"&integration_id="+a, nil)
	if err != nil {
		t.Fatalf("live with ?access_token=: %v", err)
	}
	c.CloseNow()

	// Ingestion.
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)
	now := time.Now().UnixMilli()
	send := func(path string, body []byte, hdr map[string]string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", h.ingest+path, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	sign := func(ts string, body []byte) string {
		m := hmac.New(sha256.New, []byte(sk))
		m.Write([]byte(ts + "."))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	ev := order("i-1")
	stamp := strconv.FormatInt(now, 10)
	for _, c := range []struct {
		name   string
		hdr    map[string]string
		status int
		code   string
	}{
		{"no pipeline key", map[string]string{"X-Timestamp": stamp, "X-Signature": sign(stamp, ev)}, 401, "MISSING_PIPELINE_KEY"},
		{"no signature", map[string]string{"Authorization": "Bearer " + pk, "X-Timestamp": stamp}, 401, "MISSING_SIGNATURE"},
		{"no timestamp", map[string]string{"Authorization": "Bearer " + pk, "X-Signature": sign(stamp, ev)}, 401, "MISSING_SIGNATURE"},
		{"timestamp not unix ms", map[string]string{"Authorization": "Bearer " + pk, "X-Timestamp": "yesterday", "X-Signature": sign("yesterday", ev)}, 401, "INVALID_TIMESTAMP"},
		{"timestamp 6 min ahead", map[string]string{"Authorization": "Bearer " + pk, "X-Timestamp": strconv.FormatInt(now+6*60*1000, 10), "X-Signature": sign(strconv.FormatInt(now+6*60*1000, 10), ev)}, 401, "STALE_TIMESTAMP"},
		{"signature without sha256=", map[string]string{"Authorization": "Bearer " + pk, "X-Timestamp": stamp, "X-Signature": strings.TrimPrefix(sign(stamp, ev), "sha256=")}, 401, "INVALID_SIGNATURE"},
		{"signed", map[string]string{"Authorization": "Bearer " + pk, "X-Timestamp": stamp, "X-Signature": sign(stamp, ev)}, 200, ""},
	} {
		st, out := send("/v1/events", ev, c.hdr)
		if st != c.status || errCode(out) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, st, out, c.status, c.code)
		}
	}
	// A batch: an item over 64 KB fails alone; over 5 MB the whole batch is 413.
	item := `{"type":"page","p":"` + strings.Repeat("x", 64<<10) + `"}`
	st, res := h.post("/v1/batch", pk, sk, []byte(`{"batch":[`+string(order("i-2"))+`,`+item+`]}`), now)
	if f, _ := res["failed"].([]any); st != 200 || res["accepted"] != float64(1) || len(f) != 1 ||
		f[0].(map[string]any)["index"] != float64(1) || f[0].(map[string]any)["error"].(map[string]any)["code"] != "EVENT_TOO_LARGE" {
		t.Errorf("batch with an item over 64 KB: %d %v", st, res)
	}
	items := strings.TrimSuffix(strings.Repeat(`{"type":"page","p":"`+strings.Repeat("x", 60000)+`"},`, 90), ",")
	if st, res = h.post("/v1/batch", pk, sk, []byte(`{"batch":[`+items+`]}`), now); st != 413 || errCode(res) != "BATCH_TOO_LARGE" {
		t.Errorf("batch over 5 MB: %d %v", st, res)
	}
	if st, res = h.post("/v1/batch", pk, sk, []byte(`{"batch":[]}`), now); st != 200 || res["accepted"] != float64(0) {
		t.Errorf("empty batch: %d %v", st, res)
	}
}

// TestServeLoginLockAndRefreshExpiry: five wrong passwords lock the
// account for 15 minutes (429 ACCOUNT_LOCKED with Retry-After, even with
// the right password); a refresh token lasts 7 days (then 401
// EXPIRED_TOKEN).
func TestServeLoginLockAndRefreshExpiry(t *testing.T) {
	h := start(t)
	_, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	refresh := out["refresh_token"].(string)
	for i := range 5 {
		st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": "wrong-" + strconv.Itoa(i)})
		// Each wrong password is 401, the fifth too (it locks the
		// account: the lock answers the attempts after it).
		if st != 401 || errCode(out) != "INVALID_CREDENTIALS" {
			t.Fatalf("wrong password %d: %d %v", i+1, st, out)
		}
	}
	st, out, hdr := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	if st != 429 || errCode(out) != "ACCOUNT_LOCKED" {
		t.Fatalf("locked: %d %v", st, out)
	}
	if ra, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || ra < 14*60 || ra > 15*60 {
		t.Fatalf("locked: Retry-After %q, want about 900 s", hdr.Get("Retry-After"))
	}
	h.clock.Store(int64(16 * time.Minute))
	if st, out, _ = h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass}); st != 200 {
		t.Fatalf("after 15 minutes: %d %v", st, out)
	}
	h.clock.Store(int64(7*24*time.Hour + time.Minute))
	if st, out, _ = h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 || errCode(out) != "EXPIRED_TOKEN" {
		t.Fatalf("refresh after 7 days: %d %v", st, out)
	}
}

// TestServeRenameMakesRevision: DESIGN §6, "PATCH of config, variant or
// name makes a new immutable revision". A rename keeps the config (the
// secret too: orders are still delivered with it); enabled alone makes
// none.
func TestServeRenameMakesRevision(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	id := installButton(t, h, tok, "Button", apiKey)
	st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"name": "Button EU"})
	rev, _ := out["revision"].(map[string]any)
	if st != 200 || out["name"] != "Button EU" || rev["revision_number"] != float64(2) || rev["change_summary"] != "renamed" ||
		rev["config"].(map[string]any)["api_key"] != "***" || rev["config"].(map[string]any)["application_id"] != "app-abc123" {
		t.Fatalf("rename: %d %v", st, out)
	}
	if st, out, _ = h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"name": "Button EU"}); st != 200 || out["revision"].(map[string]any)["revision_number"] != float64(2) {
		t.Fatalf("the same name again: %d %v, want revision 2 still", st, out)
	}
	if st, out, _ = h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"enabled": false}); st != 200 || out["revision"].(map[string]any)["revision_number"] != float64(2) {
		t.Fatalf("disable: %d %v, want revision 2 still", st, out)
	}
	h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"enabled": true})
	_, revs, _ := h.call("GET", "/v1/admin/integrations/"+id+"/revisions", tok, nil)
	list := revs["data"].([]any)
	if len(list) != 2 || list[0].(map[string]any)["name"] != "Button EU" || list[1].(map[string]any)["name"] != "Button" {
		t.Fatalf("revisions: %v", revs)
	}
	if st, res := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order("r-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, res)
	}
	waitFor(t, "the order at the fake, sent with the kept key", func() bool { _, ok := h.fake.Order("r-1"); return ok })
}

// TestServeDeadLetterListShape: each entry of the dead-letter list is in
// the shape of the platform's dlq-events (error, details, fields,
// integration_id, original_event), secrets scrubbed, for dead deliveries
// and rejects alike.
func TestServeDeadLetterListShape(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	const wrong = "sk-wrong-777"
	id := installButton(t, h, tok, "Button", wrong)
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)
	now := time.Now().UnixMilli()
	h.post("/v1/events", pk, sk, order("d-1"), now)
	bad := []byte(`{"type":"track","event":"Order Completed","messageId":"m-bad","context":{"consent":{"advertising":true}},"properties":{"note":"` + wrong + `","total":1,"currency":"USD"}}`)
	h.post("/v1/events", pk, sk, bad, now)
	var list []any
	waitFor(t, "a dead delivery and a reject", func() bool {
		_, out, _ := h.call("GET", "/v1/admin/integrations/"+id+"/dlq", tok, nil)
		list, _ = out["data"].([]any)
		return len(list) == 2
	})
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), wrong) {
		t.Fatalf("a secret in the dead-letter list: %s", raw)
	}
	kinds := map[string]bool{}
	for _, x := range list {
		e := x.(map[string]any)
		kinds[e["kind"].(string)] = true
		for _, k := range []string{"error", "details", "fields", "integration_id", "original_event"} {
			if _, ok := e[k]; !ok {
				t.Errorf("%s dead letter without %s: %v", e["kind"], k, e)
			}
		}
		if ev, _ := e["original_event"].(map[string]any); ev["messageId"] == nil {
			t.Errorf("%s dead letter's original_event: %v", e["kind"], e["original_event"])
		}
	}
	if !kinds["delivery"] || !kinds["reject"] {
		t.Fatalf("kinds %v", kinds)
	}
}
