package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Source is a sender of events: it authenticates with PipelineKey (Bearer)
// and signs bodies with SecretKey (HMAC-SHA256). Both keys are stored
// encrypted; PipelineKey is found by its SHA-256.
type Source struct {
	ID, Name, PipelineKey, SecretKey string
	CreatedAt                        time.Time
}

type sourceRecord struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	PipelineKey []byte    `json:"pipeline_key_enc"`
	SecretKey   []byte    `json:"secret_key_enc"`
	CreatedAt   time.Time `json:"created_at"`
}

// PipelineKeyPrefix starts every pipeline key.
const PipelineKeyPrefix = "dk_live_"

func pipelineKeyIndex(k string) []byte {
	sum := sha256.Sum256([]byte(k))
	return sum[:]
}

func sourceAAD(id, field string) string { return "source/" + id + "/" + field }

// CreateSource adds src, filling ID ("src_…"), PipelineKey ("dk_live_" and 32
// hexadecimal characters), SecretKey (64 hexadecimal characters) and
// CreatedAt when empty. A name already taken, or a pipeline key already in
// use, is ErrConflict.
func (s *Store) CreateSource(src *Source) error {
	if strings.TrimSpace(src.Name) == "" {
		return errors.New("create source: the name is empty")
	}
	if src.ID == "" {
		src.ID = newID("src_")
	}
	if src.PipelineKey == "" {
		src.PipelineKey = PipelineKeyPrefix + randomHex(16)
	}
	if src.SecretKey == "" {
		src.SecretKey = randomHex(32)
	}
	if src.CreatedAt.IsZero() {
		src.CreatedAt = s.now()
	}
	pk, err := s.seal(sourceAAD(src.ID, "pipeline_key"), []byte(src.PipelineKey))
	if err != nil {
		return err
	}
	sk, err := s.seal(sourceAAD(src.ID, "secret_key"), []byte(src.SecretKey))
	if err != nil {
		return err
	}
	rec := sourceRecord{ID: src.ID, Name: src.Name, PipelineKey: pk, SecretKey: sk, CreatedAt: src.CreatedAt}
	return s.db.Update(func(tx *bolt.Tx) error {
		sources, byName, byKey := tx.Bucket(bSources), tx.Bucket(bSourcesName), tx.Bucket(bSourcesPK)
		if byName.Get([]byte(src.Name)) != nil {
			return fmt.Errorf("create source: name %q is taken: %w", src.Name, ErrConflict)
		}
		if sources.Get([]byte(src.ID)) != nil {
			return fmt.Errorf("create source: ID %s is taken: %w", src.ID, ErrConflict)
		}
		if byKey.Get(pipelineKeyIndex(src.PipelineKey)) != nil {
			return fmt.Errorf("create source %q: its pipeline key is in use by another source: %w", src.Name, ErrConflict)
		}
		if err := byName.Put([]byte(src.Name), []byte(src.ID)); err != nil {
			return err
		}
		if err := byKey.Put(pipelineKeyIndex(src.PipelineKey), []byte(src.ID)); err != nil {
			return err
		}
		return putJSON(sources, []byte(src.ID), rec)
	})
}

// SourceByPipelineKey returns the source with that pipeline key, or
// ErrNotFound. The lookup is by the key's SHA-256; comparing the presented
// key with the returned one in constant time is the caller's job.
func (s *Store) SourceByPipelineKey(k string) (*Source, error) {
	var src *Source
	err := s.db.View(func(tx *bolt.Tx) error {
		if k == "" {
			return ErrNotFound
		}
		id := tx.Bucket(bSourcesPK).Get(pipelineKeyIndex(k))
		if id == nil {
			return ErrNotFound
		}
		var err error
		src, err = s.getSource(tx, string(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("source by pipeline key: %w", err)
	}
	return src, nil
}

// SourceByID returns the source with that ID, or ErrNotFound.
func (s *Store) SourceByID(id string) (*Source, error) {
	var src *Source
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		src, err = s.getSource(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", id, err)
	}
	return src, nil
}

// ListSources returns every source, keys decrypted, ordered by CreatedAt
// then ID.
func (s *Store) ListSources() ([]*Source, error) {
	var out []*Source
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bSources).ForEach(func(k, _ []byte) error {
			src, err := s.getSource(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, src)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// DeleteSource removes the source with that ID (ErrNotFound when there is
// none); its pipeline key stops working at once.
func (s *Store) DeleteSource(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		src, err := s.getSource(tx, id)
		if err != nil {
			return fmt.Errorf("delete source %s: %w", id, err)
		}
		if err := tx.Bucket(bSourcesName).Delete([]byte(src.Name)); err != nil {
			return err
		}
		if err := tx.Bucket(bSourcesPK).Delete(pipelineKeyIndex(src.PipelineKey)); err != nil {
			return err
		}
		return tx.Bucket(bSources).Delete([]byte(id))
	})
}

func (s *Store) getSource(tx *bolt.Tx, id string) (*Source, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	var r sourceRecord
	if err := getJSON(tx.Bucket(bSources), []byte(id), &r); err != nil {
		return nil, err
	}
	pk, err := s.open(sourceAAD(r.ID, "pipeline_key"), r.PipelineKey)
	if err != nil {
		return nil, fmt.Errorf("source %s: pipeline key: %w", r.ID, err)
	}
	sk, err := s.open(sourceAAD(r.ID, "secret_key"), r.SecretKey)
	if err != nil {
		return nil, fmt.Errorf("source %s: secret key: %w", r.ID, err)
	}
	return &Source{ID: r.ID, Name: r.Name, PipelineKey: string(pk), SecretKey: string(sk), CreatedAt: r.CreatedAt}, nil
}
