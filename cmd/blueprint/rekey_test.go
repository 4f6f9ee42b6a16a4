package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// rekeyState makes a serve state with a source, an integration with a
// secret config value, and a binding send saved; it returns the state's
// key and the secrets.
func rekeyState(t *testing.T) (state string, key []byte, secrets []string) {
	t.Helper()
	state = t.TempDir()
	key, err := store.LoadOrCreateKey(filepath.Join(state, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(state, "service.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	src := &store.Source{Name: "web"}
	if err := st.CreateSource(src); err != nil {
		t.Fatal(err)
	}
	in := &store.Integration{Vendor: "button", Version: "1", Name: "Button", Enabled: true}
	if err := st.CreateIntegration(in, &store.Revision{Config: map[string]any{"application_id": "app-abc123", "api_key": "sk-rekey-int-secret"}}, []string{"api_key"}); err != nil {
		t.Fatal(err)
	}
	if err := saveBinding(state, "", "b1", "button", "default", bindingSecrets{Config: map[string]any{"api_key": "sk-rekey-bind-secret"}}); err != nil {
		t.Fatal(err)
	}
	return state, key, []string{src.SecretKey, src.PipelineKey, "sk-rekey-int-secret", "sk-rekey-bind-secret"}
}

// checkRekeyed: the state opens with key only and its secrets are whole;
// no file of the state holds a secret or the old key.
func checkRekeyed(t *testing.T, state string, oldKey, key []byte, secrets []string) {
	t.Helper()
	db := filepath.Join(state, "service.db")
	if _, err := store.Open(db, oldKey); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("open with the old key: %v, want ErrWrongKey", err)
	}
	st, err := store.Open(db, key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srcs, err := st.ListSources()
	if err != nil || len(srcs) != 1 || srcs[0].SecretKey != secrets[0] || srcs[0].PipelineKey != secrets[1] {
		t.Fatalf("sources after rekey: %v %v", srcs, err)
	}
	ins, err := st.ListIntegrations()
	if err != nil || len(ins) != 1 {
		t.Fatalf("integrations: %v %v", ins, err)
	}
	rev, err := st.GetRevision(ins[0].ID, 1)
	if err != nil || rev.Config["api_key"] != secrets[2] {
		t.Fatalf("revision after rekey: %v %v", rev, err)
	}
	_, sec, ok, err := loadBinding(state, "b1")
	if err != nil || !ok || sec.Config["api_key"] != secrets[3] {
		t.Fatalf("binding after rekey: %v %v %v", sec, ok, err)
	}
	oldHex := hex.EncodeToString(oldKey)
	filepath.WalkDir(state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, s := range append([]string{oldHex, string(oldKey)}, secrets...) {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret or the old key in clear", p)
			}
		}
		return nil
	})
}

// TestRekeyDefaultKey: with the default STATE/secret.key, rekey seals
// everything again, replaces the key file with the new key, and says
// what it did without a secret; run again it changes nothing.
func TestRekeyDefaultKey(t *testing.T) {
	state, oldKey, secrets := rekeyState(t)
	newPath := filepath.Join(t.TempDir(), "new.key")
	out, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--new-key-file", newPath)
	if code != 0 {
		t.Fatalf("rekey: %d %s %s", code, out, errs)
	}
	for _, want := range []string{"new key: created " + newPath, "1 sources, 1 secret values in 1 integration revisions", "bindings " + filepath.Join(state, "bindings.json") + ": 1 sealed again", "replaced by the new key"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	newKey, err := store.LoadKey(newPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(newPath); fi.Mode().Perm() != 0o600 {
		t.Errorf("new key file mode %v", fi.Mode())
	}
	if k, err := store.LoadKey(filepath.Join(state, "secret.key")); err != nil || !bytes.Equal(k, newKey) {
		t.Fatalf("STATE/secret.key does not hold the new key: %v", err)
	}
	for _, s := range append(secrets, hex.EncodeToString(oldKey), hex.EncodeToString(newKey)) {
		if strings.Contains(out+errs, s) {
			t.Errorf("the output shows a secret or a key: %s", s)
		}
	}
	checkRekeyed(t, state, oldKey, newKey, secrets)

	out, errs, code = cli(t, "", "serve", "rekey", "--state", state, "--new-key-file", newPath)
	if code != 0 || !strings.Contains(out, "already sealed with the new key") || strings.Contains(out, "replaced") {
		t.Fatalf("rekey again: %d %s %s", code, out, errs)
	}
	checkRekeyed(t, state, oldKey, newKey, secrets)
}

// TestRekeyCrashAfterCommit: a failure after the state is committed under
// the new key and before STATE/secret.key is replaced leaves a state the
// new key file opens; running the command again finishes the job.
func TestRekeyCrashAfterCommit(t *testing.T) {
	state, oldKey, secrets := rekeyState(t)
	newPath := filepath.Join(t.TempDir(), "new.key")
	rekeyAfterCommit = func() error { return errors.New("injected crash") }
	_, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--new-key-file", newPath)
	rekeyAfterCommit = nil
	if code != 1 || !strings.Contains(errs, "injected crash") {
		t.Fatalf("rekey with a crash: %d %s", code, errs)
	}
	newKey, err := store.LoadKey(newPath)
	if err != nil {
		t.Fatal(err)
	}
	// The window: the state is under the new key, the default key file
	// still holds the old one.
	if k, _ := store.LoadKey(filepath.Join(state, "secret.key")); !bytes.Equal(k, oldKey) {
		t.Fatal("STATE/secret.key changed before the rekey finished")
	}
	if st, err := store.Open(filepath.Join(state, "service.db"), newKey); err != nil {
		t.Fatalf("the new key does not open the committed state: %v", err)
	} else {
		st.Close()
	}
	out, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--new-key-file", newPath)
	if code != 0 || !strings.Contains(out, "already sealed with the new key") || !strings.Contains(out, "1 sealed again") || !strings.Contains(out, "replaced by the new key") {
		t.Fatalf("rekey again: %d %s %s", code, out, errs)
	}
	checkRekeyed(t, state, oldKey, newKey, secrets)
}

// TestRekeyRollback: a failure inside the transaction leaves the state
// under the old key, whole.
func TestRekeyRollback(t *testing.T) {
	state, oldKey, secrets := rekeyState(t)
	restore := store.SetRekeyHook(func() error { return errors.New("injected failure") })
	_, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--new-key-file", filepath.Join(t.TempDir(), "new.key"))
	restore()
	if code != 1 || !strings.Contains(errs, "injected failure") || !strings.Contains(errs, "unchanged") {
		t.Fatalf("rekey with a failure: %d %s", code, errs)
	}
	st, err := store.Open(filepath.Join(state, "service.db"), oldKey)
	if err != nil {
		t.Fatalf("the old key no longer opens the state: %v", err)
	}
	srcs, err := st.ListSources()
	st.Close()
	if err != nil || len(srcs) != 1 || srcs[0].SecretKey != secrets[0] {
		t.Fatalf("sources: %v %v", srcs, err)
	}
	if _, sec, ok, err := loadBinding(state, "b1"); err != nil || !ok || sec.Config["api_key"] != secrets[3] {
		t.Fatalf("binding: %v %v", ok, err)
	}
}

// TestRekeyInUse: a state held open (a serve running on it) is refused at
// once, and nothing changes.
func TestRekeyInUse(t *testing.T) {
	state, oldKey, _ := rekeyState(t)
	st, err := store.Open(filepath.Join(state, "service.db"), oldKey)
	if err != nil {
		t.Fatal(err)
	}
	_, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--new-key-file", filepath.Join(t.TempDir(), "new.key"))
	st.Close()
	if code != 1 || !strings.Contains(errs, "in use by another process") || !strings.Contains(errs, "nothing was changed") {
		t.Fatalf("rekey of a state in use: %d %s", code, errs)
	}
	if k, _ := store.LoadKey(filepath.Join(state, "secret.key")); !bytes.Equal(k, oldKey) {
		t.Fatal("the key file changed")
	}
	if st, err = store.Open(filepath.Join(state, "service.db"), oldKey); err != nil {
		t.Fatal(err)
	}
	st.Close()
}

// TestRekeyExplicitKeyFiles: with --secret-key-file elsewhere, that file
// is not touched (serve then takes --secret-key-file NEW), and the
// bindings, sealed with STATE/secret.key, are left as they are. Usage
// mistakes exit 2; a wrong old key exits 1 and changes nothing.
func TestRekeyExplicitKeyFiles(t *testing.T) {
	state, stateKey, secrets := rekeyState(t)
	// Move the serve key out of the state; bindings keep STATE/secret.key.
	dir := t.TempDir()
	oldPath := filepath.Join(dir, "old.key")
	if err := os.Rename(filepath.Join(state, "secret.key"), oldPath); err != nil {
		t.Fatal(err)
	}
	if err := store.ReplaceKey(filepath.Join(state, "secret.key"), stateKey); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--secret-key-file", oldPath, "--new-key-file", oldPath); code != 2 || !strings.Contains(errs, "is the current key file") {
		t.Fatalf("same file: %d %s", code, errs)
	}
	if _, errs, code := cli(t, "", "serve", "rekey", "--state", state); code != 2 || !strings.Contains(errs, "--new-key-file") {
		t.Fatalf("no new key: %d %s", code, errs)
	}
	wrong := filepath.Join(dir, "wrong.key")
	if _, err := store.LoadOrCreateKey(wrong); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--secret-key-file", wrong, "--new-key-file", filepath.Join(dir, "n1.key")); code != 1 || !strings.Contains(errs, "does not match this state") {
		t.Fatalf("wrong old key: %d %s", code, errs)
	}
	newPath := filepath.Join(dir, "new.key")
	out, errs, code := cli(t, "", "serve", "rekey", "--state", state, "--secret-key-file", oldPath, "--new-key-file", newPath)
	if code != 0 || !strings.Contains(out, "left as they are") || !strings.Contains(out, "--secret-key-file "+newPath) {
		t.Fatalf("rekey: %d %s %s", code, out, errs)
	}
	if k, _ := store.LoadKey(oldPath); !bytes.Equal(k, stateKey) {
		t.Fatal("--secret-key-file OLD was changed")
	}
	newKey, _ := store.LoadKey(newPath)
	st, err := store.Open(filepath.Join(state, "service.db"), newKey)
	if err != nil {
		t.Fatal(err)
	}
	srcs, _ := st.ListSources()
	st.Close()
	if len(srcs) != 1 || srcs[0].SecretKey != secrets[0] {
		t.Fatalf("sources: %v", srcs)
	}
	if _, sec, ok, err := loadBinding(state, "b1"); err != nil || !ok || sec.Config["api_key"] != secrets[3] {
		t.Fatalf("binding: %v %v", ok, err)
	}
}
