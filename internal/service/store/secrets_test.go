package store

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestNoSecretInClear writes every kind of secret the store keeps, closes
// it, and reads every byte under the state directory: no secret may be
// there in clear (nor in the encodings a careless record would use), while
// a non-secret value is (so that the search is known to work).
func TestNoSecretInClear(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	key, err := LoadOrCreateKey(filepath.Join(t.TempDir(), "keys", "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(filepath.Join(stateDir, "serve.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string

	src := &Source{Name: "website"}
	if err := s.CreateSource(src); err != nil {
		t.Fatal(err)
	}
	given := &Source{Name: "app", PipelineKey: "dk_live_GIVEN-PIPELINE-KEY-0001", SecretKey: "GIVEN-SOURCE-SECRET-0002"}
	if err := s.CreateSource(given); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, src.PipelineKey, src.SecretKey, given.PipelineKey, given.SecretKey)

	in := &Integration{Vendor: "button", Name: "Button"}
	cfg := map[string]any{"api_key": "BUTTON-API-KEY-SECRET-0003", "password": "HUNTER2-PASSWORD-0004", "brand_id": "VISIBLE-BRAND-ID-0005"}
	if err := s.CreateIntegration(in, &Revision{Config: cfg}, []string{"api_key", "password"}); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, "BUTTON-API-KEY-SECRET-0003", "HUNTER2-PASSWORD-0004")
	cfg2 := map[string]any{"api_key": "ROTATED-API-KEY-SECRET-0006", "password": map[string]any{"nested": "NESTED-SECRET-0007"}, "brand_id": "VISIBLE-BRAND-ID-0005"}
	if err := s.UpdateIntegration(in, &Revision{Config: cfg2}, []string{"api_key", "password"}); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, "ROTATED-API-KEY-SECRET-0006", "NESTED-SECRET-0007")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var all [][]byte
	var files []string
	err = filepath.WalkDir(stateDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		all = append(all, b)
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no file in the state directory")
	}
	raw := bytes.Join(all, nil)
	if !bytes.Contains(raw, []byte("VISIBLE-BRAND-ID-0005")) {
		t.Fatal("the search does not find a value stored in clear: it proves nothing")
	}
	forms := func(secret string) map[string][]byte {
		q, _ := json.Marshal(secret)
		return map[string][]byte{
			"clear":          []byte(secret),
			"base64":         []byte(base64.StdEncoding.EncodeToString([]byte(secret))),
			"base64 of JSON": []byte(base64.StdEncoding.EncodeToString(q)),
			"hex":            []byte(hex.EncodeToString([]byte(secret))),
			"upper case":     bytes.ToUpper([]byte(secret)),
		}
	}
	for _, secret := range secrets {
		for form, b := range forms(secret) {
			if bytes.Contains(raw, b) {
				t.Errorf("secret %q is in the state directory (%s)", secret, form)
			}
		}
		// The half of a secret, too: a truncated copy would leak it.
		if half := secret[len(secret)/2:]; bytes.Contains(raw, []byte(half)) {
			t.Errorf("the second half of secret %q is in the state directory", secret)
		}
	}
	for _, k := range [][]byte{key, []byte(hex.EncodeToString(key)), s.SigningKey()} {
		if bytes.Contains(raw, k) {
			t.Errorf("the key (or a key derived from it) is in the state directory")
		}
	}

	// And the store reads them all back.
	s2, err := Open(filepath.Join(stateDir, "serve.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.SourceByPipelineKey(given.PipelineKey)
	if err != nil || got.SecretKey != given.SecretKey {
		t.Fatalf("source after reopen: %+v, %v", got, err)
	}
	revs, err := s2.Revisions(in.ID)
	if err != nil || len(revs) != 2 || revs[0].Config["api_key"] != "BUTTON-API-KEY-SECRET-0003" || revs[1].Config["password"].(map[string]any)["nested"] != "NESTED-SECRET-0007" {
		t.Fatalf("revisions after reopen: %+v, %v", revs, err)
	}
}

// TestSecretBoundToItsRecord moves a ciphertext from one record to another
// in the raw file: it must not decrypt there.
func TestSecretBoundToItsRecord(t *testing.T) {
	s, _, _ := newStore(t)
	a := &Source{Name: "a", SecretKey: "SECRET-A"}
	b := &Source{Name: "b", SecretKey: "SECRET-B"}
	s.CreateSource(a)
	s.CreateSource(b)
	// Copy a's sealed secret key into b's record.
	if err := s.db.Update(func(tx *bolt.Tx) error {
		var ra, rb sourceRecord
		getJSON(tx.Bucket(bSources), []byte(a.ID), &ra)
		getJSON(tx.Bucket(bSources), []byte(b.ID), &rb)
		rb.SecretKey = ra.SecretKey
		return putJSON(tx.Bucket(bSources), []byte(b.ID), rb)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.SourceByID(b.ID); err == nil {
		t.Fatalf("a secret moved to another record decrypts: %+v", got)
	}
	if _, err := s.SourceByID(a.ID); err != nil {
		t.Fatal(err)
	}
}
