package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

// DESIGN §5: 'blueprint dlq replay [--all]' re-drives the dead letters in
// --state. send saves how it ran each integration (blueprint, variant,
// config and vendor URL, the secrets sealed), so replay needs no other
// flag; --config replaces a saved key (a corrected api_key), and the
// replayed config is saved for the next replay.
func TestReplayWithSavedBinding(t *testing.T) {
	path, orders, carts := events(t, 12)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-right-key"})
	state := t.TempDir()
	wrong := "sk-wrong-key-9f8e7d"
	out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key="+wrong,
		"--state", state, "--vendor-url", url, "--allow-private-addresses", "--progress", "none", path)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, dead := summary(t, out); d != carts || dead != orders {
		t.Fatalf("send: %q", lastLine(out))
	}
	saved, err := os.ReadFile(filepath.Join(state, bindingsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{wrong, base64.StdEncoding.EncodeToString([]byte(wrong)), url, "app-abc123"} {
		if strings.Contains(string(saved), secret) {
			t.Errorf("%s holds %q in clear text:\n%s", bindingsFile, secret, saved)
		}
	}
	if !strings.Contains(string(saved), `"button@0.1.0/retail"`) {
		t.Errorf("%s does not name the integration:\n%s", bindingsFile, saved)
	}

	// No flag but --state: the same wrong key, dead again; exit 0 (final).
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state)
	if code != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", code, out, errs)
	}
	if d, _, _, dead := summary(t, out); d != 0 || dead != orders {
		t.Errorf("replay with the saved config: %q, want %d dead-lettered", lastLine(out), orders)
	}
	if strings.Contains(out+errs, wrong) {
		t.Error("replay printed the key")
	}
	// One ID, with a corrected key: only it is delivered.
	var items []struct {
		ID string `json:"id"`
	}
	list, _, _ := cli(t, "", "dlq", "list", "--state", state, "--format", "json")
	if json.Unmarshal([]byte(list), &items) != nil || len(items) != orders {
		t.Fatalf("dlq list:\n%s", list)
	}
	out, errs, code = cli(t, "", "dlq", "replay", items[0].ID, "--state", state, "--config", "api_key=sk-right-key")
	if d, _, _, dead := summary(t, out); code != 0 || d != 1 || dead != 0 {
		t.Errorf("replay of one ID: exit %d, %q\n%s", code, lastLine(out), errs)
	}
	// The corrected key was saved: the rest go with no flag.
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state)
	if d, _, _, dead := summary(t, out); code != 0 || d != orders-1 || dead != 0 {
		t.Errorf("replay after the correction: exit %d, %q\n%s", code, lastLine(out), errs)
	}
	if len(srv.Orders()) != orders {
		t.Errorf("the fake has %d orders, want %d", len(srv.Orders()), orders)
	}
	if _, _, code := cli(t, "", "dlq", "replay", "--all", "--state", state, "--variant", "retail"); code != 2 {
		t.Errorf("--variant without --blueprint: exit %d, want 2", code)
	}
}

// Dead letters queued without a saved binding (an older send, or the file
// removed) are left alone by 'replay --all', saying how to replay them; an
// ID of one is a usage error.
func TestReplayWithoutSavedBinding(t *testing.T) {
	path, orders, _ := events(t, 6)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-right-key"})
	state := t.TempDir()
	out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-wrong",
		"--state", state, "--vendor-url", url, "--progress", "none", path)
	if code != 0 {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errs)
	}
	if err := os.Remove(filepath.Join(state, bindingsFile)); err != nil {
		t.Fatal(err)
	}
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state)
	if code != 0 || lastLine(out) != "0 delivered, 0 skipped, 0 rejected, 0 dead-lettered" ||
		!strings.Contains(errs, "dead letters of button@0.1.0/retail left alone") || !strings.Contains(errs, "--blueprint") {
		t.Errorf("replay --all: exit %d\n%s\n%s", code, out, errs)
	}
	var items []struct {
		ID string `json:"id"`
	}
	list, _, _ := cli(t, "", "dlq", "list", "--state", state, "--format", "json")
	if json.Unmarshal([]byte(list), &items) != nil || len(items) != orders {
		t.Fatalf("dlq list:\n%s", list)
	}
	if _, errs, code := cli(t, "", "dlq", "replay", items[0].ID, "--state", state); code != 2 || !strings.Contains(errs, "no config was saved") {
		t.Errorf("replay of an ID with no saved config: exit %d, want 2\n%s", code, errs)
	}
	// Replayed with the flags, at the sandbox (the key still wrong): what
	// it ran with is saved, its vendor URL included, so the next flagless
	// replay goes to the sandbox too, never to the vendor's real host.
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state, "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-wrong", "--vendor-url", url)
	if d, _, _, dead := summary(t, out); code != 0 || d != 0 || dead != orders {
		t.Fatalf("replay with flags: exit %d, %q\n%s", code, lastLine(out), errs)
	}
	out, errs, code = cli(t, "", "dlq", "replay", "--all", "--state", state, "--config", "api_key=sk-right-key", "--max-attempts", "1")
	if d, _, _, dead := summary(t, out); code != 0 || d != orders || dead != 0 || len(srv.Orders()) != orders {
		t.Errorf("flagless replay after one with --vendor-url: exit %d, %q, %d orders at the sandbox\n%s", code, lastLine(out), len(srv.Orders()), errs)
	}
}

// DESIGN §5: dlq exits 0. A --state that nothing was sent with has no dead
// letters: list says so (an empty list in JSON), replay --all replays none;
// both say on stderr that there is no outbox (a mistyped --state), and
// neither creates anything there.
func TestDLQOnStateWithoutOutbox(t *testing.T) {
	state := filepath.Join(t.TempDir(), "never-used")
	for _, tt := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"dlq", "list", "--state", state}, "no dead letters\n", 0},
		{[]string{"dlq", "list", "--state", state, "--format", "json"}, "[]\n", 0},
		{[]string{"dlq", "replay", "--all", "--state", state}, "0 delivered, 0 skipped, 0 rejected, 0 dead-lettered\n", 0},
		{[]string{"dlq", "replay", "abc", "--state", state}, "", 2},
		{[]string{"dlq", "show", "abc", "--state", state}, "", 1},
	} {
		out, errs, code := cli(t, "", tt.args...)
		if code != tt.code || out != tt.out || tt.code == 0 && !strings.Contains(errs, "no outbox in") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d, %q", tt.args, code, out, errs, tt.code, tt.out)
		}
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("the state was created: %v", err)
	}
}

// Dead letters of two integrations in one --state (two variants) are each
// replayed with their own saved binding, in one run, with no --blueprint.
func TestReplaySavedBindingsOfTwoIntegrations(t *testing.T) {
	path, orders, _ := events(t, 6)
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-right-key"})
	state := t.TempDir()
	for _, variant := range []string{"default", "retail"} {
		out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", variant,
			"--config", "application_id=app-abc123", "--config", "api_key=sk-wrong",
			"--state", state, "--vendor-url", url, "--progress", "none", path)
		if code != 0 {
			t.Fatalf("send %s: exit %d\n%s\n%s", variant, code, out, errs)
		}
	}
	out, errs, code := cli(t, "", "dlq", "replay", "--all", "--state", state, "--config", "api_key=sk-right-key")
	if d, _, _, dead := summary(t, out); code != 0 || d != 2*orders || dead != 0 {
		t.Errorf("replay: exit %d, %q, want %d delivered\n%s", code, lastLine(out), 2*orders, errs)
	}
	for _, name := range []string{"button@0.1.0/default", "button@0.1.0/retail"} {
		if !strings.Contains(errs, "dead letters of "+name) {
			t.Errorf("stderr does not name %s:\n%s", name, errs)
		}
	}
	if got := len(srv.Orders()); got != orders {
		t.Errorf("the fake has %d orders, want %d (the same orders of both variants)", got, orders)
	}
}
