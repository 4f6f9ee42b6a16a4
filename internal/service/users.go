package service

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/blueprint-engine/blueprint/internal/service/auth"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// userView is a user as the API shows it: never its password hash.
type userView struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// userCreate answers POST /v1/admin/users {"email","password","role"}
// (owner only): role owner or viewer, viewer when left out.
func (s *Service) userCreate(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Role     string `json:"role"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	email := strings.TrimSpace(body.Email)
	if i := strings.IndexByte(email, '@'); i < 1 || i == len(email)-1 || strings.ContainsAny(email, " \t\r\n") || len(email) > 254 {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_EMAIL", Message: "email must be an address (name@domain)", Fields: []string{"email"}}
	}
	if body.Role == "" {
		body.Role = roleViewer
	}
	if body.Role != roleOwner && body.Role != roleViewer {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_ROLE", Message: "role must be owner or viewer, not " + body.Role, Fields: []string{"role"}}
	}
	hash, err := auth.HashPassword(body.Password)
	if errors.Is(err, auth.ErrPasswordPolicy) {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_PASSWORD", Message: err.Error(), Fields: []string{"password"}}
	} else if err != nil {
		return err
	}
	u := &store.User{Email: email, PasswordHash: hash, Role: body.Role, CreatedAt: s.cfg.Now().UTC()}
	if err := s.st.CreateUser(u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "EMAIL_TAKEN", "a user with the email %q exists", email)
		}
		return err
	}
	s.log.Info("user created", "user", u.ID, "role", u.Role, "by", claims(r).UserID)
	writeJSON(w, http.StatusCreated, userView{u.ID, u.Email, u.Role, u.CreatedAt})
	return nil
}

// usersList answers GET /v1/admin/users (owner only), the oldest first.
func (s *Service) usersList(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := paging(r)
	if err != nil {
		return err
	}
	all, err := s.st.ListUsers()
	if err != nil {
		return err
	}
	views := make([]userView, len(all))
	for i, u := range all {
		views[i] = userView{u.ID, u.Email, u.Role, u.CreatedAt}
	}
	p, err := pageOf(views, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// userDelete answers DELETE /v1/admin/users/{id} (owner only) with 204:
// every session of the user ends. An owner cannot delete themself, so
// the state always keeps an owner.
func (s *Service) userDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if id == claims(r).UserID {
		return errorf(http.StatusConflict, "CANNOT_DELETE_SELF", "a user cannot delete themself (the state must keep an owner): another owner can")
	}
	// Under the lock of userPatch, the caller's role read again: an owner
	// deleted or demoted meanwhile cannot remove the last other owner.
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if err := s.callerStillOwner(r); err != nil {
		return err
	}
	if err := s.st.DeleteUser(id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(http.StatusNotFound, "NOT_FOUND", "no user %q", id)
		}
		return err
	}
	s.log.Info("user deleted", "user", id, "by", claims(r).UserID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// userPatch answers PATCH /v1/admin/users/{id} {"role","password"} (owner
// only, both optional) with 200 and the user. The checks are POST's
// (422 INVALID_ROLE, INVALID_PASSWORD). An owner cannot demote themself
// (409 CANNOT_DEMOTE_SELF), as they cannot delete themself: the caller is
// an owner, so an owner always remains. A change of password or role ends
// every session of the user at once, the caller's too when it is their
// own password; an owner's new password also lifts a login lock. A body
// that changes nothing ({} or the same role) ends no session.
func (s *Service) userPatch(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Role     *string `json:"role"`
		Password *string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.Role != nil && *body.Role != roleOwner && *body.Role != roleViewer {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_ROLE", Message: "role must be owner or viewer, not " + *body.Role, Fields: []string{"role"}}
	}
	var hash string
	if body.Password != nil {
		var err error
		hash, err = auth.HashPassword(*body.Password)
		if errors.Is(err, auth.ErrPasswordPolicy) {
			return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_PASSWORD", Message: err.Error(), Fields: []string{"password"}}
		} else if err != nil {
			return err
		}
	}
	id, caller := r.PathValue("id"), claims(r).UserID
	// One change of users at a time, with the caller's role read again
	// under the lock: two owners demoting each other at once cannot both
	// succeed and leave the state without an owner.
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	if err := s.callerStillOwner(r); err != nil {
		return err
	}
	old, err := s.st.UserByID(id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "NOT_FOUND", "no user %q", id)
	} else if err != nil {
		return err
	}
	if id == caller && body.Role != nil && *body.Role != roleOwner {
		return errorf(http.StatusConflict, "CANNOT_DEMOTE_SELF", "an owner cannot demote themself (the state must keep an owner): another owner can")
	}
	roleChanged := body.Role != nil && *body.Role != old.Role
	if !roleChanged && hash == "" {
		writeJSON(w, http.StatusOK, userView{old.ID, old.Email, old.Role, old.CreatedAt})
		return nil
	}
	u, err := s.st.ModifyUser(id, func(u *store.User) error {
		if roleChanged {
			u.Role = *body.Role
		}
		if hash != "" {
			u.PasswordHash = hash
			u.FailedLogins, u.LockedUntil = 0, time.Time{}
		}
		// Every token of the user ends in the same transaction as the
		// change (RevokeUserRefresh below also marks the refresh tokens).
		u.SessionEpoch++
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "NOT_FOUND", "no user %q", id)
	} else if err != nil {
		return err
	}
	if err := s.st.RevokeUserRefresh(id); err != nil {
		return err
	}
	s.log.Info("user changed", "user", id, "role", u.Role, "role_changed", roleChanged, "password_changed", hash != "", "by", caller)
	writeJSON(w, http.StatusOK, userView{u.ID, u.Email, u.Role, u.CreatedAt})
	return nil
}

// passwordChange answers POST /v1/admin/users/me/password
// {"current_password","new_password"} (any role) with 204. A wrong
// current password is 401 INVALID_CREDENTIALS and counts toward the lock
// as a failed login does (a stolen access token must not be a way to try
// passwords without it); a locked account is 429 ACCOUNT_LOCKED. Every
// session of the user ends, the caller's included: log in again with the
// new password.
func (s *Service) passwordChange(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	id := claims(r).UserID
	err := s.auth.ChangePassword(id, body.Current, body.New)
	var le *auth.LockedError
	switch {
	case errors.Is(err, auth.ErrPasswordPolicy):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_PASSWORD", Message: err.Error(), Fields: []string{"new_password"}}
	case errors.As(err, &le):
		return &apiError{Status: http.StatusTooManyRequests, Code: "ACCOUNT_LOCKED", Message: "too many wrong passwords: the account is locked until " + le.Until.UTC().Format(time.RFC3339), RetryAfter: le.Until.Sub(s.cfg.Now())}
	case errors.Is(err, auth.ErrInvalidCredentials):
		return errorf(http.StatusUnauthorized, "INVALID_CREDENTIALS", "the current password is wrong")
	case errors.Is(err, auth.ErrInvalidToken):
		return tokenError(err)
	case err != nil:
		return err
	}
	s.log.Info("password changed", "user", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// callerStillOwner checks, under usersMu, that the caller is still an
// owner (their token was verified before the lock was taken).
func (s *Service) callerStillOwner(r *http.Request) error {
	me, err := s.st.UserByID(claims(r).UserID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil || me.Role != roleOwner {
		return errorf(http.StatusForbidden, "FORBIDDEN", "%s %s needs the owner role", r.Method, r.URL.Path)
	}
	return nil
}
