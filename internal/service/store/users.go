package store

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// User is an account of the management API. Email is unique regardless of
// case. PasswordHash is a bcrypt hash (never a password).
type User struct {
	ID, Email, PasswordHash, Role string
	FailedLogins                  int
	LockedUntil                   time.Time
	CreatedAt                     time.Time
	// SessionEpoch counts the times every session of the user was signed
	// out (RevokeUserRefresh): a token issued under an older epoch is no
	// longer valid. It only grows; UpdateUser never lowers it.
	SessionEpoch int
}

type userRecord struct {
	ID           string    `json:"id"`
	Email        string    `json:"email"`
	PasswordHash string    `json:"password_hash"`
	Role         string    `json:"role"`
	FailedLogins int       `json:"failed_logins,omitempty"`
	LockedUntil  time.Time `json:"locked_until,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	SessionEpoch int       `json:"session_epoch,omitempty"`
}

func (u *User) record() userRecord {
	return userRecord{ID: u.ID, Email: u.Email, PasswordHash: u.PasswordHash, Role: u.Role, FailedLogins: u.FailedLogins, LockedUntil: u.LockedUntil, CreatedAt: u.CreatedAt, SessionEpoch: u.SessionEpoch}
}

func (r *userRecord) user() *User {
	return &User{ID: r.ID, Email: r.Email, PasswordHash: r.PasswordHash, Role: r.Role, FailedLogins: r.FailedLogins, LockedUntil: r.LockedUntil, CreatedAt: r.CreatedAt, SessionEpoch: r.SessionEpoch}
}

func emailKey(email string) []byte { return []byte(strings.ToLower(strings.TrimSpace(email))) }

// CountUsers returns the number of users.
func (s *Store) CountUsers() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bUsers).Stats().KeyN
		return nil
	})
	return n, err
}

// CreateUser adds u, filling ID ("usr_…") and CreatedAt when empty. An email
// already taken (compared without regard to case) is ErrConflict.
func (s *Store) CreateUser(u *User) error {
	if strings.TrimSpace(u.Email) == "" {
		return errors.New("create user: the email is empty")
	}
	if u.ID == "" {
		u.ID = newID("usr_")
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		users, byEmail := tx.Bucket(bUsers), tx.Bucket(bUsersEmail)
		if byEmail.Get(emailKey(u.Email)) != nil {
			return fmt.Errorf("create user: email %s is taken: %w", u.Email, ErrConflict)
		}
		if users.Get([]byte(u.ID)) != nil {
			return fmt.Errorf("create user: ID %s is taken: %w", u.ID, ErrConflict)
		}
		if err := byEmail.Put(emailKey(u.Email), []byte(u.ID)); err != nil {
			return err
		}
		return putJSON(users, []byte(u.ID), u.record())
	})
}

// UserByEmail returns the user with that email (any case), or ErrNotFound.
func (s *Store) UserByEmail(email string) (*User, error) {
	var u *User
	err := s.db.View(func(tx *bolt.Tx) error {
		key := emailKey(email)
		if len(key) == 0 {
			return ErrNotFound
		}
		id := tx.Bucket(bUsersEmail).Get(key)
		if id == nil {
			return ErrNotFound
		}
		var err error
		u, err = getUser(tx, string(id))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", email, err)
	}
	return u, nil
}

// UserByID returns the user with that ID, or ErrNotFound.
func (s *Store) UserByID(id string) (*User, error) {
	var u *User
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		u, err = getUser(tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", id, err)
	}
	return u, nil
}

func getUser(tx *bolt.Tx, id string) (*User, error) {
	if id == "" {
		return nil, ErrNotFound
	}
	var r userRecord
	if err := getJSON(tx.Bucket(bUsers), []byte(id), &r); err != nil {
		return nil, err
	}
	return r.user(), nil
}

// UpdateUser writes u over the user with its ID (ErrNotFound when there is
// none). A changed email must not be taken (ErrConflict). SessionEpoch never
// goes down, so that writing back a copy read before a sign-out of every
// session does not undo it; u is updated to the value written.
func (s *Store) UpdateUser(u *User) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		old, err := getUser(tx, u.ID)
		if err != nil {
			return fmt.Errorf("update user %s: %w", u.ID, err)
		}
		return putUser(tx, old, u)
	})
}

// ModifyUser applies fn to the user with that ID and writes the result, in
// one transaction, so that concurrent changes (failed login counts) are not
// lost. An error from fn aborts the change and is returned as is.
func (s *Store) ModifyUser(id string, fn func(*User) error) (*User, error) {
	var u *User
	err := s.db.Update(func(tx *bolt.Tx) error {
		old, err := getUser(tx, id)
		if err != nil {
			return fmt.Errorf("user %s: %w", id, err)
		}
		c := *old
		u = &c
		if err := fn(u); err != nil {
			return err
		}
		u.ID = old.ID
		return putUser(tx, old, u)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

func putUser(tx *bolt.Tx, old, u *User) error {
	if strings.TrimSpace(u.Email) == "" {
		return fmt.Errorf("update user %s: the email is empty", u.ID)
	}
	if u.SessionEpoch < old.SessionEpoch {
		u.SessionEpoch = old.SessionEpoch
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = old.CreatedAt
	}
	byEmail := tx.Bucket(bUsersEmail)
	if oldKey, newKey := emailKey(old.Email), emailKey(u.Email); string(oldKey) != string(newKey) {
		if byEmail.Get(newKey) != nil {
			return fmt.Errorf("update user %s: email %s is taken: %w", u.ID, u.Email, ErrConflict)
		}
		if err := byEmail.Delete(oldKey); err != nil {
			return err
		}
		if err := byEmail.Put(newKey, []byte(u.ID)); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bUsers), []byte(u.ID), u.record())
}

// ListUsers returns every user, the oldest first.
func (s *Store) ListUsers() ([]*User, error) {
	var out []*User
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bUsers).ForEach(func(k, _ []byte) error {
			u, err := getUser(tx, string(k))
			if err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b *User) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteUser revokes the refresh tokens of the user with that ID, then
// removes it (ErrNotFound when there is none): its access tokens name a
// user that no longer exists, so none is valid.
func (s *Store) DeleteUser(id string) error {
	if err := s.RevokeUserRefresh(id); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		u, err := getUser(tx, id)
		if err != nil {
			return fmt.Errorf("delete user %s: %w", id, err)
		}
		if err := tx.Bucket(bUsersEmail).Delete(emailKey(u.Email)); err != nil {
			return err
		}
		return tx.Bucket(bUsers).Delete([]byte(id))
	})
}
