package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Integration is an installed blueprint: its current state. Its config is
// in its revisions; Revision is the number of the current one.
type Integration struct {
	ID, Vendor, Version, Name, Variant, DeliveryMode string
	Enabled                                          bool
	SourceIDs                                        []string
	Revision                                         int
	CreatedAt, UpdatedAt                             time.Time
}

// Revision is an immutable version of an integration's config. Config holds
// the values as given, secrets decrypted; numbers read back are int64 when
// integral, float64 otherwise.
type Revision struct {
	IntegrationID                        string
	Number                               int
	Name                                 string // the integration's name as of this revision
	Variant, DeliveryMode, ChangeSummary string
	Config                               map[string]any
	CreatedAt                            time.Time
}

type integrationRecord struct {
	ID           string    `json:"id"`
	Vendor       string    `json:"vendor"`
	Version      string    `json:"version"`
	Name         string    `json:"name"`
	Variant      string    `json:"variant"`
	DeliveryMode string    `json:"delivery_mode"`
	Enabled      bool      `json:"enabled"`
	SourceIDs    []string  `json:"source_ids,omitempty"`
	Revision     int       `json:"revision"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

type revisionRecord struct {
	IntegrationID string `json:"integration_id"`
	Number        int    `json:"number"`
	Name          string `json:"name,omitempty"`
	Variant       string `json:"variant"`
	DeliveryMode  string `json:"delivery_mode"`
	ChangeSummary string `json:"change_summary,omitempty"`
	// Config is the config without its secret values; Secrets holds each
	// of those, its JSON encrypted, by key.
	Config    json.RawMessage   `json:"config"`
	Secrets   map[string][]byte `json:"secrets_enc,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

func integrationRec(in *Integration) integrationRecord {
	return integrationRecord{ID: in.ID, Vendor: in.Vendor, Version: in.Version, Name: in.Name, Variant: in.Variant, DeliveryMode: in.DeliveryMode, Enabled: in.Enabled, SourceIDs: slices.Clone(in.SourceIDs), Revision: in.Revision, CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt}
}

func (r *integrationRecord) integration() *Integration {
	return &Integration{ID: r.ID, Vendor: r.Vendor, Version: r.Version, Name: r.Name, Variant: r.Variant, DeliveryMode: r.DeliveryMode, Enabled: r.Enabled, SourceIDs: slices.Clone(r.SourceIDs), Revision: r.Revision, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
}

func revisionKey(id string, n int) []byte { return fmt.Appendf(nil, "%s/%010d", id, n) }

func revisionAAD(id string, n int, key string) string {
	return "revision/" + id + "/" + strconv.Itoa(n) + "/" + key
}

// CreateIntegration adds in with its first revision rev, in one transaction.
// It fills in.ID ("int_…"), the CreatedAt and UpdatedAt stamps, sets
// in.Revision and rev.Number to 1 and rev.IntegrationID, and takes the
// variant and delivery mode missing on one of in and rev from the other.
// The values of secretKeys (top-level keys of rev.Config) are stored
// encrypted. A name already used by an integration is ErrConflict.
func (s *Store) CreateIntegration(in *Integration, rev *Revision, secretKeys []string) error {
	if strings.TrimSpace(in.Name) == "" {
		return errors.New("create integration: the name is empty")
	}
	if rev == nil {
		return errors.New("create integration: the first revision is missing")
	}
	now := s.now()
	if in.ID == "" {
		in.ID = newID("int_")
	}
	if in.CreatedAt.IsZero() {
		in.CreatedAt = now
	}
	in.UpdatedAt = in.CreatedAt
	in.Revision = 1
	mergeRevision(in, rev, 1, now)
	rr, err := s.revisionRec(rev, secretKeys)
	if err != nil {
		return fmt.Errorf("create integration %q: %w", in.Name, err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		ints, byName := tx.Bucket(bIntegrations), tx.Bucket(bIntName)
		if byName.Get([]byte(in.Name)) != nil {
			return fmt.Errorf("create integration: name %q is taken: %w", in.Name, ErrConflict)
		}
		if ints.Get([]byte(in.ID)) != nil {
			return fmt.Errorf("create integration: ID %s is taken: %w", in.ID, ErrConflict)
		}
		if err := byName.Put([]byte(in.Name), []byte(in.ID)); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bRevisions), revisionKey(in.ID, 1), rr); err != nil {
			return err
		}
		return putJSON(ints, []byte(in.ID), integrationRec(in))
	})
}

// mergeRevision numbers rev and fills what one of in and rev lacks from the
// other (the revision wins where both have a variant or delivery mode).
func mergeRevision(in *Integration, rev *Revision, n int, now time.Time) {
	rev.IntegrationID = in.ID
	rev.Number = n
	if rev.Name == "" {
		rev.Name = in.Name
	}
	if rev.CreatedAt.IsZero() {
		rev.CreatedAt = now
	}
	if rev.Variant == "" {
		rev.Variant = in.Variant
	}
	in.Variant = rev.Variant
	if rev.DeliveryMode == "" {
		rev.DeliveryMode = in.DeliveryMode
	}
	in.DeliveryMode = rev.DeliveryMode
}

func (s *Store) revisionRec(rev *Revision, secretKeys []string) (revisionRecord, error) {
	plain := maps.Clone(rev.Config)
	if plain == nil {
		plain = map[string]any{}
	}
	var secrets map[string][]byte
	for _, k := range secretKeys {
		v, ok := plain[k]
		if !ok {
			continue
		}
		delete(plain, k)
		raw, err := json.Marshal(v)
		if err != nil {
			return revisionRecord{}, fmt.Errorf("config key %s: %w", k, err)
		}
		sealed, err := s.seal(revisionAAD(rev.IntegrationID, rev.Number, k), raw)
		if err != nil {
			return revisionRecord{}, err
		}
		if secrets == nil {
			secrets = map[string][]byte{}
		}
		secrets[k] = sealed
	}
	cfg, err := json.Marshal(plain)
	if err != nil {
		return revisionRecord{}, fmt.Errorf("config: %w", err)
	}
	return revisionRecord{IntegrationID: rev.IntegrationID, Number: rev.Number, Name: rev.Name, Variant: rev.Variant, DeliveryMode: rev.DeliveryMode, ChangeSummary: rev.ChangeSummary, Config: cfg, Secrets: secrets, CreatedAt: rev.CreatedAt}, nil
}

func (s *Store) revision(r *revisionRecord) (*Revision, error) {
	var v any
	if err := decodeJSON(r.Config, &v); err != nil {
		return nil, fmt.Errorf("revision %d of %s: damaged config: %w", r.Number, r.IntegrationID, err)
	}
	cfg, _ := v.(map[string]any)
	if cfg == nil {
		cfg = map[string]any{}
	}
	for k, sealed := range r.Secrets {
		raw, err := s.open(revisionAAD(r.IntegrationID, r.Number, k), sealed)
		if err != nil {
			return nil, fmt.Errorf("revision %d of %s: config key %s: %w", r.Number, r.IntegrationID, k, err)
		}
		var v any
		if err := decodeJSON(raw, &v); err != nil {
			return nil, fmt.Errorf("revision %d of %s: config key %s: %w", r.Number, r.IntegrationID, k, err)
		}
		cfg[k] = v
	}
	return &Revision{IntegrationID: r.IntegrationID, Number: r.Number, Name: r.Name, Variant: r.Variant, DeliveryMode: r.DeliveryMode, ChangeSummary: r.ChangeSummary, Config: cfg, CreatedAt: r.CreatedAt}, nil
}

// DecodeValue decodes a JSON value as the store reads config back: numbers
// are int64 when integral and within range, float64 otherwise (the types
// the compiler's config check takes).
func DecodeValue(raw []byte) (any, error) {
	var v any
	err := decodeJSON(raw, &v)
	return v, err
}

// decodeJSON decodes keeping every number exact: int64 when it is an
// integer that fits, float64 otherwise (the types the compiler's config
// check takes).
func decodeJSON(raw []byte, v *any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	*v = numbers(*v)
	return nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// UpdateIntegration writes a change to the integration in.ID (ErrNotFound
// when there is none). in must come from GetIntegration (or a previous
// update): when another update changed the integration in between,
// in.Revision is behind and the result is ErrStale (an ErrConflict).
//
// With rev nil, only the metadata changes: Name, Enabled and SourceIDs.
// Otherwise rev is appended as revision in.Revision+1, in the same
// transaction as the integration's new state (Name, Enabled, SourceIDs,
// Vendor, Version, Variant and DeliveryMode from in, the latter two merged
// with rev as in CreateIntegration); the values of secretKeys are stored
// encrypted. A new name already used by another integration is
// ErrConflict. On success in holds what was written.
func (s *Store) UpdateIntegration(in *Integration, rev *Revision, secretKeys []string) error {
	if strings.TrimSpace(in.Name) == "" {
		return fmt.Errorf("update integration %s: the name is empty", in.ID)
	}
	now := s.now()
	var next integrationRecord
	err := s.db.Update(func(tx *bolt.Tx) error {
		ints, byName := tx.Bucket(bIntegrations), tx.Bucket(bIntName)
		var old integrationRecord
		if in.ID == "" {
			return ErrNotFound
		}
		if err := getJSON(ints, []byte(in.ID), &old); err != nil {
			return err
		}
		if in.Revision != old.Revision {
			return fmt.Errorf("%w (it is at revision %d, the change was made to revision %d)", ErrStale, old.Revision, in.Revision)
		}
		if in.Name != old.Name {
			if byName.Get([]byte(in.Name)) != nil {
				return fmt.Errorf("name %q is taken: %w", in.Name, ErrConflict)
			}
			if err := byName.Delete([]byte(old.Name)); err != nil {
				return err
			}
			if err := byName.Put([]byte(in.Name), []byte(in.ID)); err != nil {
				return err
			}
		}
		next = old
		next.Name, next.Enabled, next.SourceIDs = in.Name, in.Enabled, slices.Clone(in.SourceIDs)
		next.UpdatedAt = now
		if rev != nil {
			c := *in
			if c.Vendor == "" {
				c.Vendor = old.Vendor
			}
			if c.Version == "" {
				c.Version = old.Version
			}
			if c.Variant == "" {
				c.Variant = old.Variant
			}
			if c.DeliveryMode == "" {
				c.DeliveryMode = old.DeliveryMode
			}
			mergeRevision(&c, rev, old.Revision+1, now)
			rr, err := s.revisionRec(rev, secretKeys)
			if err != nil {
				return err
			}
			key := revisionKey(in.ID, rev.Number)
			if tx.Bucket(bRevisions).Get(key) != nil {
				return fmt.Errorf("revision %d exists already: %w", rev.Number, ErrStale)
			}
			if err := putJSON(tx.Bucket(bRevisions), key, rr); err != nil {
				return err
			}
			next.Revision = rev.Number
			next.Vendor, next.Version, next.Variant, next.DeliveryMode = c.Vendor, c.Version, c.Variant, c.DeliveryMode
		}
		return putJSON(ints, []byte(in.ID), next)
	})
	if err != nil {
		return fmt.Errorf("update integration %s: %w", in.ID, err)
	}
	*in = *next.integration()
	return nil
}

// GetIntegration returns the integration with that ID, or ErrNotFound.
func (s *Store) GetIntegration(id string) (*Integration, error) {
	var in *Integration
	err := s.db.View(func(tx *bolt.Tx) error {
		var r integrationRecord
		if id == "" {
			return ErrNotFound
		}
		if err := getJSON(tx.Bucket(bIntegrations), []byte(id), &r); err != nil {
			return err
		}
		in = r.integration()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("integration %s: %w", id, err)
	}
	return in, nil
}

// ListIntegrations returns every integration, ordered by CreatedAt then ID.
func (s *Store) ListIntegrations() ([]*Integration, error) {
	var out []*Integration
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bIntegrations).ForEach(func(k, v []byte) error {
			var r integrationRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("damaged integration %s: %w", k, err)
			}
			out = append(out, r.integration())
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Revisions returns the revisions of the integration, oldest first, secrets
// decrypted; ErrNotFound when there is no such integration.
func (s *Store) Revisions(id string) ([]*Revision, error) {
	var out []*Revision
	err := s.db.View(func(tx *bolt.Tx) error {
		if id == "" || tx.Bucket(bIntegrations).Get([]byte(id)) == nil {
			return ErrNotFound
		}
		prefix := []byte(id + "/")
		c := tx.Bucket(bRevisions).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var r revisionRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("damaged revision %s: %w", k, err)
			}
			rev, err := s.revision(&r)
			if err != nil {
				return err
			}
			out = append(out, rev)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("revisions of integration %s: %w", id, err)
	}
	return out, nil
}

// GetRevision returns revision number of the integration, secrets
// decrypted, or ErrNotFound.
func (s *Store) GetRevision(id string, number int) (*Revision, error) {
	var rev *Revision
	err := s.db.View(func(tx *bolt.Tx) error {
		var r revisionRecord
		if id == "" {
			return ErrNotFound
		}
		if err := getJSON(tx.Bucket(bRevisions), revisionKey(id, number), &r); err != nil {
			return err
		}
		var err error
		rev, err = s.revision(&r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("revision %d of integration %s: %w", number, id, err)
	}
	return rev, nil
}

// DeleteIntegration removes the integration with that ID, its revisions and
// its rejects, or returns ErrNotFound.
func (s *Store) DeleteIntegration(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		ints := tx.Bucket(bIntegrations)
		var r integrationRecord
		if id == "" {
			return ErrNotFound
		}
		if err := getJSON(ints, []byte(id), &r); err != nil {
			return err
		}
		if err := tx.Bucket(bIntName).Delete([]byte(r.Name)); err != nil {
			return err
		}
		revs := tx.Bucket(bRevisions)
		prefix := []byte(id + "/")
		var keys [][]byte
		c := revs.Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			if err := revs.Delete(k); err != nil {
				return err
			}
		}
		if rj := tx.Bucket(bRejects); rj.Bucket([]byte(id)) != nil {
			if err := rj.DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		return ints.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete integration %s: %w", id, err)
	}
	return nil
}
