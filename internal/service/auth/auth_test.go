package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/blueprint-engine/blueprint/internal/service/store"
)

func init() { bcryptCost = bcrypt.MinCost }

const password = "correct horse battery"

// clock is a fake clock, safe for concurrent use.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// setup returns an Auth over a new store with one owner, at a fake clock.
func setup(t *testing.T) (*Auth, *store.Store, *clock, *store.User) {
	t.Helper()
	dir := t.TempDir()
	key, err := store.LoadOrCreateKey(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "serve.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h, err := HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Email: "Owner@Example.com", PasswordHash: h, Role: "owner"}
	if err := st.CreateUser(u); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().Truncate(time.Second)}
	return New(st, c.now), st, c, u
}

func TestHashPassword(t *testing.T) {
	if defaultBcryptCost != 12 {
		t.Errorf("bcrypt cost %d, want 12", defaultBcryptCost)
	}
	cases := []struct {
		name, p string
		ok      bool
		says    string
	}{
		{"7 characters", "1234567", false, "at least 8"},
		{"empty", "", false, "at least 8"},
		{"8 characters", "12345678", true, ""},
		{"8 characters of 2 bytes", "ääääääää", true, ""},
		{"4 characters of 2 bytes", "ääää", false, "at least 8"},
		{"72 bytes", strings.Repeat("x", 72), true, ""},
		{"73 bytes", strings.Repeat("x", 73), false, "at most 72"},
		{"40 characters of 2 bytes", strings.Repeat("ä", 40), false, "at most 72"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := HashPassword(tc.p)
			if !tc.ok {
				if !errors.Is(err, ErrPasswordPolicy) || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("error %v, want ErrPasswordPolicy saying %q", err, tc.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bcrypt.CompareHashAndPassword([]byte(h), []byte(tc.p)) != nil {
				t.Error("hash does not match its password")
			}
			if c, _ := bcrypt.Cost([]byte(h)); c != bcryptCost {
				t.Errorf("cost %d", c)
			}
			if strings.Contains(h, tc.p) {
				t.Error("the hash holds the password")
			}
		})
	}
}

func TestLogin(t *testing.T) {
	a, st, c, u := setup(t)
	tok, err := a.Login("owner@example.COM", password)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 900 {
		t.Fatalf("tokens %+v", tok)
	}
	cl, err := a.Verify(tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Claims{UserID: u.ID, Email: "Owner@Example.com", Role: "owner", ExpiresAt: cl.ExpiresAt}); *cl != want || cl.ExpiresAt.IsZero() {
		t.Errorf("claims %+v", cl)
	}
	// The payloads say what they are.
	acc, ref := payload(t, tok.AccessToken), payload(t, tok.RefreshToken)
	if acc["typ"] != "access" || acc["iss"] != "blueprint-serve" || acc["sub"] != u.ID || acc["jti"] == nil ||
		int64(acc["exp"].(float64)) != c.now().Add(15*time.Minute).Unix() {
		t.Errorf("access payload %v", acc)
	}
	if ref["typ"] != "refresh" || ref["iss"] != "blueprint-serve" || ref["jti"] == nil || ref["fam"] == nil ||
		int64(ref["exp"].(float64)) != c.now().Add(7*24*time.Hour).Unix() {
		t.Errorf("refresh payload %v", ref)
	}
	if h := header(t, tok.AccessToken); h["alg"] != "HS256" {
		t.Errorf("header %v", h)
	}
	rec, err := st.GetRefresh(ref["jti"].(string))
	if err != nil || rec.UserID != u.ID || rec.Family != ref["fam"] || rec.Used || rec.Revoked {
		t.Errorf("refresh record %+v, %v", rec, err)
	}
	// A role change shows at once: claims come from the state.
	got, _ := st.UserByID(u.ID)
	got.Role = "viewer"
	st.UpdateUser(got)
	if cl, _ := a.Verify(tok.AccessToken); cl == nil || cl.Role != "viewer" {
		t.Errorf("claims after a role change: %+v", cl)
	}
}

func TestLoginFailures(t *testing.T) {
	a, st, c, u := setup(t)
	t0 := c.now()
	for i := 1; i < MaxFailedLogins; i++ {
		if _, err := a.Login(u.Email, "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v, want ErrInvalidCredentials", i, err)
		}
		if got, _ := st.UserByID(u.ID); got.FailedLogins != i {
			t.Fatalf("FailedLogins %d after %d failures", got.FailedLogins, i)
		}
	}
	// The 5th wrong password is still answered as one (the caller sent
	// invalid credentials); it locks, and the lock answers the next.
	if _, err := a.Login(u.Email, "wrong password"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("5th failure: %v, want ErrInvalidCredentials", err)
	}
	_, err := a.Login(u.Email, password)
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) {
		t.Fatalf("after the 5th failure: %v, want a *LockedError", err)
	}
	if want := t0.Add(15 * time.Minute); !le.Until.Equal(want) {
		t.Errorf("locked until %v, want %v", le.Until, want)
	}
	if !strings.Contains(err.Error(), le.Until.UTC().Format(time.RFC3339)) {
		t.Errorf("error %q does not say until when", err)
	}
	// Locked: even the right password is refused, and the lock does not grow.
	c.add(14*time.Minute + 59*time.Second)
	for _, p := range []string{password, "wrong password"} {
		_, err = a.Login(u.Email, p)
		if !errors.As(err, &le) || !le.Until.Equal(t0.Add(15*time.Minute)) {
			t.Fatalf("while locked, %q: %v", p, err)
		}
	}
	// Unlocked after 15 minutes: the right password works and resets.
	c.add(time.Second)
	if _, err := a.Login(u.Email, password); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	if got, _ := st.UserByID(u.ID); got.FailedLogins != 0 || !got.LockedUntil.IsZero() {
		t.Errorf("not reset: %+v", got)
	}

	// A success in between resets the count: 4 + 1 good + 4 do not lock.
	for _, p := range []string{"w", "w", "w", "w", password, "w", "w", "w", "w"} {
		_, err := a.Login(u.Email, p)
		if p == password && err != nil || p != password && !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("login with %q: %v", p, err)
		}
	}
	if _, err := a.Login(u.Email, password); err != nil {
		t.Fatalf("locked although no 5 failures were consecutive: %v", err)
	}

	// After a lock expires, 5 new failures are needed to lock again.
	for range MaxFailedLogins {
		a.Login(u.Email, "w")
	}
	c.add(LockDuration)
	for i := 1; i < MaxFailedLogins; i++ {
		if _, err := a.Login(u.Email, "w"); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("failure %d after a lock: %v", i, err)
		}
	}
	if _, err := a.Login(u.Email, "w"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("5th failure after a lock: %v", err)
	}
	if _, err := a.Login(u.Email, "w"); !errors.Is(err, ErrLocked) {
		t.Fatalf("after the 5th failure after a lock: %v", err)
	}
}

func TestLoginConcurrentFailuresLock(t *testing.T) {
	a, st, _, u := setup(t)
	var wg sync.WaitGroup
	for range 2 * MaxFailedLogins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.Login(u.Email, "wrong password")
		}()
	}
	wg.Wait()
	got, _ := st.UserByID(u.ID)
	if got.LockedUntil.IsZero() {
		t.Errorf("10 concurrent failures did not lock the account: %+v", got)
	}
}

func TestLoginUnknownEmail(t *testing.T) {
	a, _, _, _ := setup(t)
	var calls atomic.Int32
	var hashes sync.Map
	orig := compare
	compare = func(h, p []byte) error {
		calls.Add(1)
		hashes.Store(string(h), true)
		return orig(h, p)
	}
	t.Cleanup(func() { compare = orig })
	for _, email := range []string{"nobody@example.com", "", "owner@example.org"} {
		calls.Store(0)
		if _, err := a.Login(email, password); !errors.Is(err, ErrInvalidCredentials) || err != ErrInvalidCredentials {
			t.Fatalf("%q: %v, want exactly ErrInvalidCredentials", email, err)
		}
		if calls.Load() != 1 {
			t.Errorf("%q: %d bcrypt comparisons, want 1 (the same cost as a known email)", email, calls.Load())
		}
	}
	if _, ok := hashes.Load(string(dummyHash())); !ok {
		t.Error("the unknown emails were not compared against the dummy hash")
	}
	if c, _ := bcrypt.Cost(dummyHash()); c != bcryptCost {
		t.Errorf("dummy hash cost %d, want %d", c, bcryptCost)
	}
	// The message does not tell which of the two was wrong.
	_, e1 := a.Login("nobody@example.com", password)
	_, e2 := a.Login("owner@example.com", "wrong password")
	if e1.Error() != e2.Error() {
		t.Errorf("unknown email %q and wrong password %q differ", e1, e2)
	}
}

func TestRefreshRotation(t *testing.T) {
	a, st, c, u := setup(t)
	t1, err := a.Login(u.Email, password)
	if err != nil {
		t.Fatal(err)
	}
	c.add(time.Minute)
	t2, err := a.Refresh(t1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken || t2.ExpiresIn != 900 {
		t.Fatalf("no new tokens: %+v", t2)
	}
	p1, p2 := payload(t, t1.RefreshToken), payload(t, t2.RefreshToken)
	if p1["fam"] != p2["fam"] || p1["jti"] == p2["jti"] {
		t.Errorf("rotation left the family or kept the ID: %v -> %v", p1, p2)
	}
	if rec, _ := st.GetRefresh(p1["jti"].(string)); !rec.Used {
		t.Error("the presented token is not marked used")
	}
	if rec, _ := st.GetRefresh(p2["jti"].(string)); rec == nil || rec.Used || rec.Family != p1["fam"] {
		t.Errorf("new record %+v", rec)
	}
	if int64(p2["exp"].(float64)) != c.now().Add(RefreshTTL).Unix() {
		t.Error("the new refresh token does not last 7 days from its issue")
	}
	if _, err := a.Verify(t2.AccessToken); err != nil {
		t.Errorf("new access token: %v", err)
	}
	if _, err := a.Verify(t1.AccessToken); err != nil {
		t.Errorf("a rotation invalidated the previous access token: %v", err)
	}
	t3, err := a.Refresh(t2.RefreshToken)
	if err != nil {
		t.Fatalf("second rotation: %v", err)
	}
	if payload(t, t3.RefreshToken)["fam"] != p1["fam"] {
		t.Error("family lost on the second rotation")
	}
}

func TestRefreshReuseRevokesAll(t *testing.T) {
	a, st, _, u := setup(t)
	s1, _ := a.Login(u.Email, password) // the session whose token is stolen
	other, _ := a.Login(u.Email, password)
	s2, err := a.Refresh(s1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Refresh(s1.RefreshToken) // reuse
	if !errors.Is(err, ErrInvalidToken) || !errors.Is(err, ErrRefreshReuse) {
		t.Fatalf("reuse: %v, want ErrRefreshReuse", err)
	}
	if !strings.Contains(err.Error(), "refresh token reuse detected; every session of this user was signed out") {
		t.Errorf("message %q", err)
	}
	for name, tok := range map[string]string{"rotated": s2.RefreshToken, "other session": other.RefreshToken} {
		if _, err := a.Refresh(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s refresh token after a reuse: %v", name, err)
		}
		if rec, _ := st.GetRefresh(payload(t, tok)["jti"].(string)); !rec.Revoked {
			t.Errorf("%s refresh token not revoked", name)
		}
	}
	for name, tok := range map[string]string{"first": s1.AccessToken, "rotated": s2.AccessToken, "other session": other.AccessToken} {
		if _, err := a.Verify(tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s access token after a reuse: %v", name, err)
		}
	}
	// A new login works.
	fresh, err := a.Login(u.Email, password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(fresh.AccessToken); err != nil {
		t.Errorf("access after a new login: %v", err)
	}
	if _, err := a.Refresh(fresh.RefreshToken); err != nil {
		t.Errorf("refresh after a new login: %v", err)
	}
}

func TestRefreshConcurrentReuse(t *testing.T) {
	a, _, _, u := setup(t)
	s, _ := a.Login(u.Email, password)
	var wg sync.WaitGroup
	var ok, reuse atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := a.Refresh(s.RefreshToken)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrRefreshReuse):
				reuse.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || reuse.Load() != 7 {
		t.Errorf("8 concurrent refreshes of one token: %d ok, %d reuse", ok.Load(), reuse.Load())
	}
}

func TestExpiry(t *testing.T) {
	a, _, c, u := setup(t)
	s, _ := a.Login(u.Email, password)
	c.add(AccessTTL - time.Second)
	if _, err := a.Verify(s.AccessToken); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	c.add(time.Second)
	if _, err := a.Verify(s.AccessToken); !errors.Is(err, ErrExpiredToken) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired access: %v, want ErrExpiredToken", err)
	}
	// The refresh token outlives it.
	s2, err := a.Refresh(s.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	c.add(RefreshTTL - time.Second)
	if _, err := a.Verify(s2.AccessToken); !errors.Is(err, ErrExpiredToken) {
		t.Fatalf("old access: %v", err)
	}
	c.add(time.Second)
	if _, err := a.Refresh(s2.RefreshToken); !errors.Is(err, ErrExpiredToken) || errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired refresh: %v, want ErrExpiredToken", err)
	}
	// An expired token of the wrong kind is invalid, not expired.
	if _, err := a.Verify(s2.RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired refresh token as access: %v", err)
	}
}

func TestForgedTokens(t *testing.T) {
	a, _, c, u := setup(t)
	s, _ := a.Login(u.Email, password)
	now := c.now()
	valid := func() tokenClaims {
		return tokenClaims{Type: "access", RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: u.ID, ID: "x",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)),
		}}
	}
	sign := func(m jwt.SigningMethod, cl tokenClaims, key any) string {
		tok, err := jwt.NewWithClaims(m, cl).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// Our key signs a well-formed token that passes: the cases below fail
	// for their one difference.
	if _, err := a.Verify(sign(jwt.SigningMethodHS256, valid(), a.key)); err != nil {
		t.Fatalf("control token: %v", err)
	}
	_, other, _, _ := setup(t)
	parts := strings.Split(s.AccessToken, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[len(b)/2] == 'A' {
			b[len(b)/2] = 'B'
		} else {
			b[len(b)/2] = 'A'
		}
		return string(b)
	}
	var claimsAsOwner map[string]any
	json.Unmarshal(mustB64(t, parts[1]), &claimsAsOwner)
	claimsAsOwner["role"] = "superuser"
	forgedPayload, _ := json.Marshal(claimsAsOwner)

	cases := map[string]string{
		"alg none":                 sign(jwt.SigningMethodNone, valid(), jwt.UnsafeAllowNoneSignatureType),
		"alg none, signature kept": b64(`{"alg":"none","typ":"JWT"}`) + "." + parts[1] + "." + parts[2],
		"alg HS512 with our key":   sign(jwt.SigningMethodHS512, valid(), a.key),
		"alg HS384 with our key":   sign(jwt.SigningMethodHS384, valid(), a.key),
		"alg RS256 header":         b64(`{"alg":"RS256","typ":"JWT"}`) + "." + parts[1] + "." + parts[2],
		"tampered signature":       parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"tampered payload":         parts[0] + "." + b64(string(forgedPayload)) + "." + parts[2],
		"no signature":             parts[0] + "." + parts[1] + ".",
		"another key":              sign(jwt.SigningMethodHS256, valid(), other.SigningKey()),
		"refresh token as access":  s.RefreshToken,
		"wrong issuer":             sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.Issuer = "someone"; return c }(), a.key),
		"no issuer":                sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.Issuer = ""; return c }(), a.key),
		"no expiry":                sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.ExpiresAt = nil; return c }(), a.key),
		"no type":                  sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.Type = ""; return c }(), a.key),
		"no subject":               sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.Subject = ""; return c }(), a.key),
		"unknown user":             sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.Subject = "usr_nobody"; return c }(), a.key),
		"old epoch":                sign(jwt.SigningMethodHS256, func() tokenClaims { c := valid(); c.Epoch = -1; return c }(), a.key),
		"not yet valid": sign(jwt.SigningMethodHS256, func() tokenClaims {
			c := valid()
			c.NotBefore = jwt.NewNumericDate(now.Add(time.Hour))
			return c
		}(), a.key),
		"empty":    "",
		"garbage":  "not.a.token",
		"one part": parts[1],
		"expired token of another key": sign(jwt.SigningMethodHS256, func() tokenClaims {
			c := valid()
			c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
			return c
		}(), other.SigningKey()),
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := a.Verify(tok)
			if !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrExpiredToken) {
				t.Errorf("Verify: %v, want ErrInvalidToken", err)
			}
			if name == "refresh token as access" {
				return // a good refresh token
			}
			if _, err := a.Refresh(tok); !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrRefreshReuse) {
				t.Errorf("Refresh: %v, want ErrInvalidToken", err)
			}
		})
	}
	if _, err := a.Refresh(s.AccessToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("access token as refresh: %v", err)
	}
	// None of that signed anyone out.
	if _, err := a.Verify(s.AccessToken); err != nil {
		t.Errorf("the real session after the forgeries: %v", err)
	}
}

func TestRefreshUnknownToken(t *testing.T) {
	a, _, c, u := setup(t)
	now := c.now()
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{Type: "refresh", Family: "fam_x", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Subject: u.ID, ID: "never-issued", ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}}).SignedString(a.key)
	if _, err := a.Refresh(tok); !errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrRefreshReuse) {
		t.Fatalf("a refresh token never issued: %v", err)
	}
}

func payload(t *testing.T, tok string) map[string]any { return part(t, tok, 1) }
func header(t *testing.T, tok string) map[string]any  { return part(t, tok, 0) }

func part(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(mustB64(t, strings.Split(tok, ".")[i]), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestChangePassword: a user's change of their own password checks the
// policy first, then the current password as Login does (a wrong one
// counts toward the lock, a locked account is refused whatever the
// password), then replaces the hash and signs every session out.
func TestChangePassword(t *testing.T) {
	a, st, _, u := setup(t)
	tok, err := a.Login(u.Email, password)
	if err != nil {
		t.Fatal(err)
	}
	const next = "another horse battery"
	if err := a.ChangePassword(u.ID, password, "short"); !errors.Is(err, ErrPasswordPolicy) {
		t.Fatalf("short new password: %v", err)
	}
	if got, _ := st.UserByID(u.ID); got.FailedLogins != 0 {
		t.Errorf("a policy refusal counted as a failure: %d", got.FailedLogins)
	}
	if err := a.ChangePassword(u.ID, "wrong password", next); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("wrong current: %v", err)
	}
	if got, _ := st.UserByID(u.ID); got.FailedLogins != 1 {
		t.Errorf("FailedLogins %d after a wrong current password, want 1", got.FailedLogins)
	}
	if _, err := a.Verify(tok.AccessToken); err != nil {
		t.Fatalf("a refused change signed the user out: %v", err)
	}
	if err := a.ChangePassword("usr_nope", password, next); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("unknown user: %v", err)
	}
	if err := a.ChangePassword(u.ID, password, next); err != nil {
		t.Fatalf("change: %v", err)
	}
	if got, _ := st.UserByID(u.ID); got.FailedLogins != 0 {
		t.Errorf("FailedLogins %d after a change, want 0", got.FailedLogins)
	}
	if _, err := a.Verify(tok.AccessToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("access token after the change: %v", err)
	}
	if _, err := a.Refresh(tok.RefreshToken); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("refresh token after the change: %v", err)
	}
	if _, err := a.Login(u.Email, password); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("old password: %v", err)
	}
	if _, err := a.Login(u.Email, next); err != nil {
		t.Fatalf("new password: %v", err)
	}
	for range MaxFailedLogins {
		if err := a.ChangePassword(u.ID, "wrong password", password); !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("wrong current: %v", err)
		}
	}
	if err := a.ChangePassword(u.ID, next, password); !errors.Is(err, ErrLocked) {
		t.Errorf("locked, right current password: %v", err)
	}
	if _, err := a.Login(u.Email, next); !errors.Is(err, ErrLocked) {
		t.Errorf("login locked by wrong current passwords: %v", err)
	}
}
