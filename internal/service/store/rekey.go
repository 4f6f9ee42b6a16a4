package store

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrInUse: the state file is held open by another process (a running
// blueprint serve on the same state).
var ErrInUse = errors.New("the state is in use by another process: stop the blueprint serve running on this state first")

// kKeyID is the fingerprint of the key the state's secrets are sealed
// with (KeyFingerprint), so that a wrong key file is refused naming the
// key the state needs.
var kKeyID = []byte("key_fingerprint")

// KeyFingerprint names key without revealing it: the first 8 bytes of a
// HKDF-SHA256 subkey, in hexadecimal. It is what the state records and
// what errors and 'blueprint serve rekey' print.
func KeyFingerprint(key []byte) string {
	b, err := hkdf.Key(sha256.New, key, nil, "blueprint-key-fingerprint-v1", 8)
	if err != nil {
		return "unknown"
	}
	return hex.EncodeToString(b)
}

// RekeyResult is what Rekey did: how many values it sealed again. Done is
// true when the state was already sealed with the new key (a rekey run
// again after it committed), and nothing was written.
type RekeyResult struct {
	Sources        int // sources, each with two sealed values
	Revisions      int // integration revisions with secret values
	SecretValues   int // secret config values of those revisions
	AlreadyRekeyed bool
}

// rekeyHook, when set (tests), runs inside Rekey's transaction after every
// value is sealed again; an error it returns rolls the transaction back.
var rekeyHook func() error

// Rekey seals every secret of the state file at path again, under newKey,
// in one bbolt transaction: the state is either wholly under oldKey (the
// transaction did not commit, whatever the failure) or wholly under
// newKey. The state must not be open elsewhere: a lock not taken within
// lockTimeout is ErrInUse. A state already sealed with newKey is left as
// it is (AlreadyRekeyed); one whose key is neither is ErrWrongKey.
func Rekey(path string, oldKey, newKey []byte, lockTimeout time.Duration) (RekeyResult, error) {
	var res RekeyResult
	if len(oldKey) != KeySize || len(newKey) != KeySize {
		return res, fmt.Errorf("rekey %s: the secret keys must be %d bytes", path, KeySize)
	}
	if _, err := os.Stat(path); err != nil {
		return res, fmt.Errorf("rekey: no state at %s: %w", path, err)
	}
	oldS, err := NewSealer(oldKey, storeInfo)
	if err != nil {
		return res, err
	}
	newS, err := NewSealer(newKey, storeInfo)
	if err != nil {
		return res, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return res, fmt.Errorf("rekey %s: %w", path, ErrInUse)
		}
		return res, fmt.Errorf("rekey %s: %w", path, err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if meta == nil {
			return errors.New("not a blueprint serve state (no meta bucket)")
		}
		if f := meta.Get(kFormat); string(f) != formatValue {
			return fmt.Errorf("the state has format %q, this program reads format %s", f, formatValue)
		}
		check := meta.Get(kCheck)
		if p, err := newS.Open("check", check); err == nil && string(p) == checkPlain {
			res.AlreadyRekeyed = true
			return meta.Put(kKeyID, []byte(KeyFingerprint(newKey)))
		}
		if p, err := oldS.Open("check", check); err != nil || string(p) != checkPlain {
			return wrongKey(meta, oldKey)
		}
		reseal := func(aad string, v []byte) ([]byte, error) {
			plain, err := oldS.Open(aad, v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w (nothing was changed)", aad, err)
			}
			return newS.Seal(aad, plain)
		}
		// Sources: read all, then write (a bucket is not changed while
		// it is iterated).
		var srcs []sourceRecord
		if err := tx.Bucket(bSources).ForEach(func(k, v []byte) error {
			var r sourceRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("source %s: damaged record: %w", k, err)
			}
			srcs = append(srcs, r)
			return nil
		}); err != nil {
			return err
		}
		for _, r := range srcs {
			if r.PipelineKey, err = reseal(sourceAAD(r.ID, "pipeline_key"), r.PipelineKey); err != nil {
				return err
			}
			if r.SecretKey, err = reseal(sourceAAD(r.ID, "secret_key"), r.SecretKey); err != nil {
				return err
			}
			if err := putJSON(tx.Bucket(bSources), []byte(r.ID), r); err != nil {
				return err
			}
			res.Sources++
		}
		type rev struct {
			key []byte
			r   revisionRecord
		}
		var revs []rev
		if err := tx.Bucket(bRevisions).ForEach(func(k, v []byte) error {
			var r revisionRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("revision %s: damaged record: %w", k, err)
			}
			if len(r.Secrets) > 0 {
				revs = append(revs, rev{append([]byte(nil), k...), r})
			}
			return nil
		}); err != nil {
			return err
		}
		for _, x := range revs {
			for k, v := range x.r.Secrets {
				if x.r.Secrets[k], err = reseal(revisionAAD(x.r.IntegrationID, x.r.Number, k), v); err != nil {
					return err
				}
				res.SecretValues++
			}
			if err := putJSON(tx.Bucket(bRevisions), x.key, x.r); err != nil {
				return err
			}
			res.Revisions++
		}
		c, err := newS.Seal("check", []byte(checkPlain))
		if err != nil {
			return err
		}
		if err := meta.Put(kCheck, c); err != nil {
			return err
		}
		if err := meta.Put(kKeyID, []byte(KeyFingerprint(newKey))); err != nil {
			return err
		}
		if rekeyHook != nil {
			return rekeyHook()
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrWrongKey) {
			err = fmt.Errorf("rekey %s: %w", path, err)
		}
		return RekeyResult{}, err
	}
	return res, nil
}

// wrongKey is ErrWrongKey naming the key the state needs (when it
// records it) and the one given.
func wrongKey(meta *bolt.Bucket, given []byte) error {
	if want := meta.Get(kKeyID); want != nil {
		return fmt.Errorf("%w (the state needs the key with fingerprint %s; the key file given holds %s)", ErrWrongKey, want, KeyFingerprint(given))
	}
	return ErrWrongKey
}

// SetRekeyHook makes Rekey call hook inside its transaction, after every
// value is sealed again and before the commit (an error rolls it back);
// for tests of the command. It returns a function that removes it.
func SetRekeyHook(hook func() error) (restore func()) {
	rekeyHook = hook
	return func() { rekeyHook = nil }
}
