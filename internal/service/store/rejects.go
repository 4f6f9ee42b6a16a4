package store

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reject is an event the runtime refused for an integration (a dead letter
// of its decisions), as the caller recorded it: already redacted, so it is
// stored as given.
type Reject struct {
	ID, IntegrationID, Error, Details string
	Fields                            []string
	OriginalEvent                     json.RawMessage
	CreatedAt                         time.Time
}

type rejectRecord struct {
	ID            string    `json:"id"`
	IntegrationID string    `json:"integration_id"`
	Error         string    `json:"error"`
	Details       string    `json:"details,omitempty"`
	Fields        []string  `json:"fields,omitempty"`
	OriginalEvent []byte    `json:"original_event,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

func (r *rejectRecord) reject() *Reject {
	var ev json.RawMessage
	if r.OriginalEvent != nil {
		ev = json.RawMessage(r.OriginalEvent)
	}
	return &Reject{ID: r.ID, IntegrationID: r.IntegrationID, Error: r.Error, Details: r.Details, Fields: slices.Clone(r.Fields), OriginalEvent: ev, CreatedAt: r.CreatedAt}
}

// Within the rejects bucket, each integration has a bucket holding items
// (sequence → reject, oldest first), ids (reject ID → sequence) and the
// count n.
var (
	bItems = []byte("items")
	bIDs   = []byte("ids")
	kCount = []byte("n")
)

func seqKey(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// AddReject records r for its integration (ErrNotFound when there is no
// such integration), filling ID ("rej_…") and CreatedAt when empty. An
// integration keeps the newest 10,000 rejects: the oldest are dropped.
func (s *Store) AddReject(r *Reject) error { return s.AddRejects([]*Reject{r}) }

// AddRejects records rs as AddReject does, all in one transaction (one
// fsync): either all are recorded or, on an error, none.
func (s *Store) AddRejects(rs []*Reject) error {
	recs := make([]rejectRecord, len(rs))
	for i, r := range rs {
		if r.ID == "" {
			r.ID = newID("rej_")
		}
		if r.CreatedAt.IsZero() {
			r.CreatedAt = s.now()
		}
		recs[i] = rejectRecord{ID: r.ID, IntegrationID: r.IntegrationID, Error: r.Error, Details: r.Details, Fields: r.Fields, OriginalEvent: r.OriginalEvent, CreatedAt: r.CreatedAt}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range recs {
			if err := s.addReject(tx, &recs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add reject: %w", err)
	}
	return nil
}

func (s *Store) addReject(tx *bolt.Tx, rec *rejectRecord) error {
	if rec.IntegrationID == "" || tx.Bucket(bIntegrations).Get([]byte(rec.IntegrationID)) == nil {
		return fmt.Errorf("integration %s: %w", rec.IntegrationID, ErrNotFound)
	}
	b, err := tx.Bucket(bRejects).CreateBucketIfNotExists([]byte(rec.IntegrationID))
	if err != nil {
		return err
	}
	items, err := b.CreateBucketIfNotExists(bItems)
	if err != nil {
		return err
	}
	ids, err := b.CreateBucketIfNotExists(bIDs)
	if err != nil {
		return err
	}
	if ids.Get([]byte(rec.ID)) != nil {
		return fmt.Errorf("reject ID %s is taken: %w", rec.ID, ErrConflict)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	if err := putJSON(items, seqKey(seq), rec); err != nil {
		return err
	}
	if err := ids.Put([]byte(rec.ID), seqKey(seq)); err != nil {
		return err
	}
	n := rejectCount(b) + 1
	c := items.Cursor()
	for k, v := c.First(); k != nil && n > s.maxRejects; k, v = c.First() {
		var old rejectRecord
		if err := json.Unmarshal(v, &old); err == nil {
			if err := ids.Delete([]byte(old.ID)); err != nil {
				return err
			}
		}
		if err := c.Delete(); err != nil {
			return err
		}
		n--
	}
	return b.Put(kCount, strconv.AppendInt(nil, int64(n), 10))
}

func rejectCount(b *bolt.Bucket) int {
	n, _ := strconv.Atoi(string(b.Get(kCount)))
	return n
}

// rejectBuckets returns the items and ids buckets of the integration (nil
// when it has no rejects), or ErrNotFound when there is no integration.
func rejectBuckets(tx *bolt.Tx, integrationID string) (b, items, ids *bolt.Bucket, err error) {
	if integrationID == "" || tx.Bucket(bIntegrations).Get([]byte(integrationID)) == nil {
		return nil, nil, nil, fmt.Errorf("integration %s: %w", integrationID, ErrNotFound)
	}
	b = tx.Bucket(bRejects).Bucket([]byte(integrationID))
	if b == nil {
		return nil, nil, nil, nil
	}
	return b, b.Bucket(bItems), b.Bucket(bIDs), nil
}

// ListRejects returns up to limit (50 when not positive) rejects of the
// integration, newest first, starting after cursor ("" for the first page),
// and the cursor of the next page ("" when there is none). There is no
// such integration: ErrNotFound; a cursor not from this method:
// ErrInvalidCursor.
func (s *Store) ListRejects(integrationID, cursor string, limit int) (rs []*Reject, next string, err error) {
	if limit <= 0 {
		limit = 50
	}
	var before uint64
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || len(raw) != 8 {
			return nil, "", fmt.Errorf("list rejects: %q: %w", cursor, ErrInvalidCursor)
		}
		before = binary.BigEndian.Uint64(raw)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		_, items, _, err := rejectBuckets(tx, integrationID)
		if err != nil || items == nil {
			return err
		}
		c := items.Cursor()
		var k, v []byte
		if cursor == "" {
			k, v = c.Last()
		} else {
			k, v = c.Seek(seqKey(before))
			if k == nil {
				k, v = c.Last()
			}
			for k != nil && binary.BigEndian.Uint64(k) >= before {
				k, v = c.Prev()
			}
		}
		var last []byte
		for ; k != nil; k, v = c.Prev() {
			if len(rs) == limit {
				next = base64.RawURLEncoding.EncodeToString(last)
				break
			}
			var r rejectRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("damaged reject %x: %w", k, err)
			}
			rs = append(rs, r.reject())
			last = bytes.Clone(k)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list rejects: %w", err)
	}
	return rs, next, nil
}

// GetReject returns the reject with that ID of the integration, or
// ErrNotFound.
func (s *Store) GetReject(integrationID, id string) (*Reject, error) {
	var rj *Reject
	err := s.db.View(func(tx *bolt.Tx) error {
		_, items, ids, err := rejectBuckets(tx, integrationID)
		if err != nil {
			return err
		}
		if ids == nil || id == "" {
			return ErrNotFound
		}
		seq := ids.Get([]byte(id))
		if seq == nil {
			return ErrNotFound
		}
		var r rejectRecord
		if err := getJSON(items, seq, &r); err != nil {
			return err
		}
		rj = r.reject()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reject %s of integration %s: %w", id, integrationID, err)
	}
	return rj, nil
}

// DeleteReject removes the reject with that ID of the integration, or
// returns ErrNotFound.
func (s *Store) DeleteReject(integrationID, id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, items, ids, err := rejectBuckets(tx, integrationID)
		if err != nil {
			return err
		}
		if ids == nil || id == "" {
			return ErrNotFound
		}
		seq := bytes.Clone(ids.Get([]byte(id)))
		if seq == nil {
			return ErrNotFound
		}
		if err := items.Delete(seq); err != nil {
			return err
		}
		if err := ids.Delete([]byte(id)); err != nil {
			return err
		}
		return b.Put(kCount, strconv.AppendInt(nil, int64(max(rejectCount(b)-1, 0)), 10))
	})
	if err != nil {
		return fmt.Errorf("delete reject %s of integration %s: %w", id, integrationID, err)
	}
	return nil
}
