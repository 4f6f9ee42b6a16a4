package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// follower is a running service of role process or deliver.
type follower struct {
	svc   *service.Service
	admin string
}

// kafkaCluster starts an in-memory broker (kfake, one node) for the test
// and returns its addresses.
func kafkaCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// splitOwner starts a broker (kfake, one node) and an owner of role ingest
// on it with partitions partitions per topic, logs in, and creates a source
// "web": the start of every split-roles test.
func splitOwner(t *testing.T, partitions int32) (h *harness, brokers []string, tok, pk, sk string) {
	t.Helper()
	brokers = kafkaCluster(t)
	h = startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: partitions}})
	tok = h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	return h, brokers, tok, src["pipeline_key"].(string), src["secret_key"].(string)
}

func startFollower(t *testing.T, h *harness, brokers []string, role string) *follower {
	t.Helper()
	svc, err := service.New(followerConfig(t, h, brokers, role, filepath.Join(h.state, "secret.key")))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v", role, err)
		}
	})
	return &follower{svc: svc, admin: "http://" + svc.AdminAddr()}
}

func followerConfig(t *testing.T, h *harness, brokers []string, role, keyFile string) service.Config {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	return service.Config{AdminListen: "127.0.0.1:0", Catalog: cat, SecretKeyFile: keyFile,
		Delivery: delivery.Options{Sender: send.Options{VendorURL: h.vendor}, Policy: send.Policy{Base: 20 * time.Millisecond, Cap: 50 * time.Millisecond, MaxAttempts: 3}},
		Kafka:    &service.KafkaConfig{Brokers: brokers, Role: role, Partitions: 2}}
}

// metric reads one unlabelled series of the process's /metrics (-1: none).
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// TestServeKafkaSplit runs the roles as separate services on one kfake
// cluster: the owner of the state (role ingest: admin API, sources,
// ingest) and two followers holding no state (role process, role
// deliver). The followers learn every change from the integrations
// topic: an install (an order posted right after the 201 is delivered:
// the processor waits for the config its event was accepted under), a
// PATCH rotating the API key (the deliverer sends with the new one; the
// 401 under the wrong one is listed in the owner's dead-letter view), a
// disable, an enable and a delete. Then every record of every topic but
// raw-events is read and grepped for both API keys and their base64
// forms: none.
func TestServeKafkaSplit(t *testing.T) {
	h, brokers, tok, pk, sk := splitOwner(t, 2)

	proc := startFollower(t, h, brokers, "process")
	del := startFollower(t, h, brokers, "deliver")
	if h.svc.IngestAddr() == "" || proc.svc.IngestAddr() != "" {
		t.Errorf("ingest listeners: owner %q, follower %q; want the owner's only", h.svc.IngestAddr(), proc.svc.IngestAddr())
	}
	for _, f := range []*follower{proc, del} {
		resp, err := http.Get(f.admin + "/readyz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("follower readyz: %v %v", resp, err)
		}
		resp.Body.Close()
		resp, err = http.Get(f.admin + "/v1/admin/integrations")
		if err != nil || resp.StatusCode != 404 {
			t.Fatalf("follower admin API: %v %v, want 404 NO_ADMIN_API", resp, err)
		}
		resp.Body.Close()
	}

	id := installButton(t, h, tok, "Button", apiKey)
	// At once: the event carries the topic's offset after the install.
	if st, out := h.post("/v1/events", pk, sk, order("split-1"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	deadline := 30 * time.Second // group joins on kfake take a few seconds
	waitLong(t, deadline, "split-1 at the fake Button", func() bool { _, ok := h.fake.Order("split-1"); return ok })
	if n := metric(t, proc.admin, "blueprint_integrations_bound"); n != 1 {
		t.Errorf("process role binds %v integrations, want 1", n)
	}

	// A rotated key reaches the deliverer: with a key the fake refuses,
	// the order is a dead letter (401); with the right one again, sent.
	const wrongKey = "sk-rotated-WRONG-0042"
	patch := func(body map[string]any) {
		t.Helper()
		if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, body); st != 200 {
			t.Fatalf("PATCH %v: %d %v", body, st, out)
		}
	}
	patch(map[string]any{"config": map[string]any{"api_key": wrongKey}})
	h.post("/v1/events", pk, sk, order("split-2"), time.Now().UnixMilli())
	waitLong(t, deadline, "split-2 refused for its key", func() bool { return h.fake.Stats().Unauthorized >= 1 })
	patch(map[string]any{"config": map[string]any{"api_key": apiKey}})
	h.post("/v1/events", pk, sk, order("split-3"), time.Now().UnixMilli())
	waitLong(t, deadline, "split-3 at the fake Button", func() bool { _, ok := h.fake.Order("split-3"); return ok })
	if _, ok := h.fake.Order("split-2"); ok {
		t.Error("split-2 was created with a key the fake refuses")
	}
	// The deliver process's dead letter reaches the owner's dead-letter
	// view through dlq-events.
	waitLong(t, deadline, "split-2's 401 listed by the owner", func() bool {
		_, out, _ := h.call("GET", "/v1/admin/integrations/"+id+"/dlq?kind=delivery", tok, nil)
		d, _ := out["data"].([]any)
		return len(d) == 1 && d[0].(map[string]any)["status"] == float64(401)
	})

	// Disable, enable, delete: the followers' registries follow.
	bound := func(want float64) {
		t.Helper()
		waitLong(t, 10*time.Second, fmt.Sprintf("%v integrations bound in both followers", want), func() bool {
			return metric(t, proc.admin, "blueprint_integrations_bound") == want && metric(t, del.admin, "blueprint_integrations_bound") == want
		})
	}
	patch(map[string]any{"enabled": false})
	bound(0)
	patch(map[string]any{"enabled": true})
	bound(1)
	if st, out, _ := h.call("DELETE", "/v1/admin/integrations/"+id+"?force=true", tok, nil); st != 204 { // split-2's dead letter dropped
		t.Fatalf("delete: %d %v", st, out)
	}
	bound(0)
	if a, b := metric(t, h.admin, "blueprint_integrations_topic_offset"), metric(t, proc.admin, "blueprint_integrations_topic_offset"); a <= 0 || a != b {
		t.Errorf("topic offsets: owner published up to %v, follower applied up to %v", a, b)
	}

	// No secret on any topic (raw-events holds what clients sent).
	recs := readTopics(t, brokers)
	if len(recs[kafka.IntegrationsTopic]) < 6 {
		t.Errorf("%s holds %d records, want the install, 2 patches, disable, enable and the tombstone", kafka.IntegrationsTopic, len(recs[kafka.IntegrationsTopic]))
	}
	var forms []string
	for _, s := range []string{apiKey, wrongKey} {
		forms = append(forms, s)
		for _, v := range []string{s, s + ":", `"` + s + `"`} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				forms = append(forms, enc.EncodeToString([]byte(v)))
			}
		}
	}
	for topic, rs := range recs {
		if topic == kafka.RawEvents {
			continue
		}
		for _, r := range rs {
			for _, f := range forms {
				if bytes.Contains(r, []byte(f)) {
					t.Errorf("topic %s holds a secret (%q): %s", topic, f, r)
				}
			}
		}
	}
	if !bytes.Contains(bytes.Join(recs[kafka.IntegrationsTopic], nil), []byte("app-abc123")) {
		t.Error("the integrations topic does not hold the non-secret config (is the grep reading it?)")
	}
}

func waitLong(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readTopics reads every record (key and value) of every topic.
func readTopics(t *testing.T, brokers []string) map[string][][]byte {
	t.Helper()
	out := map[string][][]byte{}
	for topic, recs := range kafkatest.ReadAll(t, brokers, false) {
		for _, r := range recs {
			out[topic] = append(out[topic], append(append([]byte(nil), r.Key...), r.Value...))
		}
	}
	return out
}

// TestServeKafkaFollowerStart: a process of role process or deliver
// refuses to start, with a stable code, without the deployment's key
// file, with a state directory, or with a key that does not open the
// secrets on the integrations topic.
func TestServeKafkaFollowerStart(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1}})
	tok := h.login()
	if st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{"name": "Button",
		"config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}}); st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	otherKey := filepath.Join(t.TempDir(), "other.key")
	if _, err := store.LoadOrCreateKey(otherKey); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, code string
		cfg        func(service.Config) service.Config
	}{
		{"no key file", "SECRET_KEY_REQUIRED", func(c service.Config) service.Config { c.SecretKeyFile = ""; return c }},
		{"missing key file", "SECRET_KEY_UNREADABLE", func(c service.Config) service.Config {
			c.SecretKeyFile = filepath.Join(t.TempDir(), "absent.key")
			return c
		}},
		{"state directory", "STATE_NOT_USED", func(c service.Config) service.Config { c.StateDir = t.TempDir(); return c }},
		{"another key", "SECRET_KEY_MISMATCH", func(c service.Config) service.Config { c.SecretKeyFile = otherKey; return c }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(followerConfig(t, h, brokers, "deliver", filepath.Join(h.state, "secret.key")))
			svc, err := service.New(cfg)
			var se *service.StartError
			if !errors.As(err, &se) || se.Code != tc.code {
				if svc != nil {
					t.Fatalf("started; want %s", tc.code)
				}
				t.Fatalf("err = %v, want a StartError %s", err, tc.code)
			}
			if strings.Contains(err.Error(), apiKey) {
				t.Errorf("the error holds the API key: %v", err)
			}
			if _, err := os.Stat(cfg.SecretKeyFile); tc.code == "SECRET_KEY_UNREADABLE" && err == nil {
				t.Error("a key file was created")
			}
		})
	}
}

// TestServeKafkaNotPublished: when the brokers refuse the integrations
// topic's records, a change is saved in the state but answered 503
// CONFIG_NOT_PUBLISHED; once they take them again, the service publishes
// it by itself, and a follower applies what follows.
func TestServeKafkaNotPublished(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var fail atomic.Bool
	c.ControlKey(int16(kmsg.Produce), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.ProduceRequest)
		if !fail.Load() { // (only the integrations topic is produced to meanwhile)
			return nil, nil, false
		}
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	brokers := c.ListenAddrs()
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: brokers, Role: "ingest", Partitions: 1}})
	tok := h.login()
	id := installButton(t, h, tok, "Button", apiKey)
	del := startFollower(t, h, brokers, "deliver")
	if n := metric(t, del.admin, "blueprint_integrations_bound"); n != 1 {
		t.Fatalf("deliver role binds %v integrations, want 1", n)
	}

	fail.Store(true)
	st, out, hdr := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"name": "Button EU"})
	if st != 503 || errCode(out) != "CONFIG_NOT_PUBLISHED" || hdr.Get("Retry-After") == "" {
		t.Fatalf("PATCH with the topic refusing: %d %v, want 503 CONFIG_NOT_PUBLISHED", st, out)
	}
	if st, out, _ := h.call("GET", "/v1/admin/integrations/"+id, tok, nil); st != 200 || out["name"] != "Button EU" {
		t.Fatalf("the change is not saved: %d %v", st, out)
	}
	fail.Store(false)
	names := func() map[string]bool {
		out := map[string]bool{}
		for _, r := range readTopics(t, brokers)[kafka.IntegrationsTopic] {
			i := bytes.IndexByte(r, '{')
			var rec kafka.IntegrationRecord
			if i < 0 || json.Unmarshal(r[i:], &rec) != nil {
				t.Fatalf("unreadable record %q", r)
			}
			out[fmt.Sprintf("%s enabled=%v", rec.Name, rec.Enabled)] = true
		}
		return out
	}
	// The service publishes it again by itself (every 5 s).
	waitLong(t, 15*time.Second, "the saved change published", func() bool { return names()["Button EU enabled=true"] })
	if st, out, _ := h.call("PATCH", "/v1/admin/integrations/"+id, tok, map[string]any{"enabled": false}); st != 200 {
		t.Fatalf("PATCH: %d %v", st, out)
	}
	waitLong(t, 10*time.Second, "the follower to unbind the disabled integration", func() bool {
		return metric(t, del.admin, "blueprint_integrations_bound") == 0
	})
	if got := names(); len(got) != 3 || !got["Button enabled=true"] || !got["Button EU enabled=false"] {
		t.Errorf("the topic holds %v; want the install, the republished rename, the disable", got)
	}
}
