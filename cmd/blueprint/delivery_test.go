package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

// TestMain lets the test binary act as the CLI, so that the interrupt test
// can signal a real process. (The chaos and kill -9 tests of delivery are
// in runtime/delivery, where the pipeline is.)
func TestMain(m *testing.M) {
	if os.Getenv("BLUEPRINT_TEST_CLI") == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// events writes n Button events (two thirds orders, one third
// add-to-carts), each with its own message id and order id.
func events(t *testing.T, n int) (path string, orders, carts int) {
	var b bytes.Buffer
	for i := range n {
		if i%3 == 2 {
			fmt.Fprintf(&b, `{"type":"track","event":"Product Added","message_id":"cart-%d","user_id":"u-%d","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true},"ip":"203.0.113.9"},"properties":{"product_id":"p-%d","price":12.5,"currency":"EUR","quantity":1}}`+"\n", i, i, i)
			carts++
			continue
		}
		fmt.Fprintf(&b, `{"type":"track","event":"Order Completed","message_id":"msg-%d","user_id":"u-%d","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true},"click_ids":{"btn_ref":"srctok-%016x"}},"properties":{"order_id":"ord-%d","subtotal":"%d.99","currency":"USD","products":[{"product_id":"p-1","price":"%d.99","quantity":1}]}}`+"\n", i, i, i, i, i%500, i%500)
		orders++
	}
	path = filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, orders, carts
}

func fake(t *testing.T, opts fakebutton.Options) (*fakebutton.Server, string) {
	t.Helper()
	srv := fakebutton.New(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

var summaryRE = regexp.MustCompile(`^(\d+) delivered, (\d+) skipped, (\d+) rejected, (\d+) dead-lettered$`)

func summary(t *testing.T, out string) (delivered, skipped, rejected, dead int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(lastLine(out))
	if m == nil {
		t.Fatalf("last line %q", lastLine(out))
	}
	return atoi(m[1]), atoi(m[2]), atoi(m[3]), atoi(m[4])
}

// A wrong api_key: every order is a dead letter saying 401 / bad api key;
// the key appears nowhere (logs, outbox file, CLI output); after dlq
// replay with the right key they are delivered.
func TestSendWrongAPIKeyThenReplay(t *testing.T) {
	path, orders, carts := events(t, 30)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-right-key"})
	state := t.TempDir()
	wrong := "sk-wrong-key-9f8e7d"
	out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key="+wrong,
		"--state", state, "--vendor-url", url, "--retry-base", "5ms", "--retry-cap", "20ms",
		"--log-level", "debug", "--progress", "lines", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, dead := summary(t, out); d != carts || dead != orders {
		t.Errorf("summary %q, want %d delivered (activity needs no key) and %d dead", lastLine(out), carts, orders)
	}
	list, _, code := cli(t, "", "dlq", "list", "--state", state, "--format", "json")
	var items []struct {
		ID         string `json:"id"`
		LastError  string `json:"last_error"`
		LastStatus int    `json:"last_status"`
	}
	if code != 0 || json.Unmarshal([]byte(list), &items) != nil || len(items) != orders {
		t.Fatalf("dlq list: exit %d, %d items:\n%s", code, len(items), list)
	}
	for _, it := range items {
		if it.LastStatus != 401 || !strings.Contains(it.LastError, "bad api_key") {
			t.Errorf("dead letter %+v", it)
		}
	}
	shown, _, _ := cli(t, "", "dlq", "show", "--state", state, items[0].ID)
	db, err := os.ReadFile(filepath.Join(state, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{wrong, base64.StdEncoding.EncodeToString([]byte(wrong + ":")), base64.StdEncoding.EncodeToString([]byte(wrong))} {
		for what, text := range map[string]string{"stdout": out, "logs": errs, "dlq list": list, "dlq show": shown, "outbox file": string(db)} {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the key (%q)", what, form)
			}
		}
	}
	if st := srv.Stats(); st.Unauthorized != int64(orders) || len(srv.Orders()) != 0 {
		t.Errorf("fake: %+v", st)
	}
	// Replayed with another variant, they are left alone (the worker would
	// strand them as pending), saying which integration they belong to.
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state, "--blueprint", "button",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-right-key", "--vendor-url", url)
	if code != 0 || !strings.Contains(errs, fmt.Sprintf("%d dead letters of button@0.1.0/retail left alone", orders)) {
		t.Errorf("replay with the default variant: exit %d\n%s\n%s", code, out, errs)
	}
	if _, _, code := cli(t, "", "dlq", "replay", items[0].ID, "--state", state, "--blueprint", "button",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-right-key"); code != 2 {
		t.Errorf("replaying another integration's ID: exit %d, want 2", code)
	}
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state, "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-right-key", "--vendor-url", url)
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, dead := summary(t, out); d != orders || dead != 0 {
		t.Errorf("replay summary %q", lastLine(out))
	}
	if len(srv.Orders()) != orders {
		t.Errorf("after replay the fake has %d orders, want %d", len(srv.Orders()), orders)
	}
	if list, _, _ := cli(t, "", "dlq", "list", "--state", state); !strings.Contains(list, "no dead letters") {
		t.Errorf("dead letters left:\n%s", list)
	}
}

func tail(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// SIGINT half-way: send stops reading, enqueues what it read, and its
// summary and exit say exactly what is left: the pending count it prints
// is the outbox's, and every line read is counted or pending.
func TestSendInterruptSummary(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	n := 3000
	path, _, _ := events(t, n)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-int-key", Latency: 20 * time.Millisecond})
	state := t.TempDir()
	cmd := exec.Command(os.Args[0], "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-int-key",
		"--state", state, "--vendor-url", url, "--max-pending", "100", "--progress", "none", path)
	cmd.Env = append(os.Environ(), "BLUEPRINT_TEST_CLI=1")
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Stats().Requests < 200 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, errs.String())
	}
	m := regexp.MustCompile(`interrupted: (\d+) requests are still pending`).FindStringSubmatch(errs.String())
	if m == nil {
		t.Fatalf("no pending count in:\n%s", tail(errs.String(), 5))
	}
	stats, _, code := cli(t, "", "outbox", "stats", "--state", state, "--format", "json")
	var st struct {
		Counts map[string]int `json:"counts"`
	}
	if code != 0 || json.Unmarshal([]byte(stats), &st) != nil {
		t.Fatalf("outbox stats: %d %s", code, stats)
	}
	if pending := atoi(m[1]); pending != st.Counts["pending"] {
		t.Errorf("summary says %d pending, the outbox holds %d", pending, st.Counts["pending"])
	}
	// Reading stopped near the limit: at most --max-pending plus the one
	// batch read when the signal came, and the requests in flight.
	if p := st.Counts["pending"]; p > 100+100+32 {
		t.Errorf("%d requests pending with --max-pending 100", p)
	}
	d, s, r, dead := summary(t, out.String())
	if d+s+r+dead+st.Counts["pending"] >= n {
		t.Errorf("summary %q + %d pending: the whole input was read despite the interrupt", lastLine(out.String()), st.Counts["pending"])
	}
}
