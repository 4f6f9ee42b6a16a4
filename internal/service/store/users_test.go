package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsers(t *testing.T) {
	s, _, key := newStore(t)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	fixedClock(s, t0)

	if n, err := s.CountUsers(); err != nil || n != 0 {
		t.Fatalf("CountUsers = %d, %v on an empty state", n, err)
	}
	u := &User{Email: "Owner@Example.com", PasswordHash: "$2a$12$hash", Role: "owner"}
	if err := s.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u.ID, "usr_") || len(u.ID) != len("usr_")+24 {
		t.Errorf("ID %q", u.ID)
	}
	if !u.CreatedAt.Equal(t0) {
		t.Errorf("CreatedAt %v, want %v", u.CreatedAt, t0)
	}

	create := []struct {
		name string
		u    User
		want error
	}{
		{"same email", User{Email: "Owner@Example.com"}, ErrConflict},
		{"email in another case", User{Email: "owner@EXAMPLE.COM"}, ErrConflict},
		{"taken ID", User{ID: u.ID, Email: "x@example.com"}, ErrConflict},
		{"empty email", User{Email: " "}, nil},
		{"another user", User{Email: "dev@example.com", Role: "developer"}, nil},
	}
	for _, tc := range create {
		t.Run("create/"+tc.name, func(t *testing.T) {
			c := tc.u
			err := s.CreateUser(&c)
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			case tc.want == nil && strings.TrimSpace(c.Email) == "" && err == nil:
				t.Fatal("a user without email was created")
			case tc.want == nil && strings.TrimSpace(c.Email) != "" && err != nil:
				t.Fatal(err)
			}
		})
	}
	if n, _ := s.CountUsers(); n != 2 {
		t.Fatalf("CountUsers = %d, want 2", n)
	}

	lookups := []struct {
		name  string
		get   func() (*User, error)
		found bool
	}{
		{"by email", func() (*User, error) { return s.UserByEmail("owner@example.com") }, true},
		{"by email, upper case, spaces", func() (*User, error) { return s.UserByEmail(" OWNER@EXAMPLE.COM ") }, true},
		{"by ID", func() (*User, error) { return s.UserByID(u.ID) }, true},
		{"unknown email", func() (*User, error) { return s.UserByEmail("nobody@example.com") }, false},
		{"empty email", func() (*User, error) { return s.UserByEmail("") }, false},
		{"unknown ID", func() (*User, error) { return s.UserByID("usr_nope") }, false},
		{"empty ID", func() (*User, error) { return s.UserByID("") }, false},
	}
	for _, tc := range lookups {
		t.Run("get/"+tc.name, func(t *testing.T) {
			got, err := tc.get()
			if !tc.found {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("error %v, want ErrNotFound", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != u.ID || got.Email != u.Email || got.PasswordHash != u.PasswordHash || got.Role != "owner" || !got.CreatedAt.Equal(t0) {
				t.Errorf("got %+v, want %+v", got, u)
			}
		})
	}

	t.Run("update", func(t *testing.T) {
		got, _ := s.UserByID(u.ID)
		got.FailedLogins = 3
		got.LockedUntil = t0.Add(15 * time.Minute)
		got.Email = "boss@example.com"
		if err := s.UpdateUser(got); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UserByEmail("owner@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("old email still finds the user: %v", err)
		}
		again, err := s.UserByEmail("BOSS@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if again.FailedLogins != 3 || !again.LockedUntil.Equal(t0.Add(15*time.Minute)) {
			t.Errorf("update not stored: %+v", again)
		}
		taken := *again
		taken.Email = "DEV@example.com"
		if err := s.UpdateUser(&taken); !errors.Is(err, ErrConflict) {
			t.Errorf("email taken: error %v, want ErrConflict", err)
		}
		if err := s.UpdateUser(&User{ID: "usr_nope", Email: "a@b.c"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: error %v, want ErrNotFound", err)
		}
		empty := *again
		empty.Email = ""
		if err := s.UpdateUser(&empty); err == nil {
			t.Error("email emptied")
		}
	})

	t.Run("modify", func(t *testing.T) {
		got, err := s.ModifyUser(u.ID, func(u *User) error { u.FailedLogins++; return nil })
		if err != nil || got.FailedLogins != 4 {
			t.Fatalf("ModifyUser = %+v, %v", got, err)
		}
		boom := errors.New("boom")
		if _, err := s.ModifyUser(u.ID, func(u *User) error { u.FailedLogins = 99; return boom }); !errors.Is(err, boom) {
			t.Fatalf("error %v", err)
		}
		if again, _ := s.UserByID(u.ID); again.FailedLogins != 4 {
			t.Errorf("an aborted change was written: %d", again.FailedLogins)
		}
		if _, err := s.ModifyUser("usr_nope", func(*User) error { return nil }); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown user: %v", err)
		}
	})

	t.Run("session epoch never goes down", func(t *testing.T) {
		stale, _ := s.UserByID(u.ID)
		if err := s.RevokeUserRefresh(u.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateUser(stale); err != nil {
			t.Fatal(err)
		}
		if stale.SessionEpoch != 1 {
			t.Errorf("UpdateUser with a stale copy: SessionEpoch %d, want 1", stale.SessionEpoch)
		}
		if got, _ := s.UserByID(u.ID); got.SessionEpoch != 1 {
			t.Errorf("stored SessionEpoch %d, want 1", got.SessionEpoch)
		}
	})

	t.Run("persists across reopen", func(t *testing.T) {
		s2 := reopen(t, s, key)
		got, err := s2.UserByEmail("boss@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != u.ID || got.FailedLogins != 4 || got.SessionEpoch != 1 || !got.CreatedAt.Equal(t0) {
			t.Errorf("after reopen: %+v", got)
		}
		if n, _ := s2.CountUsers(); n != 2 {
			t.Errorf("CountUsers = %d after reopen", n)
		}
	})
}

func TestUsersConcurrent(t *testing.T) {
	s, _, _ := newStore(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateUser(&User{Email: fmt.Sprintf("Same@Example.com%s", strings.Repeat(" ", i%2))})
			if err == nil {
				mu.Lock()
				created++
				mu.Unlock()
			} else if !errors.Is(err, ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if created != 1 {
		t.Fatalf("%d users created with one email", created)
	}
	u, _ := s.UserByEmail("same@example.com")
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.ModifyUser(u.ID, func(u *User) error { u.FailedLogins++; return nil }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got, _ := s.UserByID(u.ID); got.FailedLogins != 50 {
		t.Errorf("50 concurrent increments gave %d", got.FailedLogins)
	}
}

func TestListAndDeleteUsers(t *testing.T) {
	s, _, _ := newStore(t)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, email := range []string{"b@example.com", "a@example.com"} {
		if err := s.CreateUser(&User{Email: email, PasswordHash: "h", Role: "viewer", CreatedAt: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	us, err := s.ListUsers()
	if err != nil || len(us) != 2 || us[0].Email != "b@example.com" || us[1].Email != "a@example.com" {
		t.Fatalf("ListUsers (oldest first): %v %v", us, err)
	}
	rt := &RefreshToken{ID: "rt1", UserID: us[0].ID, Family: "f", ExpiresAt: t0.Add(time.Hour)}
	if err := s.PutRefresh(rt); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(us[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(us[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user still read: %v", err)
	}
	if _, err := s.UserByEmail("B@example.com"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted user's email still maps: %v", err)
	}
	if got, err := s.GetRefresh("rt1"); err == nil && !got.Revoked {
		t.Errorf("deleted user's refresh token not revoked: %+v", got)
	}
	if err := s.DeleteUser(us[0].ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete again: %v", err)
	}
	// The email is free again.
	if err := s.CreateUser(&User{Email: "b@example.com", PasswordHash: "h", Role: "viewer"}); err != nil {
		t.Errorf("email of a deleted user: %v", err)
	}
	if n, _ := s.CountUsers(); n != 2 {
		t.Errorf("CountUsers %d, want 2", n)
	}
}
