package service_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/internal/service/auth"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

const (
	adminEmail = "admin@example.com"
	adminPass  = "change-me-now"
	apiKey     = fakebutton.DefaultAPIKey // sk-test-123
)

// harness is a running service on loopback ports, with a fake Button.
type harness struct {
	t      *testing.T
	svc    *service.Service
	state  string
	admin  string
	ingest string
	fake   *fakebutton.Server
	vendor *url.URL     // the fake's
	clock  atomic.Int64 // offset added to the real time, ns
	cancel context.CancelFunc
	done   chan error
}

// The users these tests create and change by the API get hashes of the
// lowest cost, as seedOwner's owner does (a cost-12 hash takes seconds
// under -race, and the user tests make dozens).
func init() { auth.SetHashCost(bcrypt.MinCost) }

// options change what startWith builds; the zero value is start's.
type options struct {
	// fastOwner creates the owner before the service starts, with a bcrypt
	// hash of the lowest cost (see seedOwner): under the race detector a
	// cost-12 hash or login takes seconds. Tests of the first start leave
	// it false.
	fastOwner bool
	// poll is how often the delivery worker looks at the outbox (10 ms
	// when 0).
	poll time.Duration
	// kafka, when set, runs the service in Kafka mode.
	kafka *service.KafkaConfig
	// logger, when set, is the service's logger (else testLogger).
	logger *slog.Logger
	// vendor, when set, answers the service's vendor requests instead of
	// the fake Button.
	vendor http.Handler
	// state, when set, is the state directory (one a service ran on: its
	// owner is not seeded again); else a new one.
	state string
}

// start starts a service whose owner has a cheap password hash (a
// cost-12 hash takes seconds under -race); TestServeEndToEnd creates the
// owner the way serve does.
func start(t *testing.T) *harness {
	t.Helper()
	return startWith(t, options{fastOwner: true})
}

func startWith(t *testing.T, o options) *harness {
	t.Helper()
	h := &harness{t: t, state: cmp.Or(o.state, t.TempDir()), fake: fakebutton.New(fakebutton.Options{})}
	if o.fastOwner && o.state == "" {
		seedOwner(t, h.state, adminEmail, adminPass)
	}
	if o.poll == 0 {
		o.poll = 10 * time.Millisecond
	}
	var vh http.Handler = h.fake
	if o.vendor != nil {
		vh = o.vendor
	}
	fsrv := httptest.NewServer(vh)
	t.Cleanup(fsrv.Close)
	u, _ := url.Parse(fsrv.URL)
	h.vendor = u
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	h.svc, err = service.New(service.Config{
		StateDir: h.state, AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat,
		Delivery: delivery.Options{Sender: send.Options{VendorURL: u}, Policy: send.Policy{Base: 20 * time.Millisecond, Cap: 50 * time.Millisecond, MaxAttempts: 3},
			Poll: o.poll},
		AdminEmail: adminEmail, AdminPassword: adminPass, Kafka: o.kafka,
		Now:    func() time.Time { return time.Now().Add(time.Duration(h.clock.Load())) },
		Logger: cmp.Or(o.logger, testLogger()),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.admin, h.ingest = "http://"+h.svc.AdminAddr(), "http://"+h.svc.IngestAddr()
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- h.svc.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// seedOwner creates the owner in the state at dir as the first start
// would, but with a bcrypt hash of the lowest cost, so that logins are
// cheap; the service then starts on a state that has a user.
func seedOwner(t *testing.T, dir, email, password string) {
	t.Helper()
	key, err := store.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "service.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(&store.User{Email: email, PasswordHash: string(hash), Role: "owner"}); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run: %v", err)
	}
	h.cancel = nil
}

// call makes a management request and decodes the JSON answer: body
// nil sends none, a string as it is, anything else as its JSON, with
// Content-Type application/json.
func (h *harness) call(method, path, token string, body any) (int, map[string]any, http.Header) {
	h.t.Helper()
	var text, ct string
	switch b := body.(type) {
	case nil:
	case string:
		text, ct = b, "application/json"
	default:
		j, _ := json.Marshal(b)
		text, ct = string(j), "application/json"
	}
	return h.raw(method, path, token, ct, text)
}

func (h *harness) login() string {
	h.t.Helper()
	st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	if st != 200 {
		h.t.Fatalf("login: %d %v", st, out)
	}
	return out["access_token"].(string)
}

// post signs body with the source's secret and posts it to path.
func (h *harness) post(path, pipelineKey, secret string, body []byte, ts int64) (int, map[string]any) {
	h.t.Helper()
	stamp := strconv.FormatInt(ts, 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(stamp + "."))
	m.Write(body)
	req, _ := http.NewRequest("POST", h.ingest+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+pipelineKey)
	req.Header.Set("X-Timestamp", stamp)
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func order(id string) []byte {
	return []byte(`{"type":"track","event":"Order Completed","messageId":"m-` + id + `","timestamp":"2026-02-25T14:30:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"` + id + `","total":25.5,"currency":"USD","products":[{"sku":"S-1","name":"Tee","price":12.75,"quantity":2}]}}`)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestServeEndToEnd walks the integration page: login, the seed's install
// body, a source, signed orders delivered to the fake Button, a wrong key
// making 401 dead letters, a PATCH and a replay delivering them, metrics
// counting it, and no secret anywhere in the state directory.
func TestServeEndToEnd(t *testing.T) {
	h := startWith(t, options{}) // the owner from BLUEPRINT_ADMIN_*, hashed as serve hashes it
	tok := h.login()

	// Catalog.
	st, out, _ := h.call("GET", "/v1/admin/integration-catalog", tok, nil)
	if st != 200 || len(out["data"].([]any)) < 8 {
		t.Fatalf("catalog: %d %v", st, out)
	}
	if st, out, _ = h.call("GET", "/v1/admin/integration-catalog/button", tok, nil); st != 200 || out["key"] != "button" || out["status"] != "beta" {
		t.Fatalf("catalog button: %d %v", st, out)
	}
	if st, out, _ = h.call("GET", "/v1/admin/integration-catalog/nope", tok, nil); st != 404 || errCode(out) != "NOT_FOUND" {
		t.Fatalf("unknown key: %d %v", st, out)
	}

	// Install with the seed's body (a wrong key first, on purpose).
	seed := `{"name": "Button", "variant": "default", "config": {"application_id": "app-abc123", "api_key": "sk-wrong-999"}, "delivery_mode": "server_side"}`
	st, out, _ = h.call("POST", "/v1/admin/integration-catalog/button/install", tok, seed)
	if st != 201 || out["config"].(map[string]any)["api_key"] != "***" || out["revision"].(map[string]any)["revision_number"] != float64(1) {
		t.Fatalf("install: %d %v", st, out)
	}
	id := out["id"].(string)
	if st, out, _ = h.call("POST", "/v1/admin/integration-catalog/button/install", tok, seed); st != 409 || errCode(out) != "NAME_TAKEN" {
		t.Fatalf("duplicate name: %d %v", st, out)
	}
	st, out, _ = h.call("POST", "/v1/admin/integration-catalog/button/install", tok, `{"name":"B2","config":{"application_id":"nope"}}`)
	if st != 422 || errCode(out) != "INVALID_CONFIG" || !strings.Contains(strings.Join(anyStrings(out["error"].(map[string]any)["fields"]), ","), "api_key") {
		t.Fatalf("bad config: %d %v", st, out)
	}

	// A source, and signed orders.
	st, out, _ = h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	if st != 201 {
		t.Fatalf("source: %d %v", st, out)
	}
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)
	now := time.Now().UnixMilli()
	if st, out = h.post("/v1/events", pk, sk, order("o-1"), now); st != 200 || out["success"] != true {
		t.Fatalf("ingest: %d %v", st, out)
	}
	if st, out = h.post("/v1/batch", pk, sk, []byte(`{"batch":[`+string(order("o-2"))+`,"not an event"]}`), now); st != 200 || out["accepted"] != float64(1) || len(out["failed"].([]any)) != 1 {
		t.Fatalf("batch: %d %v", st, out)
	}

	// The wrong key: Button answers 401, never retried: two dead letters.
	var dlq map[string]any
	waitFor(t, "two dead letters", func() bool {
		_, dlq, _ = h.call("GET", "/v1/admin/integrations/"+id+"/dlq", tok, nil)
		d, _ := dlq["data"].([]any)
		return len(d) == 2
	})
	first := dlq["data"].([]any)[0].(map[string]any)
	if first["status"] != float64(401) || first["kind"] != "delivery" {
		t.Fatalf("dead letter: %v", first)
	}
	if st, out, _ = h.call("GET", "/v1/admin/integrations/"+id+"/dlq/"+first["id"].(string), tok, nil); st != 200 || out["original_event"] == nil {
		t.Fatalf("dead letter get: %d %v", st, out)
	}

	// PATCH the key (a new revision) and replay: delivered.
	st, out, _ = h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"config": map[string]any{"api_key": apiKey}, "change_summary": "fix the key"})
	if st != 200 || out["revision"].(map[string]any)["revision_number"] != float64(2) || out["config"].(map[string]any)["api_key"] != "***" {
		t.Fatalf("patch: %d %v", st, out)
	}
	if st, out, _ = h.call("POST", "/v1/admin/integrations/"+id+"/dlq/replay", tok, map[string]bool{"all": true}); st != 200 || out["replayed"] != float64(2) {
		t.Fatalf("replay: %d %v", st, out)
	}
	waitFor(t, "both orders at the fake", func() bool { return len(h.fake.Orders()) == 2 })
	waitFor(t, "an empty dead-letter view", func() bool {
		_, dlq, _ = h.call("GET", "/v1/admin/integrations/"+id+"/dlq?kind=delivery", tok, nil)
		return len(dlq["data"].([]any)) == 0
	})
	if st, out, _ = h.call("GET", "/v1/admin/integrations/"+id+"/revisions", tok, nil); st != 200 || len(out["data"].([]any)) != 2 {
		t.Fatalf("revisions: %d %v", st, out)
	}

	// Metrics count it, once the worker has stored both final states (the
	// fake has the orders a moment before).
	var m []byte
	delivered := `blueprint_requests_final_total{integration="` + id + `",state="delivered"} 2`
	waitFor(t, "both deliveries counted", func() bool {
		resp, err := http.Get(h.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.Contains(string(m), delivered)
	})
	for _, want := range []string{`blueprint_events_ingested_total{result="accepted",source="src_`, `blueprint_decisions_total{integration="` + id + `",outcome="deliver",reason=""} 2`,
		`blueprint_vendor_attempts_total{integration="` + id + `",outcome="failed",status_class="4xx"} 2`, `blueprint_requests_final_total{integration="` + id + `",state="delivered"} 2`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// No secret in the state directory, in clear.
	h.stop()
	filepath.WalkDir(h.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, secret := range []string{apiKey, "sk-wrong-999", sk} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds a secret in clear", p)
			}
		}
		return nil
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestServeIngestRefusals: every way ingestion refuses, with its code.
func TestServeIngestRefusals(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, out, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)
	now := time.Now().UnixMilli()
	cases := []struct {
		name   string
		path   string
		key    string
		secret string
		body   []byte
		ts     int64
		status int
		code   string
	}{
		{"unknown pipeline key", "/v1/events", "dk_live_nope", sk, order("a"), now, 401, "INVALID_PIPELINE_KEY"},
		{"signed with another key", "/v1/events", pk, "other-secret", order("a"), now, 401, "INVALID_SIGNATURE"},
		{"stale timestamp", "/v1/events", pk, sk, order("a"), now - 6*60*1000, 401, "STALE_TIMESTAMP"},
		{"not an object", "/v1/events", pk, sk, []byte(`[1]`), now, 400, "INVALID_EVENT"},
		{"over 64 KB", "/v1/events", pk, sk, []byte(`{"p":"` + strings.Repeat("x", 64<<10) + `"}`), now, 413, "EVENT_TOO_LARGE"},
		{"501 events", "/v1/batch", pk, sk, []byte(`{"batch":[` + strings.TrimSuffix(strings.Repeat(`{"type":"page"},`, 501), ",") + `]}`), now, 400, "TOO_MANY_EVENTS"},
		{"batch not an object", "/v1/batch", pk, sk, []byte(`[{"type":"page"}]`), now, 400, "INVALID_BATCH"},
	}
	for _, c := range cases {
		st, out := h.post(c.path, c.key, c.secret, c.body, c.ts)
		if st != c.status || errCode(out) != c.code {
			t.Errorf("%s: got %d %v, want %d %s", c.name, st, out, c.status, c.code)
		}
	}
	// A signature over another body.
	req, _ := http.NewRequest("POST", h.ingest+"/v1/events", bytes.NewReader(order("b")))
	req.Header.Set("Authorization", "Bearer "+pk)
	stamp := strconv.FormatInt(now, 10)
	m := hmac.New(sha256.New, []byte(sk))
	m.Write([]byte(stamp + "." + string(order("c"))))
	req.Header.Set("X-Timestamp", stamp)
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("signature over a different body: %d", resp.StatusCode)
	}
	// No signature at all.
	req, _ = http.NewRequest("POST", h.ingest+"/v1/events", bytes.NewReader(order("b")))
	req.Header.Set("Authorization", "Bearer "+pk)
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("no signature: %d", resp.StatusCode)
	}
}

// TestServeAuthErrors: tokens, lockout and rate limit.
func TestServeAuthErrors(t *testing.T) {
	h := start(t)
	if st, out, _ := h.call("GET", "/v1/admin/integrations", "", nil); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Fatalf("no token: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", `{"email":`); st != 400 || errCode(out) != "INVALID_JSON" {
		t.Fatalf("bad JSON: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", `{"email":"a","password":"b","x":1}`); st != 400 || errCode(out) != "UNKNOWN_FIELD" {
		t.Fatalf("unknown field: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": "wrong-password"}); st != 401 || errCode(out) != "INVALID_CREDENTIALS" {
		t.Fatalf("wrong password: %d %v", st, out)
	}
	tok := h.login()
	st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	refresh := out["refresh_token"].(string)
	// Refresh rotates; the old one replayed signs the user out.
	st, out, _ = h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh})
	if st != 200 || out["refresh_token"] == refresh {
		t.Fatalf("refresh: %d %v", st, out)
	}
	if st, out, _ = h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Fatalf("reuse: %d %v", st, out)
	}
	// Expired access token.
	h.clock.Store(int64(16 * time.Minute))
	if st, out, _ = h.call("GET", "/v1/admin/integrations", tok, nil); st != 401 || errCode(out) != "EXPIRED_TOKEN" {
		t.Fatalf("expired: %d %v", st, out)
	}
	h.clock.Store(0)
	tok = h.login()
	// 100 requests a minute, then 429 with Retry-After.
	var last int
	var hdr http.Header
	for range 101 {
		last, _, hdr = h.call("GET", "/v1/admin/integrations", tok, nil)
	}
	if last != 429 || hdr.Get("Retry-After") == "" {
		t.Fatalf("rate limit: %d %v", last, hdr)
	}
}

// TestServeSourceIDsNarrow: an integration that lists source_ids receives
// only the events of those sources.
func TestServeSourceIDsNarrow(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, a, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "app"})
	_, b, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button app", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}, "source_ids": []string{a["id"].(string)}})
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	if st, out, _ = h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Bad", "config": map[string]any{"application_id": "app-abc123", "api_key": apiKey},
		"source_ids": []string{"src_nope"}}); st != 422 || errCode(out) != "INVALID_SOURCE" {
		t.Fatalf("unknown source: %d %v", st, out)
	}
	now := time.Now().UnixMilli()
	h.post("/v1/events", b["pipeline_key"].(string), b["secret_key"].(string), order("from-web"), now)
	h.post("/v1/events", a["pipeline_key"].(string), a["secret_key"].(string), order("from-app"), now)
	waitFor(t, "the app's order", func() bool { _, ok := h.fake.Order("from-app"); return ok })
	time.Sleep(100 * time.Millisecond)
	if _, ok := h.fake.Order("from-web"); ok {
		t.Fatal("an event of another source was delivered")
	}
}

// TestServeRejectsInDeadLetters: a rejected event is in the integration's
// dead-letter view with its reason and fields, in the dlq-events shape,
// and no secret.
func TestServeRejectsInDeadLetters(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	_, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}})
	id := out["id"].(string)
	bad := []byte(`{"type":"track","event":"Order Completed","messageId":"m-bad","context":{"consent":{"advertising":true}},"properties":{"note":"` + apiKey + `","total":1,"currency":"USD"}}`)
	if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), bad, time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	var dlq map[string]any
	waitFor(t, "the reject", func() bool {
		_, dlq, _ = h.call("GET", "/v1/admin/integrations/"+id+"/dlq?kind=reject", tok, nil)
		return len(dlq["data"].([]any)) == 1
	})
	rj := dlq["data"].([]any)[0].(map[string]any)
	if rj["error"] != "missing_required_field" || !strings.Contains(strings.Join(anyStrings(rj["fields"]), ","), "order_id") || rj["integration_id"] != id {
		t.Fatalf("reject: %v", rj)
	}
	_, one, _ := h.call("GET", "/v1/admin/integrations/"+id+"/dlq/"+rj["id"].(string), tok, nil)
	raw, _ := json.Marshal(one)
	if strings.Contains(string(raw), apiKey) || one["original_event"] == nil {
		t.Fatalf("reject shown with its secret, or without its event: %s", raw)
	}
	if st, out, _ := h.call("POST", "/v1/admin/integrations/"+id+"/dlq/replay", tok, map[string]any{"ids": []string{rj["id"].(string)}}); st != 200 || out["replayed"] != float64(1) {
		t.Fatalf("replay: %d %v", st, out)
	}
}

// TestServeDeleteWithQueuedRequests: deleting an integration whose
// requests are still in the outbox is refused (they would be stranded),
// unless forced, which drops them.
func TestServeDeleteWithQueuedRequests(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	_, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": "sk-wrong-1"}})
	id := out["id"].(string)
	h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order("q-1"), time.Now().UnixMilli())
	waitFor(t, "a dead letter", func() bool {
		_, dlq, _ := h.call("GET", "/v1/admin/integrations/"+id+"/dlq?kind=delivery", tok, nil)
		return len(dlq["data"].([]any)) == 1
	})
	if st, out, _ := h.call("DELETE", "/v1/admin/integrations/"+id, tok, nil); st != 409 || errCode(out) != "INTEGRATION_HAS_QUEUED" {
		t.Fatalf("delete with a dead letter: %d %v", st, out)
	}
	if st, out, _ := h.call("DELETE", "/v1/admin/integrations/"+id+"?force=true", tok, nil); st != 204 {
		t.Fatalf("forced delete: %d %v", st, out)
	}
	if st, _, _ := h.call("GET", "/v1/admin/integrations/"+id, tok, nil); st != 404 {
		t.Fatalf("after delete: %d", st)
	}
}

// testLogger is the service's logger in tests: none, unless
// BLUEPRINT_TEST_LOG=1 asks for it on standard error (to see why a test
// fails).
func testLogger() *slog.Logger {
	if os.Getenv("BLUEPRINT_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
