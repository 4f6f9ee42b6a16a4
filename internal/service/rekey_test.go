package service_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// TestServeRekey: a state rekeyed offline (what 'blueprint serve rekey'
// does: store.Rekey, then STATE/secret.key replaced) starts with the new
// key and every secret still works (the install's api_key reaches the
// vendor, the source's signature verifies); the old key is refused at
// start with SECRET_KEY_MISMATCH naming the fingerprint of the key the
// state needs; nothing secret, and not the old key, is left in the state.
func TestServeRekey(t *testing.T) {
	h := start(t)
	tok := h.login()
	st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok,
		`{"name": "Button", "variant": "default", "config": {"application_id": "app-abc123", "api_key": "`+apiKey+`"}, "delivery_mode": "server_side"}`)
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	st, out, _ = h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	if st != 201 {
		t.Fatalf("source: %d %v", st, out)
	}
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)
	h.stop()

	keyPath := filepath.Join(h.state, "secret.key")
	oldKey, err := store.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	newPath := filepath.Join(t.TempDir(), "new.key")
	newKey, err := store.LoadOrCreateKey(newPath)
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.Rekey(filepath.Join(h.state, "service.db"), oldKey, newKey, 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Sources != 1 || res.Revisions != 1 || res.SecretValues != 1 || res.AlreadyRekeyed {
		t.Fatalf("rekey: %+v", res)
	}

	// The old key (before STATE/secret.key is replaced: the crash window
	// of the command) is refused, naming the key the state needs.
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	_, err = service.New(service.Config{StateDir: h.state, AdminListen: "127.0.0.1:0", IngestListen: "127.0.0.1:0", Catalog: cat, Logger: testLogger()})
	var se *service.StartError
	if !errors.As(err, &se) || se.Code != "SECRET_KEY_MISMATCH" || !strings.Contains(se.Message, store.KeyFingerprint(newKey)) || !strings.Contains(se.Message, store.KeyFingerprint(oldKey)) {
		t.Fatalf("start with the old key: %v, want SECRET_KEY_MISMATCH naming both fingerprints", err)
	}

	if err := store.ReplaceKey(keyPath, newKey); err != nil {
		t.Fatal(err)
	}
	h2 := startWith(t, options{state: h.state})
	if st, out := h2.post("/v1/events", pk, sk, order("r-1"), time.Now().UnixMilli()); st != 200 || out["success"] != true {
		t.Fatalf("ingest after rekey: %d %v", st, out)
	}
	// The fake Button accepts only its api key: the order there is the
	// install's secret, opened with the new key.
	waitFor(t, "the order at the vendor", func() bool { return len(h2.fake.Orders()) == 1 })
	h2.stop()

	oldHex, newHex := hex.EncodeToString(oldKey), hex.EncodeToString(newKey)
	filepath.WalkDir(h.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		for _, secret := range []string{apiKey, sk, pk, oldHex, string(oldKey)} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds a secret or the old key in clear", p)
			}
		}
		if p != keyPath && bytes.Contains(b, []byte(newHex)) {
			t.Errorf("%s holds the new key", p)
		}
		return nil
	})
}
