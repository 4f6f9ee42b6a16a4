package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRefreshTokens(t *testing.T) {
	s, _, key := newStore(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	now := fixedClock(s, t0)
	u := &User{Email: "a@example.com"}
	other := &User{Email: "b@example.com"}
	for _, x := range []*User{u, other} {
		if err := s.CreateUser(x); err != nil {
			t.Fatal(err)
		}
	}
	exp := t0.Add(7 * 24 * time.Hour)
	put := []struct {
		name    string
		tok     RefreshToken
		wantErr error
	}{
		{"first", RefreshToken{ID: "r1", UserID: u.ID, Family: "f1", ExpiresAt: exp}, nil},
		{"second family", RefreshToken{ID: "r2", UserID: u.ID, Family: "f2", ExpiresAt: exp}, nil},
		{"other user", RefreshToken{ID: "o1", UserID: other.ID, Family: "f3", ExpiresAt: exp}, nil},
		{"same ID, other user", RefreshToken{ID: "r1", UserID: other.ID, Family: "f1", ExpiresAt: exp}, ErrConflict},
		{"no ID", RefreshToken{UserID: u.ID}, errors.New("required")},
	}
	for _, tc := range put {
		t.Run("put/"+tc.name, func(t *testing.T) {
			c := tc.tok
			err := s.PutRefresh(&c)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatal(err)
			case tc.wantErr != nil && err == nil:
				t.Fatal("no error")
			case errors.Is(tc.wantErr, ErrConflict) && !errors.Is(err, ErrConflict):
				t.Fatalf("error %v, want ErrConflict", err)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		got, err := s.GetRefresh("r1")
		if err != nil {
			t.Fatal(err)
		}
		if got.UserID != u.ID || got.Family != "f1" || !got.ExpiresAt.Equal(exp) || got.Used || got.Revoked {
			t.Errorf("got %+v", got)
		}
		for _, id := range []string{"nope", ""} {
			if _, err := s.GetRefresh(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetRefresh(%q): %v, want ErrNotFound", id, err)
			}
		}
	})

	t.Run("rotate", func(t *testing.T) {
		next := &RefreshToken{ID: "r1b", UserID: u.ID, Family: "f1", ExpiresAt: exp}
		old, err := s.RotateRefresh("r1", next)
		if err != nil {
			t.Fatal(err)
		}
		if old.ID != "r1" || old.Used {
			t.Errorf("old as it was: %+v", old)
		}
		if got, _ := s.GetRefresh("r1"); !got.Used {
			t.Error("rotated token not marked used")
		}
		if got, err := s.GetRefresh("r1b"); err != nil || got.Used {
			t.Errorf("next token: %+v, %v", got, err)
		}
		// Reuse: refused, nothing written.
		old, err = s.RotateRefresh("r1", &RefreshToken{ID: "r1c", UserID: u.ID, Family: "f1", ExpiresAt: exp})
		if !errors.Is(err, ErrRefreshUsed) || old == nil || old.UserID != u.ID {
			t.Fatalf("reuse: %+v, %v", old, err)
		}
		if _, err := s.GetRefresh("r1c"); !errors.Is(err, ErrNotFound) {
			t.Error("a reused token issued a new one")
		}
		if _, err := s.RotateRefresh("nope", &RefreshToken{ID: "x", UserID: u.ID}); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown token: %v", err)
		}
		if _, err := s.RotateRefresh("r2", &RefreshToken{ID: "x", UserID: other.ID, Family: "f2"}); !errors.Is(err, ErrConflict) {
			t.Errorf("next of another user: %v", err)
		}
		if _, err := s.RotateRefresh("r2", &RefreshToken{ID: "r2", UserID: u.ID, Family: "f2"}); err == nil {
			t.Error("next with the same ID accepted")
		}
		if got, _ := s.GetRefresh("r2"); got.Used {
			t.Error("a refused rotation marked the token used")
		}
	})

	t.Run("revoke all of a user", func(t *testing.T) {
		if err := s.RevokeUserRefresh(u.ID); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"r1", "r1b", "r2"} {
			if got, _ := s.GetRefresh(id); !got.Revoked {
				t.Errorf("%s not revoked", id)
			}
		}
		if got, _ := s.GetRefresh("o1"); got.Revoked {
			t.Error("another user's token revoked")
		}
		if got, _ := s.UserByID(u.ID); got.SessionEpoch != 1 {
			t.Errorf("SessionEpoch %d, want 1", got.SessionEpoch)
		}
		if _, err := s.RotateRefresh("r2", &RefreshToken{ID: "r2b", UserID: u.ID, Family: "f2", ExpiresAt: exp}); !errors.Is(err, ErrRefreshUsed) {
			t.Errorf("rotating a revoked token: %v", err)
		}
		if err := s.RevokeUserRefresh("usr_gone"); err != nil {
			t.Errorf("revoking the tokens of an unknown user: %v", err)
		}
	})

	s = reopen(t, s, key)
	now = fixedClock(s, t0)
	t.Run("persists across reopen", func(t *testing.T) {
		got, err := s.GetRefresh("r1")
		if err != nil || !got.Used || !got.Revoked || got.Family != "f1" {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
	})

	t.Run("expired records are purged", func(t *testing.T) {
		*now = exp.Add(refreshGrace + time.Minute)
		if err := s.PutRefresh(&RefreshToken{ID: "fresh", UserID: u.ID, Family: "f9", ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"r1", "r1b", "r2"} {
			if _, err := s.GetRefresh(id); !errors.Is(err, ErrNotFound) {
				t.Errorf("%s kept a day after its expiry: %v", id, err)
			}
		}
		if _, err := s.GetRefresh("o1"); err != nil {
			t.Errorf("another user's token purged: %v", err)
		}
		if _, err := s.GetRefresh("fresh"); err != nil {
			t.Error(err)
		}
	})
}

func TestRotateRefreshConcurrent(t *testing.T) {
	s, _, _ := newStore(t)
	u := &User{Email: "a@example.com"}
	s.CreateUser(u)
	exp := time.Now().Add(time.Hour)
	s.PutRefresh(&RefreshToken{ID: "r", UserID: u.ID, Family: "f", ExpiresAt: exp})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, used := 0, 0
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.RotateRefresh("r", &RefreshToken{ID: fmt.Sprint("n", i), UserID: u.ID, Family: "f", ExpiresAt: exp})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrRefreshUsed):
				used++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || used != 19 {
		t.Errorf("20 rotations of one token: %d succeeded, %d refused as used", ok, used)
	}
}
