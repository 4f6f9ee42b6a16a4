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
	// sendOK runs send and checks how many requests it delivered, and how
	// many it found delivered by an earlier run.
	sendOK := func(delivered, before int, extra ...string) string {
		t.Helper()
		out, errs, code := cli(t, "", sendArgs(extra...)...)
		if code != 0 {
			t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
		}
		if d, _, _, _ := summary(t, out); d != delivered {
			t.Fatalf("summary %q, want %d delivered", lastLine(out), delivered)
		}
		if d, _, _ := already(t, out); d != before {
			t.Fatalf("output %q, want %d already delivered", out, before)
		}
		return errs
	}
	sendOK(300, 0)
	if _, counts := outboxStats(t, state); counts["delivered"] != 300 {
		t.Fatalf("after send: %v", counts)
	}
	requests := srv.Stats().Requests

	sendOK(0, 300) // within the default retention: nothing is sent again
	if got := srv.Stats().Requests; got != requests {
		t.Errorf("a re-run within --retain sent %d requests", got-requests)
	}
	logs := sendOK(300, 0, "--retain", "1ns") // past it: every item is purged first, and sent again
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
	sendOK(300, 0) // the compacted outbox works: everything is sent once more
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
		{[]string{"send", "--blueprint", "button", "--config", "application_id=app-abc", "--config", "api_key=k", "--retain", "-1s", "--state", state}, 2, "--retain -1s: out of range, must be 0s to 87600h"},
		{[]string{"send", "--blueprint", "button", "--config", "application_id=app-abc", "--config", "api_key=k", "--max-pending", "0", "--state", state}, 2, "--max-pending 0: out of range, must be 1 to 10000000"},
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
		switch e.Name() {
		case "outbox.db", bindingsFile, keyFile: // the outbox, and the saved binding for dlq replay
			fi, err := e.Info()
			if err != nil || fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: mode %v, %v; want 0600", e.Name(), fi.Mode(), err)
			}
		default:
			t.Errorf("send left %s in --state", e.Name())
		}
	}
	if b, err := os.ReadFile(filepath.Join(state, bindingsFile)); err != nil || strings.Contains(string(b), "sk-key") || strings.Contains(string(b), url) {
		t.Errorf("the saved binding holds a secret in clear text, or is missing (%v):\n%s", err, b)
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

// ---- A damaged outbox (issue #11 finding 12) ----
//
// Each of these failed before the fix: a truncated or overwritten file
// made stats, dlq list and compact panic and send die with "fatal error:
// fault" (which no recover catches: the test binary died), and one
// unreadable record failed every send (Claim), dlq list, replay and purge.

// sendArgs are the arguments of a send of path to url on state with key.
func sendArgs(state, url, key, path string, extra ...string) []string {
	return append([]string{"send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=" + key,
		"--state", state, "--vendor-url", url, "--progress", "none",
		"--retry-base", "5ms", "--retry-cap", "20ms", path}, extra...)
}

// deadLetters fills a new state with the n events of eventsN sent with a
// wrong api_key: every order is a dead letter (401; the add-to-carts are
// delivered). It returns the state and the fake's URL (whose key is
// sk-key).
func deadLetters(t *testing.T, n int) (state, url, events string) {
	t.Helper()
	events, orders, _ := eventsN(t, n)
	_, url = fake(t, fakebutton.Options{APIKey: "sk-key"})
	state = t.TempDir()
	out, errs, code := cli(t, "", sendArgs(state, url, "sk-wrong", events, "--log-level", "error")...)
	if code != 0 {
		t.Fatalf("send with a wrong key: exit %d\n%s%s", code, out, errs)
	}
	if _, _, _, dead := summary(t, out); dead != orders {
		t.Fatalf("summary %q, want %d dead-lettered", lastLine(out), orders)
	}
	return state, url, events
}

// eventsN is events(t, n), with events of about 1 KB (a padded property),
// so that an outbox of a few thousand spans many pages.
func eventsN(t *testing.T, n int) (path string, orders, carts int) {
	t.Helper()
	path, orders, carts = events(t, n)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pad := `"properties":{"note":"` + strings.Repeat("n", 700) + `",`
	b = bytes.ReplaceAll(b, []byte(`"properties":{`), []byte(pad))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, orders, carts
}

// rawOutbox runs fn on the bbolt file of state (no send running).
func rawOutbox(t *testing.T, state string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(state, "outbox.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// usedBytes is how far the pages in use of the outbox in state reach
// (meta page 0: page size at 24, high-water mark at 56, little-endian).
func usedBytes(t *testing.T, state string) int64 {
	t.Helper()
	f, err := os.Open(filepath.Join(state, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var meta [80]byte
	if _, err := f.ReadAt(meta[:], 0); err != nil {
		t.Fatal(err)
	}
	le := func(b []byte) int64 {
		var n int64
		for i := len(b) - 1; i >= 0; i-- {
			n = n<<8 | int64(b[i])
		}
		return n
	}
	return le(meta[56:64]) * le(meta[24:28])
}

// garbage writes pseudo-random bytes over [from, to) of the file at path.
func garbage(t *testing.T, path string, from, to int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := make([]byte, to-from)
	x := uint32(2463534242)
	for i := range junk {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		junk[i] = byte(x)
	}
	if _, err := f.WriteAt(junk, from); err != nil {
		t.Fatal(err)
	}
}

// Every command on a damaged outbox exits 1 with an error naming the file
// (never a panic or a fault), and those that refuse the file leave it as
// it is.
func TestOutboxCommandsOnDamagedFile(t *testing.T) {
	fixtureState, url, events := deadLetters(t, 400)
	used := usedBytes(t, fixtureState)
	if used < 256<<10 {
		t.Fatalf("the fixture is too small: %d bytes in use", used)
	}
	fixture, err := os.ReadFile(filepath.Join(fixtureState, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		damage  func(t *testing.T, path string, used int64)
		refused bool // OpenBolt refuses it: no command changes it
	}{
		{"truncated", func(t *testing.T, path string, _ int64) {
			if err := os.Truncate(path, 100000); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"garbage file", func(t *testing.T, path string, used int64) { garbage(t, path, 0, used) }, true},
		{"garbage pages", func(t *testing.T, path string, used int64) { garbage(t, path, used/4, used*3/4) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := t.TempDir()
			path := filepath.Join(state, "outbox.db")
			if err := os.WriteFile(path, fixture, 0o600); err != nil {
				t.Fatal(err)
			}
			tt.damage(t, path, used)
			orig, _ := os.ReadFile(path)
			for _, c := range []struct {
				args    []string
				mayPass bool
			}{
				{[]string{"outbox", "stats", "--state", state}, !tt.refused}, // counts live in pages of their own
				{[]string{"dlq", "list", "--state", state}, false},
				{[]string{"outbox", "compact", "--state", state}, false},
				{[]string{"outbox", "check", "--state", state}, false},
				{[]string{"outbox", "remove", "some-id", "--state", state}, false},
				{sendArgs(state, url, "sk-key", events), false},
			} {
				out, errs, code := cli(t, "", c.args...)
				if code == 0 && c.mayPass {
					continue
				}
				if code != 1 || !strings.Contains(out+errs, path) || !strings.Contains(out+errs, "damaged") {
					t.Errorf("%v: exit %d, want 1 with an error naming %s as damaged:\n%s%s", c.args[:2], code, path, tail(out, 5), tail(errs, 5))
				}
			}
			if now, _ := os.ReadFile(path); tt.refused && !bytes.Equal(now, orig) {
				t.Error("a command changed the damaged file")
			}
		})
	}
}

// corruptDead adds unreadable records to the outbox of state: a dead
// letter that is not JSON, one of an unknown state, and a pending request
// of an unknown state due first (with their index entries).
func corruptRecords(t *testing.T, state string) {
	t.Helper()
	rawOutbox(t, state, func(tx *bolt.Tx) error {
		items, due, states := tx.Bucket([]byte("items")), tx.Bucket([]byte("due")), tx.Bucket([]byte("states"))
		key := func(id string) []byte { return append(make([]byte, 8), id...) } // 1970: first
		for id, rec := range map[string]string{
			"dead-badjson": `{"id":"dead-badjson","state":"dead",`,
			"dead-weird":   `{"id":"dead-weird","state":"zombie"}`,
			"pend-weird":   `{"id":"pend-weird","state":"limbo"}`,
		} {
			if err := items.Put([]byte(id), []byte(rec)); err != nil {
				return err
			}
			idx := "dead"
			if strings.HasPrefix(id, "pend") {
				idx = "pending"
				if err := due.Put(key(id), nil); err != nil {
					return err
				}
			}
			if err := states.Bucket([]byte(idx)).Put(key(id), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// Unreadable records block nothing: check lists them; dlq list, replay
// --all and purge skip them (moved to the quarantine, counted on stderr);
// send delivers around a pending one; remove deletes them.
func TestOutboxUnreadableRecords(t *testing.T) {
	state, url, _ := deadLetters(t, 6)
	corruptRecords(t, state)

	out, errs, code := cli(t, "", "outbox", "check", "--state", state)
	if code != 1 || !strings.Contains(out, "unreadable records: 3") || !strings.Contains(out, `"dead-badjson"`) {
		t.Errorf("check: exit %d, want 1 listing 3 unreadable records\n%s%s", code, out, errs)
	}

	out, errs, code = cli(t, "", "dlq", "list", "--state", state)
	if code != 0 || strings.Count(out, "button@0.1.0/retail") != 4 || !strings.Contains(errs, "2 requests skipped") {
		t.Errorf("dlq list: exit %d, want 0 with 4 dead letters and 2 skipped\n%s%s", code, out, errs)
	}

	out, errs, code = cli(t, "", "outbox", "stats", "--state", state)
	if code != 0 || !strings.Contains(out, "quarantined 2") || !strings.Contains(out, "dead        4") {
		t.Errorf("stats: exit %d\n%s%s", code, out, errs)
	}

	// Looking one up quarantines it too. (Done before the replay, whose
	// worker claims every due pending request, and so would quarantine
	// this one first.)
	out, errs, code = cli(t, "", "dlq", "show", "pend-weird", "--state", state)
	if code != 1 || !strings.Contains(errs, "corrupt record") || !strings.Contains(errs, "moved to the quarantine") {
		t.Errorf("dlq show of an unreadable record: exit %d\n%s%s", code, out, errs)
	}

	// replay --all re-drives the readable ones.
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state, "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key", "--vendor-url", url, "--progress", "none")
	if code != 0 {
		t.Fatalf("dlq replay --all: exit %d\n%s%s", code, out, errs)
	}
	if d, _, _, _ := summary(t, out); d != 4 {
		t.Errorf("replay summary %q, want 4 delivered", lastLine(out))
	}

	out, errs, code = cli(t, "", "outbox", "check", "--state", state)
	if code != 0 || !strings.Contains(out, "quarantined: 3 records") || !strings.Contains(out, "ok") {
		t.Errorf("check after: exit %d, want 0 with 3 quarantined\n%s%s", code, out, errs)
	}

	out, errs, code = cli(t, "", "outbox", "remove", "dead-badjson", "pend-weird", "--state", state)
	if code != 0 || strings.TrimSpace(out) != "removed 2 requests" || !strings.Contains(errs, "outbox compact") {
		t.Errorf("remove: exit %d\n%s%s", code, out, errs)
	}
	if _, counts := outboxStats(t, state); counts["delivered"] != 6 {
		t.Errorf("stats after: %v, want the 2 carts and 4 replayed orders delivered", counts)
	}
	out, _, _ = cli(t, "", "outbox", "stats", "--state", state)
	if !strings.Contains(out, "quarantined 1") {
		t.Errorf("stats after removing two quarantined records:\n%s", out)
	}
}

// One pending record that cannot be read, due first, made every send fail
// for good (Claim failed); send now delivers the rest.
func TestSendSkipsUnreadablePending(t *testing.T) {
	path, _, _ := events(t, 9)
	_, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	out, errs, code := cli(t, "", sendArgs(state, url, "sk-key", path)...)
	if code != 0 {
		t.Fatalf("first send: exit %d\n%s%s", code, out, errs)
	}
	corruptRecords(t, state)
	more, _, _ := events(t, 12) // 3 more events, the first 9 known
	out, errs, code = cli(t, "", sendArgs(state, url, "sk-key", more, "--retain", "0")...)
	if code != 0 {
		t.Fatalf("send with an unreadable pending record: exit %d\n%s%s", code, out, errs)
	}
	// The 9 events of the first run are already final (not counted in the
	// summary); the 3 new ones are delivered.
	if d, _, _, _ := summary(t, out); d != 3 || !strings.Contains(out, "already final from an earlier run (not sent again): 9 delivered") {
		t.Errorf("output %q, want 3 delivered and 9 already final", out)
	}
	if !strings.Contains(errs, "unreadable outbox record skipped") || !strings.Contains(errs, "pend-weird") {
		t.Errorf("the skipped record was not logged:\n%s", tail(errs, 10))
	}
}

// check --salvage copies what a truncated outbox still holds into a new
// file that send then uses: only the requests lost are sent again.
func TestOutboxCheckSalvage(t *testing.T) {
	path, _, _ := eventsN(t, 1000)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	if out, errs, code := cli(t, "", sendArgs(state, url, "sk-key", path)...); code != 0 {
		t.Fatalf("send: exit %d\n%s%s", code, out, errs)
	}
	sent := srv.Stats().Requests
	db := filepath.Join(state, "outbox.db")
	if err := os.Truncate(db, usedBytes(t, state)*7/10+100); err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, "", "outbox", "check", "--state", state)
	if code != 1 || !strings.Contains(out, "damaged: truncated") || !strings.Contains(errs, "--salvage NEWFILE") {
		t.Errorf("check: exit %d\n%s%s", code, out, errs)
	}
	salvaged := filepath.Join(t.TempDir(), "salvaged.db")
	out, errs, code = cli(t, "", "outbox", "check", "--state", state, "--salvage", salvaged)
	if code != 0 || !strings.Contains(out, "salvaged ") || !strings.Contains(errs, "mv "+salvaged+" "+db) {
		t.Fatalf("check --salvage: exit %d\n%s%s", code, out, errs)
	}
	if err := os.Rename(salvaged, db); err != nil {
		t.Fatal(err)
	}
	// Requests found only in stale pages (the free-page list was lost
	// with the end of the file) may come back pending though they were
	// delivered: they are sent again (at least once, never lost).
	_, counts := outboxStats(t, state)
	kept := counts["delivered"]
	if kept == 0 || kept >= 1000 || counts["dead"]+counts["skipped"] != 0 {
		t.Fatalf("the salvaged outbox holds %v", counts)
	}
	t.Logf("salvaged from 70 %% of the file: %v", counts)
	out, errs, code = cli(t, "", sendArgs(state, url, "sk-key", path)...)
	if code != 0 {
		t.Fatalf("send on the salvaged outbox: exit %d\n%s%s", code, out, errs)
	}
	if again := int(srv.Stats().Requests - sent); again != 1000-kept {
		t.Errorf("send on the salvaged outbox sent %d requests, want the %d not salvaged as delivered", again, 1000-kept)
	}
	if out, errs, code := cli(t, "", "outbox", "check", "--state", state); code != 0 {
		t.Errorf("check of the salvaged outbox: exit %d\n%s%s", code, out, errs)
	}
}

// remove deletes requests by ID in any state; an unknown ID is named and
// the exit is 1.
func TestOutboxRemove(t *testing.T) {
	state, _, _ := deadLetters(t, 4) // 3 orders: 3 dead letters
	out, _, _ := cli(t, "", "dlq", "list", "--state", state, "--format", "json")
	var dead []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &dead); err != nil || len(dead) != 3 {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	out, errs, code := cli(t, "", "outbox", "remove", dead[0].ID, dead[0].ID, "--state", state)
	if code != 0 || strings.TrimSpace(out) != "removed 1 requests" {
		t.Errorf("remove: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code = cli(t, "", "outbox", "remove", dead[0].ID, dead[1].ID, "--state", state)
	if code != 1 || strings.TrimSpace(out) != "removed 1 requests" || !strings.Contains(errs, dead[0].ID+": no such request") {
		t.Errorf("remove of a removed ID: exit %d\n%s%s", code, out, errs)
	}
	if _, counts := outboxStats(t, state); counts["dead"] != 1 {
		t.Errorf("after removing two of three dead letters: %v", counts)
	}
}

func TestOutboxCheckUsage(t *testing.T) {
	state := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"outbox", "check", "--state", state}, 1, "no outbox in " + state},
		{[]string{"outbox", "remove", "x", "--state", state}, 1, "no outbox in " + state},
		{[]string{"outbox", "remove", "--state", state}, 2, "give the IDs"},
		{[]string{"outbox", "check", "--format", "yaml", "--state", state}, 2, `--format "yaml"`},
	} {
		out, errs, code := cli(t, "", tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d, want %d with %q\n%s%s", tt.args, code, tt.code, tt.want, out, errs)
		}
	}
	// --salvage never overwrites.
	other, _, _ := deadLetters(t, 1)
	existing := filepath.Join(t.TempDir(), "x.db")
	if err := os.WriteFile(existing, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := cli(t, "", "outbox", "check", "--state", other, "--salvage", existing)
	if b, _ := os.ReadFile(existing); code != 1 || string(b) != "keep" || !strings.Contains(errs, "already exists") {
		t.Errorf("--salvage over a file: exit %d\n%s%s", code, out, errs)
	}
}
