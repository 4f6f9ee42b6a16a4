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
