package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

// outboxStats runs 'outbox stats --format json'.
func outboxStats(t *testing.T, state string) (bytes int64, counts map[string]int) {
	t.Helper()
	out, errs, code := cli(t, "", "outbox", "stats", "--state", state, "--format", "json")
	var st struct {
		Bytes  int64          `json:"bytes"`
		Counts map[string]int `json:"counts"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("outbox stats: exit %d\n%s\n%s", code, out, errs)
	}
	return st.Bytes, st.Counts
}

// Retention as a user meets it: a re-run within --retain sends nothing
// again; one after it (here --retain 1ns) sends everything again; purge
// and compact by hand empty the outbox and shrink its file.
func TestOutboxRetention(t *testing.T) {
	path, _, _ := events(t, 300)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	sendArgs := func(extra ...string) []string {
		return append([]string{"send", "--blueprint", "button", "--variant", "retail",
			"--config", "application_id=app-abc123", "--config", "api_key=sk-key",
			"--state", state, "--vendor-url", url, "--progress", "none", "--log-level", "info", path}, extra...)
	}
	sendOK := func(extra ...string) string {
		t.Helper()
		out, errs, code := cli(t, "", sendArgs(extra...)...)
		if code != 0 {
			t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
		}
		if d, _, _, _ := summary(t, out); d != 300 {
			t.Fatalf("summary %q", lastLine(out))
		}
		return errs
	}
	sendOK()
	if _, counts := outboxStats(t, state); counts["delivered"] != 300 {
		t.Fatalf("after send: %v", counts)
	}
	requests := srv.Stats().Requests

	sendOK() // within the default retention: nothing is sent again
	if got := srv.Stats().Requests; got != requests {
		t.Errorf("a re-run within --retain sent %d requests", got-requests)
	}
	logs := sendOK("--retain", "1ns") // past it: every item is purged first, and sent again
	if got := srv.Stats().Requests; got != 2*requests {
		t.Errorf("a re-run past --retain sent %d requests, want %d", got-requests, requests)
	}
	if !strings.Contains(logs, "purged old outbox items") || !strings.Contains(logs, "purged=300") {
		t.Errorf("send did not log its purge:\n%s", tail(logs, 5))
	}

	grown, _ := outboxStats(t, state)
	out, errs, code := cli(t, "", "outbox", "purge", "--older-than", "0s", "--state", state)
	if code != 0 || strings.TrimSpace(out) != "purged 300 requests" {
		t.Fatalf("purge: exit %d: %q %s", code, out, errs)
	}
	if _, counts := outboxStats(t, state); counts["delivered"] != 0 || counts["pending"] != 0 {
		t.Errorf("after purge: %v", counts)
	}
	out, errs, code = cli(t, "", "outbox", "compact", "--state", state)
	if code != 0 || !strings.HasPrefix(out, "compacted "+filepath.Join(state, "outbox.db")+": ") {
		t.Fatalf("compact: exit %d: %q %s", code, out, errs)
	}
	if size, _ := outboxStats(t, state); size >= grown {
		t.Errorf("compact: %d -> %d bytes", grown, size)
	}
	sendOK() // the compacted outbox works: everything is sent once more
	if got := srv.Stats().Requests; got != 3*requests {
		t.Errorf("after compact a run sent %d requests, want %d", got-2*requests, requests)
	}
}

func TestOutboxUsage(t *testing.T) {
	state := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"outbox", "purge", "--state", state}, 2, "give --older-than"},
		{[]string{"outbox", "purge", "--older-than", "-1h", "--state", state}, 2, "give --older-than"},
		{[]string{"outbox", "purge", "--older-than", "1h", "--state", state}, 1, "no outbox in " + state},
		{[]string{"outbox", "stats", "--state", state}, 1, "no outbox in " + state},
		{[]string{"outbox", "compact", "--state", state}, 1, "no outbox in " + state},
		{[]string{"outbox", "stats", "--format", "yaml", "--state", state}, 2, `--format "yaml"`},
		{[]string{"send", "--blueprint", "button", "--config", "application_id=app-abc", "--config", "api_key=k", "--retain", "-1s", "--state", state}, 2, "--retain -1s: must not be negative"},
		{[]string{"send", "--blueprint", "button", "--config", "application_id=app-abc", "--config", "api_key=k", "--max-pending", "0", "--state", state}, 2, "--max-pending 0: must be positive"},
	} {
		out, errs, code := cli(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tt.args, code, tt.code, tt.want, out, errs)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "outbox.db")); err == nil {
		t.Error("a refused command created the outbox")
	}
}

// The same event twice in one input is sent once and counted twice (the
// summary counts the requests of the input's lines); send leaves no file
// in --state but the outbox.
func TestSendCountsEachLine(t *testing.T) {
	twice := eventsTwice(t, 3)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key",
		"--state", state, "--vendor-url", url, "--progress", "none", twice)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, _ := summary(t, out); d != 6 {
		t.Errorf("summary %q, want 6 delivered (3 events, each twice)", lastLine(out))
	}
	if st := srv.Stats(); st.Requests != 3 {
		t.Errorf("the fake got %d requests, want 3", st.Requests)
	}
	entries, err := os.ReadDir(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "outbox.db" {
			t.Errorf("send left %s in --state", e.Name())
		}
	}
}

// An index entry without its record (a "ghost") used to make every purge
// fail (logged, and the run went on); the purge now drops the entry and
// goes on, so retention is not stuck on it run after run.
func TestSendPurgeDropsGhostIndexEntry(t *testing.T) {
	path, _, _ := events(t, 6)
	_, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	db, err := bolt.Open(filepath.Join(state, "outbox.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range []string{"meta", "items", "due", "counts"} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte("meta")).Put([]byte("version"), []byte("1")); err != nil {
			return err
		}
		states, err := tx.CreateBucketIfNotExists([]byte("states"))
		if err != nil {
			return err
		}
		for _, s := range []string{"pending", "delivered", "dead", "skipped"} {
			if _, err := states.CreateBucketIfNotExists([]byte(s)); err != nil {
				return err
			}
		}
		// 1970 ‖ an ID with no record.
		return states.Bucket([]byte("delivered")).Put(append(make([]byte, 8), "ghost"...), nil)
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key",
		"--state", state, "--vendor-url", url, "--progress", "none", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, _ := summary(t, out); d != 6 {
		t.Errorf("summary %q", lastLine(out))
	}
	if strings.Contains(errs, "purge of old outbox items failed") {
		t.Errorf("the purge failed:\n%s", errs)
	}
	out, errs, code = cli(t, "", "outbox", "check", "--state", state)
	if code != 0 {
		t.Errorf("outbox check after the run: exit %d\n%s%s", code, out, errs)
	}
}

// With --max-pending 1 reading waits for each request to be final before
// the next batch is enqueued: slower, never stuck, nothing lost; an event
// repeated in the input (one request in the outbox) does not wedge it.
func TestSendMaxPending(t *testing.T) {
	path := eventsTwice(t, 20)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-key", ErrorRate: 0.3, Seed: 5})
	out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key", "--max-pending", "1",
		"--retry-base", "2ms", "--retry-cap", "10ms", "--max-attempts", "20",
		"--state", t.TempDir(), "--vendor-url", url, "--progress", "none", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, _ := summary(t, out); d != 40 {
		t.Errorf("summary %q, want 40 delivered (20 events, each twice)", lastLine(out))
	}
	if st := srv.Stats(); st.ServerErrors == 0 {
		t.Errorf("no retries were exercised: %+v", st)
	}
}

// --rejects keeps every rejected event, in the platform's dlq-events
// shape, with secrets redacted; malformed events as text.
func TestSendRejectsFile(t *testing.T) {
	_, url := fake(t, fakebutton.Options{APIKey: "sk-rej-secret"})
	input := `{"type":"track","event":"Order Completed","context":{"consent":{"advertising":true}},"properties":{"total":5,"currency":"USD","note":"sk-rej-secret","escaped":"sk\u002drej-secret","products":[{"sku":"s","price":5}]}}
{"type":"track","event":"Order Completed",
{"type":"track","event":"Page Viewed"}
`
	rejects := filepath.Join(t.TempDir(), "rejects.ndjson")
	out, errs, code := cli(t, input, "send", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-rej-secret",
		"--state", t.TempDir(), "--vendor-url", url, "--progress", "none", "--rejects", rejects, "-")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if _, s, r, _ := summary(t, out); s != 1 || r != 2 {
		t.Errorf("summary %q", lastLine(out))
	}
	b, err := os.ReadFile(rejects)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "sk-rej-secret") || strings.Contains(string(b), `rej-secret`) {
		t.Errorf("the rejects file holds the api key:\n%s", b)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), b)
	}
	var first, second struct {
		Error         string          `json:"error"`
		Details       string          `json:"details"`
		Fields        []string        `json:"fields"`
		OriginalEvent json.RawMessage `json:"original_event"`
	}
	if json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &second) != nil {
		t.Fatalf("not JSON:\n%s", b)
	}
	if first.Error != "missing_required_field" || len(first.Fields) != 2 || first.Fields[0] != "order_id" || !strings.HasPrefix(string(first.OriginalEvent), `{"type":"track"`) {
		t.Errorf("first reject: %+v", first)
	}
	if second.Error != "invalid_event" || !strings.HasPrefix(string(second.OriginalEvent), `"{\"type\"`) {
		t.Errorf("second reject (malformed, kept as text): %+v %s", second, second.OriginalEvent)
	}
	if fi, err := os.Stat(rejects); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("rejects file mode: %v %v", fi.Mode(), err)
	}
}

// An event that carries the integration's own secret (in any form) is
// rejected by send, not stored in the outbox or sent.
func TestSendRefusesEventsCarryingTheSecret(t *testing.T) {
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-carry-secret"})
	input := `{"type":"track","event":"Wishlist Product Added","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"note":"sk\u002dcarry-secret"}}
{"type":"track","event":"Product Added","timestamp":"2026-01-01T00:00:00Z","context":{"consent":{"advertising":true}},"properties":{"product_id":"p-1","price":1}}
`
	state := t.TempDir()
	out, errs, code := cli(t, input, "send", "--blueprint", "../../blueprints/button/overlays/custom-event.yaml", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-carry-secret",
		"--state", state, "--vendor-url", url, "--progress", "none", "-")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, r, _ := summary(t, out); d != 1 || r != 1 {
		t.Errorf("summary %q, want 1 delivered, 1 rejected", lastLine(out))
	}
	if !strings.Contains(errs, "carries a secret config value") {
		t.Errorf("the refusal was not logged:\n%s", errs)
	}
	db, err := os.ReadFile(filepath.Join(state, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte("carry-secret")) || srv.Stats().Requests != 1 {
		t.Errorf("the event was stored or sent (%d requests)", srv.Stats().Requests)
	}
}

// eventsTwice writes the n events of events(t, n), then the same n again.
func eventsTwice(t *testing.T, n int) string {
	t.Helper()
	once, _, _ := events(t, n)
	input, err := os.ReadFile(once)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "twice.ndjson")
	if err := os.WriteFile(path, append(input, input...), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
