package store

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSealer: a value opens with the key, info and additional data it was
// sealed with, and with nothing else; each seal has its own nonce.
func TestSealer(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	other := bytes.Repeat([]byte{8}, KeySize)
	s, err := NewSealer(key, "info-a")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Seal("rec/1/api_key", []byte(`"sk-1"`))
	b, _ := s.Seal("rec/1/api_key", []byte(`"sk-1"`))
	if bytes.Equal(a, b) {
		t.Error("two seals of one value are equal (nonce reused)")
	}
	if bytes.Contains(a, []byte("sk-1")) {
		t.Error("the sealed value holds the plain text")
	}
	if got, err := s.Open("rec/1/api_key", a); err != nil || string(got) != `"sk-1"` {
		t.Fatalf("Open = %q, %v", got, err)
	}
	otherInfo, _ := NewSealer(key, "info-b")
	otherKey, _ := NewSealer(other, "info-a")
	for name, f := range map[string]func() ([]byte, error){
		"other aad":  func() ([]byte, error) { return s.Open("rec/2/api_key", a) },
		"other info": func() ([]byte, error) { return otherInfo.Open("rec/1/api_key", a) },
		"other key":  func() ([]byte, error) { return otherKey.Open("rec/1/api_key", a) },
		"truncated":  func() ([]byte, error) { return s.Open("rec/1/api_key", a[:10]) },
	} {
		if _, err := f(); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
	if _, err := NewSealer(key[:16], "x"); err == nil {
		t.Error("a 16-byte key was taken")
	}
}

// TestLoadKey reads an existing key and never creates one.
func TestLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret.key")
	if _, err := LoadKey(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadKey of a missing file: %v, want ErrNotExist", err)
	}
	want, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadKey(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("LoadKey = %x, %v; want %x", got, err, want)
	}
	if _, err := LoadKey(""); err == nil {
		t.Error("LoadKey(\"\") succeeded")
	}
	// A file that holds no key: the owner may start over with a new key,
	// a follower must copy the owner's again (a new key opens nothing).
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(bad); err == nil || !strings.Contains(err.Error(), "copy the key file of the process that owns the state") || strings.Contains(err.Error(), "move the file aside") {
		t.Errorf("LoadKey of a file holding no key: %v", err)
	}
	if _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "move the file aside") {
		t.Errorf("LoadOrCreateKey of a file holding no key: %v", err)
	}
}
