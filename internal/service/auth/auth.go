// Package auth signs the users of blueprint serve's management API in and
// checks their tokens: bcrypt passwords with an account lock after repeated
// failures, short-lived HS256 access tokens, and refresh tokens that rotate
// at each use, whose reuse signs every session of the user out. It also has
// the per-key rate limiter of the API.
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/blueprint-engine/blueprint/internal/service/store"
)

var (
	// ErrInvalidCredentials: unknown email or wrong password (which of the
	// two is not told).
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrLocked: too many failed logins; the error is a *LockedError that
	// says until when.
	ErrLocked = errors.New("account locked after too many failed logins")
	// ErrInvalidToken: a token that is not one of ours, not of the kind
	// expected, tampered with, revoked or of a user signed out.
	ErrInvalidToken = errors.New("invalid token")
	// ErrExpiredToken: a token of ours, of the kind expected, past its
	// expiry.
	ErrExpiredToken = errors.New("token expired")
	// ErrRefreshReuse is the ErrInvalidToken of a refresh token presented
	// again after its rotation (or revocation).
	ErrRefreshReuse = fmt.Errorf("%w: refresh token reuse detected; every session of this user was signed out", ErrInvalidToken)
	// ErrPasswordPolicy: HashPassword refused the password.
	ErrPasswordPolicy = errors.New("password refused")
)

// LockedError is the ErrLocked of an account locked until Until.
type LockedError struct{ Until time.Time }

func (e *LockedError) Error() string {
	return fmt.Sprintf("account locked after %d failed logins, until %s", MaxFailedLogins, e.Until.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

const (
	// Issuer is the iss of every token.
	Issuer = "blueprint-serve"
	// AccessTTL is the lifetime of an access token.
	AccessTTL = 15 * time.Minute
	// RefreshTTL is the lifetime of a refresh token.
	RefreshTTL = 7 * 24 * time.Hour
	// MaxFailedLogins consecutive failed logins lock the account for
	// LockDuration.
	MaxFailedLogins = 5
	// LockDuration is how long a locked account stays locked.
	LockDuration = 15 * time.Minute

	typeAccess  = "access"
	typeRefresh = "refresh"

	defaultBcryptCost = 12
	minPasswordChars  = 8
	maxPasswordBytes  = 72
)

// bcryptCost is the cost of new hashes; tests lower it.
var bcryptCost = defaultBcryptCost

// SetHashCost sets the bcrypt cost of the password hashes made from now on
// (bcrypt.MinCost to bcrypt.MaxCost; else it is left as it is) and returns
// the previous one. For tests only, which call it before anything is
// hashed: under the race detector a cost-12 hash takes seconds, and the
// service's tests create and change users by the API. Serve never calls
// it, and a stored hash keeps the cost it was made with.
func SetHashCost(cost int) (previous int) {
	previous = bcryptCost
	if cost >= bcrypt.MinCost && cost <= bcrypt.MaxCost {
		bcryptCost = cost
	}
	return previous
}

// compare checks a password against a bcrypt hash; tests count its calls.
var compare = bcrypt.CompareHashAndPassword

// Tokens is the answer to a login or a refresh.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	// ExpiresIn is the access token's lifetime in seconds.
	ExpiresIn int `json:"expires_in"`
}

// Claims is who an access token speaks for, as the user is now (email and
// role are read from the state, not from the token).
type Claims struct {
	UserID, Email, Role string
	// ExpiresAt is when the access token expires: a stream opened with it
	// must end then.
	ExpiresAt time.Time
}

// tokenClaims is the JWT payload of both kinds of token.
type tokenClaims struct {
	Type   string `json:"typ"`
	Email  string `json:"email,omitempty"`
	Role   string `json:"role,omitempty"`
	Family string `json:"fam,omitempty"`
	// Epoch is the user's SessionEpoch when the token was issued: a
	// sign-out of every session raises it, and older tokens are refused.
	Epoch int `json:"sep"`
	jwt.RegisteredClaims
}

// Auth signs users in and checks their tokens. It is safe for concurrent
// use.
type Auth struct {
	st     *store.Store
	now    func() time.Time
	key    []byte
	parser *jwt.Parser
}

// New returns an Auth over the users and refresh tokens of st, signing with
// st.SigningKey(). now is the clock (nil: time.Now).
func New(st *store.Store, now func() time.Time) *Auth {
	if now == nil {
		now = time.Now
	}
	return &Auth{
		st:  st,
		now: now,
		key: st.SigningKey(),
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(Issuer),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(now),
		),
	}
}

// HashPassword returns the bcrypt hash (cost 12) of p. A password shorter
// than 8 characters, or longer than 72 bytes (bcrypt ignores the rest), is
// refused with an ErrPasswordPolicy that says why.
func HashPassword(p string) (string, error) {
	if err := CheckPasswordPolicy(p); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(p), bcryptCost)
	if err != nil {
		return "", err
	}
	return string(h), nil
}

// CheckPasswordPolicy is HashPassword's check, without the hashing: an
// ErrPasswordPolicy that says why p is refused, or nil.
func CheckPasswordPolicy(p string) error {
	if n := utf8.RuneCountInString(p); n < minPasswordChars {
		return fmt.Errorf("%w: it has %d characters, at least %d are needed", ErrPasswordPolicy, n, minPasswordChars)
	}
	if len(p) > maxPasswordBytes {
		return fmt.Errorf("%w: it is %d bytes long, at most %d are allowed (bcrypt ignores the rest)", ErrPasswordPolicy, len(p), maxPasswordBytes)
	}
	return nil
}

var (
	dummyOnce sync.Once
	dummy     []byte
)

// dummyHash is a hash of a random password, compared against when the
// email is unknown, so that a login costs the same bcrypt time whether the
// account exists or not.
func dummyHash() []byte {
	dummyOnce.Do(func() {
		h, err := bcrypt.GenerateFromPassword([]byte(randomHex(16)), bcryptCost)
		if err != nil {
			panic("auth: " + err.Error())
		}
		dummy = h
	})
	return dummy
}

// Login checks email (any case) and password and returns a new session.
// An unknown email or a wrong password is ErrInvalidCredentials; the
// MaxFailedLogins-th consecutive wrong password (itself still
// ErrInvalidCredentials) locks the account for LockDuration, and every
// later login to the locked account is a *LockedError
// (ErrLocked). A successful login resets the count.
func (a *Auth) Login(email, password string) (Tokens, error) {
	u, err := a.st.UserByEmail(email)
	if errors.Is(err, store.ErrNotFound) {
		_ = compare(dummyHash(), []byte(password))
		return Tokens{}, ErrInvalidCredentials
	}
	if err != nil {
		return Tokens{}, err
	}
	now := a.now()
	if now.Before(u.LockedUntil) {
		return Tokens{}, &LockedError{Until: u.LockedUntil}
	}
	if err := a.checkPassword(u, password, now); err != nil {
		return Tokens{}, err
	}
	rt := &store.RefreshToken{ID: randomHex(16), UserID: u.ID, Family: "fam_" + randomHex(12), ExpiresAt: now.Add(RefreshTTL)}
	if err := a.st.PutRefresh(rt); err != nil {
		return Tokens{}, err
	}
	u, err = a.st.UserByID(u.ID)
	if err != nil {
		return Tokens{}, err
	}
	return a.sign(u, rt, now)
}

// ChangePassword is a user's change of their own password: current must
// be their password, checked as Login checks it (a wrong one is
// ErrInvalidCredentials and counts toward the lock; a locked account is
// a *LockedError whatever the password), then the hash of newPassword
// (HashPassword: an ErrPasswordPolicy refuses it, before current is
// checked) replaces it, the failed-login count is reset, and every session
// of the user is signed out, the caller's included. The new password is
// hashed only once current is right, so that wrong guesses cost one
// comparison each, not a comparison and a hash.
func (a *Auth) ChangePassword(userID, current, newPassword string) error {
	if err := CheckPasswordPolicy(newPassword); err != nil {
		return err
	}
	u, err := a.st.UserByID(userID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: the user no longer exists", ErrInvalidToken)
	}
	if err != nil {
		return err
	}
	now := a.now()
	if now.Before(u.LockedUntil) {
		return &LockedError{Until: u.LockedUntil}
	}
	if err := a.checkPassword(u, current, now); err != nil {
		return err
	}
	newHash, err := HashPassword(newPassword)
	if err != nil {
		return err
	}
	if _, err := a.st.ModifyUser(u.ID, func(u *store.User) error {
		u.PasswordHash = newHash
		u.FailedLogins = 0
		u.LockedUntil = time.Time{}
		// Every token of the user ends in the same transaction as the
		// change: a crash before RevokeUserRefresh must not leave the old
		// sessions alive under the new password.
		u.SessionEpoch++
		return nil
	}); err != nil {
		return err
	}
	return a.st.RevokeUserRefresh(u.ID)
}

// checkPassword compares password with u's hash: a wrong one counts
// toward the lock (ErrInvalidCredentials, or a *LockedError when a
// concurrent attempt locked the account first); a right one resets the
// count.
func (a *Auth) checkPassword(u *store.User, password string, now time.Time) error {
	if compare([]byte(u.PasswordHash), []byte(password)) != nil {
		counted := false
		u, err := a.st.ModifyUser(u.ID, func(u *store.User) error {
			if counted = !now.Before(u.LockedUntil); !counted {
				return nil // locked by a concurrent attempt
			}
			u.FailedLogins++
			if u.FailedLogins >= MaxFailedLogins {
				u.FailedLogins = 0
				u.LockedUntil = now.Add(LockDuration)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !counted {
			// Locked by a concurrent attempt before this one was counted.
			return &LockedError{Until: u.LockedUntil}
		}
		// The attempt that locks the account is still a wrong password
		// (401); the lock answers the attempts after it.
		return ErrInvalidCredentials
	}
	if u.FailedLogins != 0 || !u.LockedUntil.IsZero() {
		if _, err := a.st.ModifyUser(u.ID, func(u *store.User) error {
			u.FailedLogins = 0
			u.LockedUntil = time.Time{}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// Refresh exchanges a refresh token for a new session of the same family:
// the token is marked used and a new one issued. Presenting a used or
// revoked token again signs every session of its user out and is
// ErrRefreshReuse (an ErrInvalidToken). An expired token is
// ErrExpiredToken; anything else not a valid refresh token of ours is
// ErrInvalidToken.
func (a *Auth) Refresh(refresh string) (Tokens, error) {
	c, err := a.parse(refresh, typeRefresh)
	if err != nil {
		return Tokens{}, err
	}
	if c.ID == "" || c.Family == "" {
		return Tokens{}, fmt.Errorf("%w: a refresh token without ID or family", ErrInvalidToken)
	}
	now := a.now()
	next := &store.RefreshToken{ID: randomHex(16), UserID: c.Subject, Family: c.Family, ExpiresAt: now.Add(RefreshTTL)}
	old, err := a.st.RotateRefresh(c.ID, next)
	switch {
	case errors.Is(err, store.ErrRefreshUsed):
		if rerr := a.st.RevokeUserRefresh(old.UserID); rerr != nil {
			return Tokens{}, fmt.Errorf("%w (and signing the user out failed: %v)", ErrRefreshReuse, rerr)
		}
		return Tokens{}, ErrRefreshReuse
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrConflict):
		return Tokens{}, fmt.Errorf("%w: unknown refresh token", ErrInvalidToken)
	case err != nil:
		return Tokens{}, err
	}
	u, err := a.user(c.Subject, c.Epoch)
	if err != nil {
		return Tokens{}, err
	}
	return a.sign(u, next, now)
}

// Verify checks an access token and returns who it speaks for. An expired
// token is ErrExpiredToken; a token not signed HS256 with our key, of
// another kind (a refresh token), tampered with, or of a user since signed
// out or deleted, is ErrInvalidToken. Other errors are the state's.
func (a *Auth) Verify(access string) (*Claims, error) {
	c, err := a.parse(access, typeAccess)
	if err != nil {
		return nil, err
	}
	u, err := a.user(c.Subject, c.Epoch)
	if err != nil {
		return nil, err
	}
	cl := &Claims{UserID: u.ID, Email: u.Email, Role: u.Role}
	if c.ExpiresAt != nil {
		cl.ExpiresAt = c.ExpiresAt.Time
	}
	return cl, nil
}

// user returns the user a token of epoch speaks for, or ErrInvalidToken when
// the user is gone or was signed out since.
func (a *Auth) user(id string, epoch int) (*store.User, error) {
	u, err := a.st.UserByID(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: the user no longer exists", ErrInvalidToken)
	}
	if err != nil {
		return nil, err
	}
	if u.SessionEpoch != epoch {
		return nil, fmt.Errorf("%w: every session of this user was signed out", ErrInvalidToken)
	}
	return u, nil
}

func (a *Auth) parse(token, want string) (*tokenClaims, error) {
	var c tokenClaims
	_, err := a.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("signing method %v", t.Header["alg"])
		}
		return a.key, nil
	})
	// The signature is checked before the claims: an expired token is one
	// of ours.
	if err != nil && errors.Is(err, jwt.ErrTokenExpired) && !errors.Is(err, jwt.ErrTokenSignatureInvalid) && c.Issuer == Issuer && c.Type == want {
		return nil, fmt.Errorf("%w: the %s token expired at %s", ErrExpiredToken, want, c.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if c.Type != want {
		return nil, fmt.Errorf("%w: a %q token where an %q token was expected", ErrInvalidToken, c.Type, want)
	}
	if c.Subject == "" {
		return nil, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	return &c, nil
}

// sign returns the access token of u and the refresh token of rt.
func (a *Auth) sign(u *store.User, rt *store.RefreshToken, now time.Time) (Tokens, error) {
	access := tokenClaims{
		Type: typeAccess, Email: u.Email, Role: u.Role, Epoch: u.SessionEpoch,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: u.ID, ID: randomHex(16),
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(AccessTTL)),
		},
	}
	refresh := tokenClaims{
		Type: typeRefresh, Family: rt.Family, Epoch: u.SessionEpoch,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: Issuer, Subject: u.ID, ID: rt.ID,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(rt.ExpiresAt),
		},
	}
	at, err := jwt.NewWithClaims(jwt.SigningMethodHS256, access).SignedString(a.key)
	if err != nil {
		return Tokens{}, err
	}
	rtok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, refresh).SignedString(a.key)
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{AccessToken: at, RefreshToken: rtok, ExpiresIn: int(AccessTTL / time.Second)}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b)
}
