package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RefreshToken is the server-side record of a refresh token: its ID is the
// token's jti, and the token itself (a signed JWT) is never stored. Family
// links the tokens that rotation issued from one login.
type RefreshToken struct {
	ID, UserID, Family string
	ExpiresAt          time.Time
	Used, Revoked      bool
}

type refreshRecord struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Family    string    `json:"family"`
	ExpiresAt time.Time `json:"expires_at"`
	Used      bool      `json:"used,omitempty"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// refreshGrace is how long after its expiry a refresh record is kept. Once
// expired, a token is refused for its expiry before its record is read, so
// the record is only needed until then; the margin covers clock steps.
const refreshGrace = 24 * time.Hour

func (t *RefreshToken) record() refreshRecord {
	return refreshRecord{ID: t.ID, UserID: t.UserID, Family: t.Family, ExpiresAt: t.ExpiresAt, Used: t.Used, Revoked: t.Revoked}
}

func (r *refreshRecord) token() *RefreshToken {
	return &RefreshToken{ID: r.ID, UserID: r.UserID, Family: r.Family, ExpiresAt: r.ExpiresAt, Used: r.Used, Revoked: r.Revoked}
}

func userTokenKey(userID, id string) []byte { return []byte(userID + "\x00" + id) }

// PutRefresh writes t (a new token or a change to one). It also drops the
// records of the user's tokens that expired more than a day ago, so that
// the state does not grow with every rotation.
func (s *Store) PutRefresh(t *RefreshToken) error {
	if t.ID == "" || t.UserID == "" {
		return errors.New("put refresh token: ID and UserID are required")
	}
	return s.db.Update(func(tx *bolt.Tx) error { return s.putRefresh(tx, t) })
}

func (s *Store) putRefresh(tx *bolt.Tx, t *RefreshToken) error {
	tokens, byUser := tx.Bucket(bRefresh), tx.Bucket(bRefreshUser)
	var old refreshRecord
	switch err := getJSON(tokens, []byte(t.ID), &old); {
	case err == nil:
		if old.UserID != t.UserID {
			return fmt.Errorf("put refresh token %s: it belongs to another user: %w", t.ID, ErrConflict)
		}
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if err := s.purgeRefresh(tx, t.UserID, t.ID); err != nil {
		return err
	}
	if err := byUser.Put(userTokenKey(t.UserID, t.ID), nil); err != nil {
		return err
	}
	return putJSON(tokens, []byte(t.ID), t.record())
}

// purgeRefresh deletes the user's token records expired for longer than
// refreshGrace, except keep.
func (s *Store) purgeRefresh(tx *bolt.Tx, userID, keep string) error {
	tokens, byUser := tx.Bucket(bRefresh), tx.Bucket(bRefreshUser)
	cutoff := s.now().Add(-refreshGrace)
	prefix := []byte(userID + "\x00")
	var drop [][]byte
	c := byUser.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[len(prefix):]
		if string(id) == keep {
			continue
		}
		var r refreshRecord
		if err := getJSON(tokens, id, &r); err == nil && !r.ExpiresAt.Before(cutoff) {
			continue
		}
		drop = append(drop, bytes.Clone(k))
	}
	for _, k := range drop {
		if err := tokens.Delete(k[len(prefix):]); err != nil {
			return err
		}
		if err := byUser.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// GetRefresh returns the token record with that ID, or ErrNotFound.
func (s *Store) GetRefresh(id string) (*RefreshToken, error) {
	var t *RefreshToken
	err := s.db.View(func(tx *bolt.Tx) error {
		if id == "" {
			return ErrNotFound
		}
		var r refreshRecord
		if err := getJSON(tx.Bucket(bRefresh), []byte(id), &r); err != nil {
			return err
		}
		t = r.token()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("refresh token %s: %w", id, err)
	}
	return t, nil
}

// RotateRefresh marks the token id Used and writes next, in one
// transaction, so that two requests presenting the same token cannot both
// rotate it. next must have the same user and family. A token already Used
// or Revoked is not changed: its record is returned with ErrRefreshUsed (the
// caller then signs the user out everywhere). An unknown id is ErrNotFound.
func (s *Store) RotateRefresh(id string, next *RefreshToken) (*RefreshToken, error) {
	var old *RefreshToken
	err := s.db.Update(func(tx *bolt.Tx) error {
		var r refreshRecord
		if id == "" {
			return ErrNotFound
		}
		if err := getJSON(tx.Bucket(bRefresh), []byte(id), &r); err != nil {
			return err
		}
		old = r.token()
		if r.Used || r.Revoked {
			return ErrRefreshUsed
		}
		if next.UserID != r.UserID || next.Family != r.Family {
			return fmt.Errorf("the next token has another user or family: %w", ErrConflict)
		}
		if next.ID == "" || next.ID == id {
			return errors.New("the next token needs a new ID")
		}
		r.Used = true
		if err := putJSON(tx.Bucket(bRefresh), []byte(id), r); err != nil {
			return err
		}
		return s.putRefresh(tx, next)
	})
	if err != nil {
		return old, fmt.Errorf("rotate refresh token %s: %w", id, err)
	}
	return old, nil
}

// RevokeUserRefresh marks every refresh token of the user Revoked and, in
// the same transaction, raises the user's SessionEpoch, so that the access
// tokens issued before are refused too: every session is signed out.
func (s *Store) RevokeUserRefresh(userID string) error {
	if userID == "" {
		return errors.New("revoke refresh tokens: no user ID")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		tokens, byUser := tx.Bucket(bRefresh), tx.Bucket(bRefreshUser)
		prefix := []byte(userID + "\x00")
		c := byUser.Cursor()
		var revoke []refreshRecord
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			var r refreshRecord
			if err := getJSON(tokens, k[len(prefix):], &r); err != nil {
				continue
			}
			if !r.Revoked {
				revoke = append(revoke, r)
			}
		}
		for _, r := range revoke {
			r.Revoked = true
			if err := putJSON(tokens, []byte(r.ID), r); err != nil {
				return err
			}
		}
		u, err := getUser(tx, userID)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n := *u
		n.SessionEpoch++
		return putUser(tx, u, &n)
	})
}
