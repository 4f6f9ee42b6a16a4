package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// KeySize is the length of the state's secret key in bytes.
const KeySize = 32

// LoadOrCreateKey returns the 32-byte secret key held in the file at path,
// creating the file (mode 0600, missing directories 0700) with a new random
// key when it does not exist. The file holds the key as 64 hexadecimal
// characters and a newline. A file that group or others may read or write,
// or that does not hold exactly one key, is an error that says how to fix it:
// the key protects every secret in the state, and a wrong one is never
// silently replaced.
func LoadOrCreateKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("secret key file: no path given")
	}
	key, err := readKey(path)
	var nk *notAKeyError
	if errors.As(err, &nk) {
		return nil, fmt.Errorf("%w. Restore the key file this state was created with; only if the state is new or disposable, move the file aside and a new key is created on the next start (secrets encrypted with the old key can then not be read)", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	return readKey(path)
}

// LoadKey returns the key held in the file at path, as LoadOrCreateKey
// does, but never creates one: a process that reads secrets sealed by
// another (a Kafka process/deliver role reading the integrations topic)
// must use that process's key, and a new key would open nothing. A
// missing file is an error wrapping fs.ErrNotExist that says so.
func LoadKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("secret key file: no path given")
	}
	key, err := readKey(path)
	var nk *notAKeyError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("secret key file %s does not exist: copy the key file of the process that owns the state (its --secret-key-file, by default STATE/secret.key) here, mode 0600: %w", path, err)
	case errors.As(err, &nk):
		return nil, fmt.Errorf("%w: copy the key file of the process that owns the state (its --secret-key-file, by default STATE/secret.key) here again, mode 0600", err)
	}
	return key, err
}

// notAKeyError is a key file that does not hold one key; what to do about
// it depends on who reads it (the owner may start over, a follower must
// copy the owner's file again).
type notAKeyError struct {
	path string
	size int
}

func (e *notAKeyError) Error() string {
	return fmt.Sprintf("secret key file %s holds %d bytes, not a key: it must hold exactly %d hexadecimal characters and a newline", e.path, e.size, 2*KeySize)
}

func readKey(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		// Follow it, but check the file it names.
		if fi, err = os.Stat(path); err != nil {
			return nil, fmt.Errorf("secret key file %s: %w", path, err)
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file (%s); point at the key file, or at a path that does not exist yet to create a new key", path, fi.Mode().Type())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("secret key file %s has mode %04o: group and others must have no access to it; run: chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	text := bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	key, err := hex.DecodeString(string(text))
	if err != nil || len(key) != KeySize {
		return nil, &notAKeyError{path: path, size: len(b)}
	}
	return key, nil
}

// createKey writes a new key to path without ever replacing an existing
// file: the key is written and synced to a temporary file in the same
// directory, then hard-linked into place, so that two processes starting at
// once agree on one key and a crash never leaves a short key file.
func createKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secret key file %s: creating its directory: %w", path, err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("secret key file %s: %w", path, err)
	}
	tmp, err := writeKeyTemp(path, key, "writing a new key")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("secret key file %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// SyncKeyFile makes the key file at path durable: its content, and its
// entry in its directory and each parent's. A caller about to seal data
// that only this key opens (a rekey) calls it first: a key file written a
// moment ago by another program (openssl rand -hex 32 > next.key) may
// still be in the page cache only, and a power loss after the data
// commits would leave data no key opens.
func SyncKeyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("secret key file %s: %w", path, err)
	}
	serr := f.Sync()
	if cerr := f.Close(); serr == nil {
		serr = cerr
	}
	if serr != nil {
		return fmt.Errorf("secret key file %s: syncing it: %w", path, serr)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("secret key file %s: %w", path, err)
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		syncDir(dir)
		if filepath.Dir(dir) == dir {
			return nil
		}
	}
}

// writeKeyTemp writes key as a key file (hex and a newline, mode 0600)
// to a new temporary file beside path and syncs it, for the caller to link
// or rename into place; it returns the temporary file's name (the caller
// removes it). what names the step in an error.
func writeKeyTemp(path string, key []byte, what string) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".key-*")
	if err != nil {
		return "", fmt.Errorf("secret key file %s: %w", path, err)
	}
	text := hex.AppendEncode(make([]byte, 0, 2*KeySize+1), key)
	text = append(text, '\n')
	werr := tmp.Chmod(0o600)
	if werr == nil {
		_, werr = tmp.Write(text)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("secret key file %s: %s: %w", path, what, werr)
	}
	return tmp.Name(), nil
}

// syncDir makes a new directory entry durable, where the platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// ReplaceKey writes key to the file at path, replacing the file there:
// the key is written and synced to a temporary file (mode 0600) in the
// same directory, then renamed over path, so that a crash leaves either
// the old file or the new one, never a short one.
func ReplaceKey(path string, key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("secret key file %s: the key must be %d bytes", path, KeySize)
	}
	dir := filepath.Dir(path)
	tmp, err := writeKeyTemp(path, key, "writing the key")
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("secret key file %s: %w", path, err)
	}
	syncDir(dir)
	return nil
}
