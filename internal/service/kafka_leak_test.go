package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
	"github.com/blueprint-engine/blueprint/internal/service"
)

// lockedBuf is a log sink shared by goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func bufLogger(b *lockedBuf) *slog.Logger {
	return slog.New(slog.NewTextHandler(io.MultiWriter(b, logEcho{}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logEcho copies the log to standard error with BLUEPRINT_TEST_LOG=1.
type logEcho struct{}

func (logEcho) Write(p []byte) (int, error) {
	if os.Getenv("BLUEPRINT_TEST_LOG") != "" {
		return os.Stderr.Write(p)
	}
	return len(p), nil
}

// allSecretForms is every form of the secrets a leak could take: as is,
// quoted, and base64 (every alphabet, padded or not) of the value, of
// "value:" and of "user:value" (Basic auth).
func allSecretForms(users []string, secrets ...string) map[string]string {
	out := map[string]string{}
	for _, s := range secrets {
		out[s] = s
		vs := []string{s, s + ":", `"` + s + `"`}
		for _, u := range users {
			vs = append(vs, u+":"+s)
		}
		for _, v := range vs {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				out[enc.EncodeToString([]byte(v))] = s
			}
		}
	}
	return out
}

// readTopicsFull reads every record of every topic: key, value and headers.
func readTopicsFull(t *testing.T, brokers []string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for topic, recs := range kafkatest.ReadAll(t, brokers, true) {
		for _, r := range recs {
			var b strings.Builder
			b.Write(r.Key)
			b.WriteByte(' ')
			b.Write(r.Value)
			for _, h := range r.Headers {
				b.WriteString(" " + h.Key + "=" + string(h.Value))
			}
			out[topic] = append(out[topic], b.String())
		}
	}
	return out
}

// TestServeKafkaSecretsNowhere runs an owner (role ingest) and two
// followers (process, deliver) with Button's api_key and three webhooks
// (bearer auth_token, basic password, hmac signing_secret). The vendor
// echoes every request header (Authorization, X-Signature) in its 401,
// 503 and 400 bodies. The secrets are rotated with PATCH, the dead letters
// replayed; then every log line of every process, every /metrics and
// /readyz, every admin API answer, every record of every topic (key,
// value, headers) and every file of the state directory are grepped for
// each secret, old and new, and their base64 forms: none.
func TestServeKafkaSecretsNowhere(t *testing.T) {
	brokers := kafkaCluster(t)

	var status atomic.Int32
	status.Store(401)
	vendor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		b.WriteString("echo: ")
		keys := make([]string, 0, len(r.Header))
		for k := range r.Header {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b.WriteString(k + ": " + strings.Join(r.Header[k], ",") + "; ")
		}
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, b.String())
	})
	logs := map[string]*lockedBuf{"owner": {}, "process": {}, "deliver": {}}
	h := startWith(t, options{fastOwner: true, vendor: vendor, logger: bufLogger(logs["owner"]),
		kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1}})
	tok := h.login()
	var answers []string
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		st, out, _ := h.call(method, path, tok, body)
		b, _ := json.Marshal(out)
		answers = append(answers, method+" "+path+" "+string(b))
		return st, out
	}
	_, src := call("POST", "/v1/admin/sources", map[string]string{"name": "web"})
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)

	var fl []*follower
	for _, role := range []string{"process", "deliver"} {
		cfg := followerConfig(t, h, brokers, role, filepath.Join(h.state, "secret.key"))
		cfg.Logger = bufLogger(logs[role])
		svc, err := service.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		fl = append(fl, &follower{svc: svc, admin: "http://" + svc.AdminAddr()})
	}

	// A live subscriber on the owner all along: the followers copy their
	// steps to live-events, which is grepped with every other topic, and
	// so is everything the stream sent.
	w := watchLive(t, h.admin, tok, "")
	bridging(t, true, fl...)

	const user = "hookuser"
	type integ struct {
		id          string
		catalog     string
		key         string
		old, rotate string
		config      map[string]any
	}
	its := []*integ{
		{catalog: "button", key: "api_key", old: "sk-leak-BUTTON-old-7f3a", rotate: "sk-leak-BUTTON-new-9c2e",
			config: map[string]any{"application_id": "app-abc123"}},
		{catalog: "webhook", key: "auth_token", old: "tok-leak-BEARER-old-51d0", rotate: "tok-leak-BEARER-new-82aa",
			config: map[string]any{"url": "https://hooks.example.com/bearer", "authentication": "bearer"}},
		{catalog: "webhook", key: "password", old: "pw-leak-BASIC-old-3e77", rotate: "pw-leak-BASIC-new-6b19",
			config: map[string]any{"url": "https://hooks.example.com/basic", "authentication": "basic", "username": user}},
		{catalog: "webhook", key: "signing_secret", old: "ss-leak-HMAC-old-0d4c", rotate: "ss-leak-HMAC-new-ee81",
			config: map[string]any{"url": "https://hooks.example.com/hmac", "authentication": "hmac"}},
	}
	var secrets []string
	for _, it := range its {
		it.config[it.key] = it.old
		st, out := call("POST", "/v1/admin/integration-catalog/"+it.catalog+"/install", map[string]any{"name": it.key, "config": it.config})
		if st != 201 {
			t.Fatalf("install %s: %d %v", it.catalog, st, out)
		}
		it.id = out["id"].(string)
		secrets = append(secrets, it.old, it.rotate)
	}
	deadOf := func(it *integ) int {
		_, out := call("GET", "/v1/admin/integrations/"+it.id+"/dlq?kind=delivery", nil)
		d, _ := out["data"].([]any)
		return len(d)
	}
	waitDead := func(n int) {
		t.Helper()
		waitLong(t, 30*time.Second, "dead letters of every integration", func() bool {
			for _, it := range its {
				if deadOf(it) < n {
					return false
				}
			}
			return true
		})
	}

	// 401 echoing the headers: dead letters under the old secrets.
	for _, id := range []string{"leak-1", "leak-2"} {
		if st, out := h.post("/v1/events", pk, sk, order(id), time.Now().UnixMilli()); st != 200 {
			t.Fatalf("ingest: %d %v", st, out)
		}
	}
	waitDead(2)
	// Rotated; the dead letters replayed into a 503 echoing the headers
	// (retried, then dead with attempts_exhausted), and a 400.
	status.Store(503)
	for _, it := range its {
		if st, out := call("PATCH", "/v1/admin/integrations/"+it.id, map[string]any{"config": map[string]any{it.key: it.rotate}}); st != 200 {
			t.Fatalf("PATCH %s: %d %v", it.id, st, out)
		}
		if st, out := call("POST", "/v1/admin/integrations/"+it.id+"/dlq/replay", map[string]any{"all": true}); st != 200 {
			t.Fatalf("replay %s: %d %v", it.id, st, out)
		}
	}
	waitDead(2)
	status.Store(400)
	h.post("/v1/events", pk, sk, order("leak-3"), time.Now().UnixMilli())
	waitDead(3)
	for _, it := range its {
		st, out := call("GET", "/v1/admin/integrations/"+it.id+"/dlq", nil)
		if st != 200 {
			t.Fatalf("dead letters of %s: %d %v", it.id, st, out)
		}
		for _, d := range out["data"].([]any) {
			call("GET", "/v1/admin/integrations/"+it.id+"/dlq/"+d.(map[string]any)["id"].(string), nil)
		}
		call("GET", "/v1/admin/integrations/"+it.id, nil)
		call("GET", "/v1/admin/integrations/"+it.id+"/revisions", nil)
	}
	call("GET", "/v1/admin/integrations", nil)

	var scraped []string
	for _, base := range []string{h.admin, fl[0].admin, fl[1].admin} {
		for _, p := range []string{"/metrics", "/readyz", "/healthz"} {
			resp, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			scraped = append(scraped, base+p+" "+string(b))
		}
	}
	if !strings.Contains(logs["deliver"].String(), "echo: ") {
		t.Error("the deliverer's log does not show the vendor's answer (is the grep reading it?)")
	}

	forms := allSecretForms([]string{user}, secrets...)
	check := func(where, text string) {
		t.Helper()
		for f, s := range forms {
			if strings.Contains(text, f) {
				i := strings.Index(text, f)
				t.Errorf("%s holds secret %s (as %q): ...%s...", where, s, f, text[max(0, i-200):min(len(text), i+len(f)+50)])
			}
		}
	}
	for _, a := range answers {
		check("admin API answer", a)
	}
	for _, s := range scraped {
		check("scrape", s)
	}
	topics := readTopicsFull(t, brokers)
	for topic, rs := range topics {
		for _, r := range rs {
			check("topic "+topic, r)
		}
	}
	if n := len(topics[kafka.LiveEventsTopic]); n == 0 {
		t.Errorf("no record on %s: a live subscriber was open all along", kafka.LiveEventsTopic)
	}
	var steps, attempts int
	for _, m := range w.all() {
		check("live step", m.Raw)
		steps++
		if m.Type == "attempt" && m.IntegrationID != "" {
			attempts++
		}
	}
	if attempts == 0 {
		t.Errorf("the owner's live stream showed no attempt of the deliver process (%d steps)", steps)
	}
	h.stop()
	for role, b := range logs {
		check("log of "+role, b.String())
	}
	filepath.WalkDir(h.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		check("state file "+p, string(b))
		return nil
	})
}
