// Package store keeps the state of blueprint serve in one bbolt file: users
// and their refresh tokens, sources, integrations with their immutable
// revisions, and the rejects (dead letters of the runtime's decisions).
//
// Every secret it is given (source secret and pipeline keys, the config
// values an integration marks secret) is encrypted with AES-256-GCM under a
// subkey of the state's key before it is written, with a random nonce and
// the record it belongs to as additional data, so that nothing secret is in
// the file in clear and a ciphertext cannot be moved to another record. The
// file also holds an encrypted check value, so that a wrong key is refused at
// Open rather than discovered at the first secret.
//
// A Store is safe for concurrent use. The values it returns are copies: a
// caller may change them freely and writes them back with the Update
// methods.
package store

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	// ErrNotFound: no record has that ID (or key).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the name (or email) is taken by another record.
	ErrConflict = errors.New("conflict")
	// ErrStale: the integration changed since the caller read it (another
	// update appended a revision). It wraps ErrConflict.
	ErrStale = fmt.Errorf("%w: the integration was changed by another request; read it again and retry", ErrConflict)
	// ErrWrongKey: the key given to Open is not the one the state was
	// created with.
	ErrWrongKey = errors.New("the secret key does not match this state: it was created with another key; use the key file it was created with")
	// ErrRefreshUsed: RotateRefresh was given a token already used or
	// revoked.
	ErrRefreshUsed = errors.New("refresh token already used or revoked")
	// ErrInvalidCursor: a list cursor that this store did not hand out.
	ErrInvalidCursor = errors.New("invalid cursor")
)

const (
	storeInfo   = "blueprint-store-v1"
	jwtInfo     = "blueprint-jwt-v1"
	formatValue = "1"
	checkPlain  = "blueprint-store-v1 key check"
	// sealVersion prefixes every ciphertext, so that a later format (or
	// key rotation) can tell its own values apart.
	sealVersion = 1
	nonceSize   = 12
)

var (
	bMeta         = []byte("meta")
	bUsers        = []byte("users")
	bUsersEmail   = []byte("users_email")
	bRefresh      = []byte("refresh")
	bRefreshUser  = []byte("refresh_user")
	bSources      = []byte("sources")
	bSourcesName  = []byte("sources_name")
	bSourcesPK    = []byte("sources_pk")
	bIntegrations = []byte("integrations")
	bIntName      = []byte("integrations_name")
	bRevisions    = []byte("revisions")
	bRejects      = []byte("rejects")

	allBuckets = [][]byte{bMeta, bUsers, bUsersEmail, bRefresh, bRefreshUser, bSources, bSourcesName, bSourcesPK, bIntegrations, bIntName, bRevisions, bRejects}

	kFormat = []byte("format")
	kCheck  = []byte("key_check")
)

// Store is the state of blueprint serve. Create it with Open; Close it.
type Store struct {
	db      *bolt.DB
	path    string
	sealer  *Sealer
	signing []byte

	// now is the clock for CreatedAt and UpdatedAt stamps and for purging
	// expired refresh tokens.
	now func() time.Time
	// maxRejects is how many rejects an integration keeps.
	maxRejects int
}

// MaxRejects is how many rejects each integration keeps; the oldest are
// dropped first.
const MaxRejects = 10_000

// Open opens (creating it, mode 0600, when absent) the state file at path
// with the 32-byte key from LoadOrCreateKey. A key other than the one the
// state was created with is refused with an error wrapping ErrWrongKey; a
// state held open by another process is refused after a second.
func Open(path string, key []byte) (*Store, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("store %s: the secret key must be %d bytes, not %d", path, KeySize, len(key))
	}
	sealer, err := NewSealer(key, storeInfo)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	signing, err := hkdf.Key(sha256.New, key, nil, jwtInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("store %s: deriving the signing key: %w", path, err)
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("store %s: the state is in use by another process (another blueprint serve on the same --state?)", path)
		}
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, sealer: sealer, signing: signing, now: time.Now, maxRejects: MaxRejects}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		// The owner identity exists from the state's first open, Kafka or
		// not, so that every backup of it carries it (OwnerID).
		if meta.Get(kOwner) == nil {
			if err := meta.Put(kOwner, []byte(newID("own_"))); err != nil {
				return err
			}
		}
		if f := meta.Get(kFormat); f == nil {
			if err := meta.Put(kFormat, []byte(formatValue)); err != nil {
				return err
			}
		} else if string(f) != formatValue {
			return fmt.Errorf("the state has format %q, this program reads format %s: use the blueprint release that wrote it", f, formatValue)
		}
		check := meta.Get(kCheck)
		if check == nil {
			c, err := s.seal("check", []byte(checkPlain))
			if err != nil {
				return err
			}
			if err := meta.Put(kKeyID, []byte(KeyFingerprint(key))); err != nil {
				return err
			}
			return meta.Put(kCheck, c)
		}
		plain, err := s.open("check", check)
		if err != nil || string(plain) != checkPlain {
			return wrongKey(meta, key)
		}
		if meta.Get(kKeyID) == nil {
			return meta.Put(kKeyID, []byte(KeyFingerprint(key)))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store %s: %w", path, err)
	}
	return s, nil
}

// Close closes the state file, after the transactions under way.
func (s *Store) Close() error { return s.db.Close() }

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// SigningKey returns the 32-byte HMAC key for the service's JWTs (HS256),
// derived from the state's key with HKDF-SHA256 (info "blueprint-jwt-v1"),
// so that it is stable across restarts and independent of the encryption
// subkey. The slice is a copy.
func (s *Store) SigningKey() []byte { return bytes.Clone(s.signing) }

// seal and open encrypt and decrypt with the state's subkey (Sealer).
func (s *Store) seal(aad string, plain []byte) ([]byte, error) { return s.sealer.Seal(aad, plain) }

func (s *Store) open(aad string, sealed []byte) ([]byte, error) { return s.sealer.Open(aad, sealed) }

// newID returns prefix and 24 random hexadecimal characters.
func newID(prefix string) string {
	return prefix + randomHex(12)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("store: no randomness: " + err.Error()) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b)
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	raw := b.Get(key)
	if raw == nil {
		return ErrNotFound
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("damaged record %q: %w", key, err)
	}
	return nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, raw)
}

var kOwner = []byte("owner_id")

// OwnerID is the state's owner identity: random, created when the state
// is first opened by a release that knows it, and kept in the state for
// ever (a copy or a backup of the state has the same one; a backup taken
// before that release has none, and gets a new one when restored). It is not secret: Kafka mode stamps it on every
// record the state publishes, so that two states publishing to one
// cluster are told apart.
func (s *Store) OwnerID() (string, error) {
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if v := meta.Get(kOwner); v != nil {
			id = string(v)
			return nil
		}
		id = newID("own_")
		return meta.Put(kOwner, []byte(id))
	})
	if err != nil {
		return "", fmt.Errorf("store %s: owner id: %w", s.path, err)
	}
	return id, nil
}
