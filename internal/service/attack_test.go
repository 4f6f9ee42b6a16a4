package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"net/http/httptest"

	"github.com/coder/websocket"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// startOn is start over a given state directory and catalog.
func startOn(t *testing.T, state string, cat *engine.Catalog, tweak ...func(*service.Config)) *harness {
	t.Helper()
	h := &harness{t: t, state: state, fake: fakebutton.New(fakebutton.Options{})}
	fsrv := httptest.NewServer(h.fake)
	t.Cleanup(fsrv.Close)
	u, _ := url.Parse(fsrv.URL)
	cfg := service.Config{
		StateDir: h.state, AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat,
		Delivery: delivery.Options{Sender: send.Options{VendorURL: u}, Policy: send.Policy{Base: 20 * time.Millisecond, Cap: 50 * time.Millisecond, MaxAttempts: 3},
			Poll: 10 * time.Millisecond},
		AdminEmail: adminEmail, AdminPassword: adminPass,
		Now: func() time.Time { return time.Now().Add(time.Duration(h.clock.Load())) },
	}
	for _, f := range tweak {
		f(&cfg)
	}
	var err error
	h.svc, err = service.New(cfg)
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

// hideFS hides the blueprints of one vendor directory.
type hideFS struct {
	fs.FS
	dir string
}

func (h hideFS) Open(name string) (fs.File, error) {
	if name == h.dir || strings.HasPrefix(name, h.dir+"/") {
		return nil, fs.ErrNotExist
	}
	return h.FS.Open(name)
}

func (h hideFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(h.FS, name)
	if err != nil {
		return nil, err
	}
	out := es[:0:0]
	for _, e := range es {
		p := e.Name()
		if name != "." {
			p = name + "/" + p
		}
		if p != h.dir {
			out = append(out, e)
		}
	}
	return out, nil
}

func installButton(t *testing.T, h *harness, tok, name, key string) string {
	t.Helper()
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok,
		map[string]any{"name": name, "config": map[string]any{"application_id": "app-abc123", "api_key": key}})
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	return out["id"].(string)
}

// A secret must stay masked even when the integration's blueprint is no
// longer in the catalog (a release that dropped a version): the answer
// must not fall back to showing the config as stored.
func TestAttackSecretsMaskedWithoutBlueprint(t *testing.T) {
	state := t.TempDir()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	h := startOn(t, state, cat)
	tok := h.login()
	id := installButton(t, h, tok, "B", "sk-very-secret-777")
	h.stop()

	cat2, err := engine.NewCatalog(hideFS{blueprints.FS, "button"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat2.Compile("button@0.1.0"); err == nil {
		t.Fatal("button still in the catalog")
	}
	h2 := startOn(t, state, cat2)
	tok = h2.login()
	for _, p := range []string{"/v1/admin/integrations/" + id, "/v1/admin/integrations", "/v1/admin/integrations/" + id + "/revisions"} {
		st, out, _ := h2.call("GET", p, tok, nil)
		if st != 200 {
			t.Fatalf("%s: %d %v", p, st, out)
		}
		if b := mustJSON(out); strings.Contains(b, "sk-very-secret-777") {
			t.Errorf("%s shows the secret: %s", p, b)
		}
	}
}

// A replay naming an item that does not exist, or one of another
// integration, is the caller's mistake: not a 500, and nothing replayed.
func TestAttackReplayBogusAndForeignIDs(t *testing.T) {
	h := start(t)
	tok := h.login()
	a := installButton(t, h, tok, "A", "sk-wrong-1")
	b := installButton(t, h, tok, "B", "sk-wrong-2")
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order("x1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	var bItem string
	waitFor(t, "B's dead letter", func() bool {
		_, out, _ := h.call("GET", "/v1/admin/integrations/"+b+"/dlq?kind=delivery", tok, nil)
		d, _ := out["data"].([]any)
		if len(d) == 1 {
			bItem = d[0].(map[string]any)["id"].(string)
			return true
		}
		return false
	})
	for _, ids := range [][]string{{"nope"}, {"../../etc/passwd"}, {bItem}} {
		st, out, _ := h.call("POST", "/v1/admin/integrations/"+a+"/dlq/replay", tok, map[string]any{"ids": ids})
		if st != 404 || errCode(out) != "NOT_FOUND" {
			t.Errorf("replay %v on A: %d %v, want 404 NOT_FOUND", ids, st, out)
		}
	}
	_, out, _ := h.call("GET", "/v1/admin/integrations/"+b+"/dlq/"+bItem, tok, nil)
	if out["id"] != bItem {
		t.Errorf("B's dead letter changed: %v", out)
	}
}

// A live stream outlives neither its access token: it ends when the token
// expires.
func TestAttackLiveEndsWithToken(t *testing.T) {
	h := start(t)
	before := time.Now()
	tok := h.login()
	// The token has a few seconds left (it was stamped before bcrypt ran,
	// which takes a while under -race).
	h.clock.Store(int64(15*time.Minute - time.Since(before) - 4*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.admin, "http")+"/v1/admin/live", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	_, _, err = c.Read(rctx)
	if err == nil || rctx.Err() != nil {
		t.Fatalf("the stream is still open after the token expired: %v", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A batch of millions of tiny items (5 MB of "1,") is refused without
// building a parsed value per item (about a gigabyte).
func TestAttackHugeBatchCountIsCheap(t *testing.T) {
	h := start(t)
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	body := append([]byte(`{"batch":[`), bytes.Repeat([]byte("1,"), 2_400_000)...)
	body = append(body[:len(body)-1], ']', '}')
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	st, out := h.post("/v1/batch", src["pipeline_key"].(string), src["secret_key"].(string), body, time.Now().UnixMilli())
	runtime.ReadMemStats(&m1)
	if st != 400 || errCode(out) != "TOO_MANY_EVENTS" {
		t.Fatalf("batch: %d %v", st, out)
	}
	if mb := (m1.TotalAlloc - m0.TotalAlloc) >> 20; mb > 200 {
		t.Errorf("refusing a 5 MB batch allocated %d MB", mb)
	}
}

// Logins with ever new emails from one address are limited too: each costs
// a bcrypt comparison, and a limit per email alone lets one client keep
// every CPU busy without a password.
func TestAttackLoginFloodOfEmails(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	// The clock stands still: each login costs a bcrypt comparison, which
	// under -race on a loaded machine took long enough for the limiter to
	// refill between them.
	frozen := time.Now()
	h := startOn(t, t.TempDir(), cat, func(c *service.Config) { c.RatePerMinute, c.Now = 3, func() time.Time { return frozen } })
	codes := []string{}
	for i := range 5 {
		st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": "x" + strconv.Itoa(i) + "@example.com", "password": "whatever-123"})
		codes = append(codes, strconv.Itoa(st)+" "+errCode(out))
	}
	if codes[4] != "429 RATE_LIMITED" {
		t.Fatalf("five logins with five emails from one address: %v", codes)
	}
}

// No step of the live stream shows an integration's secret, whatever the
// event holds (the received step was scrubbed; the decision was not).
func TestAttackLiveNoSecretInDecision(t *testing.T) {
	h := start(t)
	tok := h.login()
	installButton(t, h, tok, "B", apiKey)
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.admin, "http")+"/v1/admin/live?access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	evs := [][]byte{
		[]byte(`{"type":"track","event":"` + apiKey + `","messageId":"m-1","context":{"consent":{"advertising":true}},"properties":{}}`),
		[]byte(`{"type":"track","event":"Order Completed","messageId":"m-2","context":{"consent":{"advertising":true}},"properties":{"order_id":"o-1","total":1,"currency":"USD","note":"` + apiKey + `","products":[{"sku":"S-1","name":"Tee","price":1,"quantity":1}]}}`),
		[]byte(`{"type":"track","event":"Order Completed","messageId":"m-3","context":{"consent":{"advertising":true}},"properties":{"order_id":"` + apiKey + `","total":1,"currency":"USD"}}`),
	}
	for _, ev := range evs {
		if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), ev, time.Now().UnixMilli()); st != 200 {
			t.Fatalf("ingest: %d %v", st, out)
		}
	}
	decisions := 0
	for decisions < len(evs) {
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		_, b, err := c.Read(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("read: %v (decisions %d)", err, decisions)
		}
		if strings.Contains(string(b), apiKey) {
			t.Errorf("live message shows the api key: %s", b)
		}
		if strings.Contains(string(b), `"type":"decision"`) {
			decisions++
		}
	}
}
