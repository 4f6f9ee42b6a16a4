package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func testKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// newStore opens a store in a new directory; the test closes it at its end
// (closing twice is harmless).
func newStore(t *testing.T) (*Store, string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "serve.db")
	key := testKey(t)
	s, err := Open(path, key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path, key
}

func reopen(t *testing.T, s *Store, key []byte) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.Path(), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })
	return s2
}

func TestLoadOrCreateKey(t *testing.T) {
	t.Run("created when absent, then read back", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "b")
		path := filepath.Join(dir, "secret.key")
		k1, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(k1) != KeySize {
			t.Fatalf("key of %d bytes", len(k1))
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %o, want 600", fi.Mode().Perm())
		}
		di, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if di.Mode().Perm() != 0o700 {
			t.Errorf("key directory mode %o, want 700", di.Mode().Perm())
		}
		b, _ := os.ReadFile(path)
		if want := hex.EncodeToString(k1) + "\n"; string(b) != want {
			t.Errorf("file holds %q, want %q", b, want)
		}
		k2, err := LoadOrCreateKey(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k1, k2) {
			t.Error("second load returned another key")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the key file", len(entries))
		}
	})
	t.Run("existing key without newline", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "k")
		want := bytes.Repeat([]byte{0xab}, KeySize)
		os.WriteFile(path, []byte(hex.EncodeToString(want)), 0o600)
		got, err := LoadOrCreateKey(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %x, %v", got, err)
		}
	})
	bad := []struct {
		name    string
		content string
		mode    os.FileMode
		want    []string
	}{
		{"group readable", strings.Repeat("ab", 32) + "\n", 0o640, []string{"mode 0640", "chmod 600"}},
		{"world readable", strings.Repeat("ab", 32) + "\n", 0o604, []string{"chmod 600"}},
		{"too short", strings.Repeat("ab", 16) + "\n", 0o600, []string{"64 hexadecimal characters", "Restore the key file"}},
		{"too long", strings.Repeat("ab", 33) + "\n", 0o600, []string{"64 hexadecimal characters"}},
		{"not hex", strings.Repeat("zz", 32) + "\n", 0o600, []string{"64 hexadecimal characters"}},
		{"empty", "", 0o600, []string{"holds 0 bytes"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tc.mode)
			_, err := LoadOrCreateKey(path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			b, _ := os.ReadFile(path)
			if string(b) != tc.content {
				t.Error("the bad key file was changed")
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		if _, err := LoadOrCreateKey(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestOpen(t *testing.T) {
	t.Run("file mode and reopen", func(t *testing.T) {
		s, path, key := newStore(t)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("state file mode %o, want 600", fi.Mode().Perm())
		}
		reopen(t, s, key)
	})
	t.Run("wrong key", func(t *testing.T) {
		s, path, _ := newStore(t)
		s.Close()
		_, err := Open(path, testKey(t))
		if !errors.Is(err, ErrWrongKey) {
			t.Fatalf("error %v, want ErrWrongKey", err)
		}
		if !strings.Contains(err.Error(), "created with another key") {
			t.Errorf("error %q does not say why", err)
		}
	})
	t.Run("key of the wrong size", func(t *testing.T) {
		_, err := Open(filepath.Join(t.TempDir(), "s.db"), make([]byte, 16))
		if err == nil || !strings.Contains(err.Error(), "32 bytes") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("in use", func(t *testing.T) {
		_, path, key := newStore(t)
		_, err := Open(path, key)
		if err == nil || !strings.Contains(err.Error(), "in use by another process") {
			t.Fatalf("error %v", err)
		}
	})
}

func TestSigningKey(t *testing.T) {
	s, _, key := newStore(t)
	k1 := s.SigningKey()
	if len(k1) != 32 {
		t.Fatalf("signing key of %d bytes", len(k1))
	}
	if bytes.Equal(k1, key) {
		t.Error("signing key is the state key itself")
	}
	k1[0] ^= 1
	if bytes.Equal(k1, s.SigningKey()) {
		t.Error("SigningKey returned its own slice")
	}
	k1[0] ^= 1
	s2 := reopen(t, s, key)
	if !bytes.Equal(k1, s2.SigningKey()) {
		t.Error("signing key changed across reopen")
	}
	other, _, _ := newStore(t)
	if bytes.Equal(k1, other.SigningKey()) {
		t.Error("two keys give one signing key")
	}
}

func fixedClock(s *Store, t0 time.Time) *time.Time {
	now := t0
	s.now = func() time.Time { return now }
	return &now
}

// TestOwnerIDFromFirstOpen: the owner identity is in the state from its
// first open, before anything asks for it, so that a backup taken of a
// state that never ran on Kafka restores as the same owner.
func TestOwnerIDFromFirstOpen(t *testing.T) {
	s, _, key := newStore(t)
	var stored string
	if err := s.db.View(func(tx *bolt.Tx) error {
		stored = string(tx.Bucket(bMeta).Get(kOwner))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "own_") {
		t.Fatalf("after the first open the state holds owner %q", stored)
	}
	s = reopen(t, s, key)
	if id, err := s.OwnerID(); err != nil || id != stored {
		t.Errorf("OwnerID after a reopen: %q, %v; want %q", id, err, stored)
	}
}

// TestSyncKeyFile: a key file another program wrote is synced (with its
// directories) before a rekey seals the state under it; a missing file
// is an error naming it.
func TestSyncKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "next.key")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Repeat("ab", KeySize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SyncKeyFile(path); err != nil {
		t.Fatal(err)
	}
	if err := SyncKeyFile(path + ".missing"); err == nil || !strings.Contains(err.Error(), "next.key.missing") {
		t.Errorf("a missing key file: %v", err)
	}
}
