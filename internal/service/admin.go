package service

import (
	"context"
	_ "embed"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blueprint-engine/blueprint/internal/service/auth"
	"github.com/blueprint-engine/blueprint/internal/service/live"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

//go:embed openapi.json
var openAPI []byte

// handlerFunc is a handler that returns its error; errors become the
// API's error answers.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type ctxKey struct{}

// claims returns the caller of an authenticated request.
func claims(r *http.Request) *auth.Claims {
	c, _ := r.Context().Value(ctxKey{}).(*auth.Claims)
	return c
}

// route is one management endpoint.
type route struct {
	method, path string
	auth         bool
	h            handlerFunc
	// ownerOnly: even reading it needs the owner role (users).
	ownerOnly bool
	// anyRole: a change every user may make, a viewer too (their own
	// password).
	anyRole bool
}

// The roles of a user. An owner may make every call; a viewer may read
// (GET: the catalog, integrations, revisions, sources without their
// secret keys, dead letters, the live stream) and nothing else: every
// change and the user endpoints are 403 FORBIDDEN. A role this version
// does not know is treated as a viewer.
const (
	roleOwner  = "owner"
	roleViewer = "viewer"
)

// routes are the management API's JSON endpoints (the OpenAPI document
// lists exactly these, and a test checks it).
func (s *Service) routes() []route {
	return []route{
		{"POST", "/v1/admin/auth/login", false, s.login, false, false},
		{"POST", "/v1/admin/auth/refresh", false, s.refresh, false, false},
		{"GET", "/v1/admin/integration-catalog", true, s.catalogList, false, false},
		{"GET", "/v1/admin/integration-catalog/{key}", true, s.catalogGet, false, false},
		{"POST", "/v1/admin/integration-catalog/{key}/install", true, s.install, false, false},
		{"GET", "/v1/admin/integrations", true, s.integrationsList, false, false},
		{"GET", "/v1/admin/integrations/{id}", true, s.integrationGet, false, false},
		{"PATCH", "/v1/admin/integrations/{id}", true, s.integrationPatch, false, false},
		{"DELETE", "/v1/admin/integrations/{id}", true, s.integrationDelete, false, false},
		{"GET", "/v1/admin/integrations/{id}/revisions", true, s.revisionsList, false, false},
		{"GET", "/v1/admin/integrations/{id}/dlq", true, s.dlqList, false, false},
		{"GET", "/v1/admin/integrations/{id}/dlq/{item}", true, s.dlqGet, false, false},
		{"POST", "/v1/admin/integrations/{id}/dlq/replay", true, s.dlqReplay, false, false},
		{"POST", "/v1/admin/sources", true, s.sourceCreate, false, false},
		{"GET", "/v1/admin/sources", true, s.sourcesList, false, false},
		{"POST", "/v1/admin/users", true, s.userCreate, true, false},
		{"GET", "/v1/admin/users", true, s.usersList, true, false},
		{"DELETE", "/v1/admin/users/{id}", true, s.userDelete, true, false},
		{"PATCH", "/v1/admin/users/{id}", true, s.userPatch, true, false},
		{method: "POST", path: "/v1/admin/users/me/password", auth: true, h: s.passwordChange, anyRole: true},
		{"GET", "/v1/admin/openapi.json", false, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openAPI)
			return nil
		}, false, false},
	}
}

// liveRecheck is how often an open live stream verifies its token again.
var liveRecheck = 5 * time.Second

// otherRoutes are the endpoints that are not JSON handlers: the live
// stream, the page, metrics and health (and the ingest listener's).
var otherRoutes = []string{"GET /v1/admin/live", "GET /metrics", "GET /healthz", "GET /readyz", "POST /v1/events", "POST /v1/batch"}

// adminHandler routes the management listener.
func (s *Service) adminHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.path, s.wrapRoute(rt))
	}
	liveToken := func(r *http.Request) string {
		tok := bearer(r)
		if tok == "" {
			tok = r.URL.Query().Get("access_token")
		}
		return tok
	}
	liveHandler := s.hub.Handler(func(r *http.Request) error {
		_, err := s.auth.Verify(liveToken(r))
		if errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrExpiredToken) {
			// The codes and messages of every other call: an expired
			// token is EXPIRED_TOKEN here too (DESIGN §6).
			ae := tokenError(err)
			return codedError{ae.Code, ae.Message}
		}
		return err
	})
	mux.Handle("GET /v1/admin/live", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The stream ends when the token it was opened with expires: a
		// token that no longer opens anything does not keep watching.
		// It also ends within liveRecheck of the session being revoked (a
		// reused refresh token signs every session of the user out) or the
		// user deleted: the token is verified again meanwhile.
		tok := liveToken(r)
		if _, err := s.auth.Verify(tok); err == nil && !isWebSocketUpgrade(r) {
			// A plain GET (curl, a link) is told what the endpoint is, in
			// the error body of every other call, not the WebSocket
			// library's plain text.
			w.Header().Set("Upgrade", "websocket")
			writeError(w, errorf(http.StatusUpgradeRequired, "UPGRADE_REQUIRED", "GET /v1/admin/live is a WebSocket: open it with a WebSocket client (Connection: Upgrade, Upgrade: websocket)"))
			return
		}
		if c, err := s.auth.Verify(tok); err == nil && !c.ExpiresAt.IsZero() {
			ctx, cancel := context.WithTimeout(r.Context(), c.ExpiresAt.Sub(s.cfg.Now()))
			defer cancel()
			r = r.WithContext(ctx)
			go func() {
				t := time.NewTicker(liveRecheck)
				defer t.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
						if _, err := s.auth.Verify(tok); errors.Is(err, auth.ErrInvalidToken) || errors.Is(err, auth.ErrExpiredToken) {
							cancel()
							return
						}
					}
				}
			}()
		}
		liveHandler.ServeHTTP(w, r)
	}))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.pipe.Err(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "delivery stopped"})
			return
		}
		if s.kafka != nil {
			if why := s.kafka.config.otherOwner(); why != "" {
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "another owner", "code": codeAnotherOwner, "reason": why})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /{$}", live.Page())
	mux.Handle("GET /app.js", live.Page())
	mux.Handle("GET /app.css", live.Page())
	mux.Handle("GET /favicon.ico", live.Page()) // 204: a browser asks at every load
	mux.Handle("/", notFoundOrNotAllowed(mux, map[string]bool{"/": true}, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "NOT_FOUND", "no endpoint %s %s", r.Method, r.URL.Path))
	}))
	return mux
}

// codedError is an error with the API code the live handler answers.
type codedError struct{ code, msg string }

func (e codedError) Error() string { return e.msg }
func (e codedError) Code() string  { return e.code }

// isWebSocketUpgrade reports whether r asks for a WebSocket.
func isWebSocketUpgrade(r *http.Request) bool {
	hasToken := func(h, token string) bool {
		for _, v := range r.Header.Values(h) {
			for _, t := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(t), token) {
					return true
				}
			}
		}
		return false
	}
	return hasToken("Connection", "upgrade") && hasToken("Upgrade", "websocket")
}

// adminBodyTimeout bounds the reading of a management request's body.
var adminBodyTimeout = 30 * time.Second

// wrapRoute is wrap with the route's role check: a caller who is not an
// owner may only read, and not a route that is the owner's alone.
func (s *Service) wrapRoute(rt route) http.Handler {
	h := rt.h
	if rt.auth && !rt.anyRole && (rt.ownerOnly || rt.method != http.MethodGet) {
		h = func(w http.ResponseWriter, r *http.Request) error {
			if c := claims(r); c == nil || c.Role != roleOwner {
				return errorf(http.StatusForbidden, "FORBIDDEN", "%s %s needs the owner role; this user's role (%s) may only read", r.Method, r.URL.Path, roleOf(c))
			}
			return rt.h(w, r)
		}
	}
	return s.wrap(h, rt.auth)
}

func roleOf(c *auth.Claims) string {
	if c == nil || c.Role == "" {
		return "none"
	}
	return c.Role
}

// wrap turns a handlerFunc into a handler: it checks the Bearer token and
// the caller's rate limit when asked, and writes errors.
func (s *Service) wrap(h handlerFunc, needAuth bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A body that trickles in (a byte now and then) must not hold the
		// connection forever: the server has no ReadTimeout, which would
		// also end the live stream's hijacked connections.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(adminBodyTimeout))
		if needAuth {
			c, err := s.auth.Verify(bearer(r))
			if err != nil {
				if !errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrExpiredToken) {
					s.log.Error("token check failed", "error", err.Error())
					writeError(w, err) // the store failed: a 500, not the caller's fault
					return
				}
				writeError(w, tokenError(err))
				return
			}
			if ok, wait := s.limiter.Allow(c.UserID); !ok {
				writeError(w, &apiError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", Message: "too many requests: at most 100 a minute per user", RetryAfter: wait})
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, c))
		}
		if err := h(w, r); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
			}
			writeError(w, err)
		}
	})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func tokenError(err error) *apiError {
	if errors.Is(err, auth.ErrExpiredToken) {
		return errorf(http.StatusUnauthorized, "EXPIRED_TOKEN", "the access token has expired: refresh it (POST /v1/admin/auth/refresh)")
	}
	return errorf(http.StatusUnauthorized, "INVALID_TOKEN", "a valid access token is required (Authorization: Bearer <access_token> from POST /v1/admin/auth/login)")
}

type tokensView struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
}

func (s *Service) login(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	// Per address too: each login costs a bcrypt comparison, and ever new
	// emails would each get a fresh allowance.
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	if ok, wait := s.limiter.Allow("login-addr:" + addr); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", Message: "too many login attempts", RetryAfter: wait}
	}
	if ok, wait := s.limiter.Allow("login:" + strings.ToLower(body.Email)); !ok {
		return &apiError{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", Message: "too many login attempts", RetryAfter: wait}
	}
	t, err := s.auth.Login(body.Email, body.Password)
	var le *auth.LockedError
	switch {
	case errors.As(err, &le):
		return &apiError{Status: http.StatusTooManyRequests, Code: "ACCOUNT_LOCKED", Message: "too many failed logins: the account is locked until " + le.Until.UTC().Format(time.RFC3339), RetryAfter: le.Until.Sub(s.cfg.Now())}
	case errors.Is(err, auth.ErrLocked):
		return &apiError{Status: http.StatusTooManyRequests, Code: "ACCOUNT_LOCKED", Message: "too many failed logins: the account is locked for 15 minutes", RetryAfter: 15 * time.Minute}
	case errors.Is(err, auth.ErrInvalidCredentials):
		s.metrics.logins.WithLabelValues("refused").Inc()
		return errorf(http.StatusUnauthorized, "INVALID_CREDENTIALS", "wrong email or password")
	case err != nil:
		return err
	}
	s.metrics.logins.WithLabelValues("ok").Inc()
	writeJSON(w, http.StatusOK, tokensView{t.AccessToken, t.RefreshToken, "Bearer", t.ExpiresIn})
	return nil
}

func (s *Service) refresh(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	t, err := s.auth.Refresh(body.RefreshToken)
	switch {
	case errors.Is(err, auth.ErrExpiredToken):
		return errorf(http.StatusUnauthorized, "EXPIRED_TOKEN", "the refresh token has expired: log in again")
	case errors.Is(err, auth.ErrRefreshReuse):
		return errorf(http.StatusUnauthorized, "INVALID_TOKEN", "refresh token reuse detected: every session of this user was signed out; log in again")
	case errors.Is(err, auth.ErrInvalidToken):
		return errorf(http.StatusUnauthorized, "INVALID_TOKEN", "the refresh token is not valid: log in again")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusOK, tokensView{t.AccessToken, t.RefreshToken, "Bearer", t.ExpiresIn})
	return nil
}

type sourceView struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	PipelineKey string    `json:"pipeline_key"`
	SecretKey   string    `json:"secret_key,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// sourceCreate answers POST /v1/admin/sources: the secret key is shown in
// this answer only.
func (s *Service) sourceCreate(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Name string `json:"name"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Name) == "" {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_NAME", Message: "name is required", Fields: []string{"name"}}
	}
	src := &store.Source{Name: body.Name, CreatedAt: s.cfg.Now().UTC()}
	if err := s.st.CreateSource(src); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "NAME_TAKEN", "a source named %q exists", body.Name)
		}
		return err
	}
	writeJSON(w, http.StatusCreated, sourceView{src.ID, src.Name, src.PipelineKey, src.SecretKey, src.CreatedAt})
	return nil
}

func (s *Service) sourcesList(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := paging(r)
	if err != nil {
		return err
	}
	all, err := s.st.ListSources()
	if err != nil {
		return err
	}
	views := make([]sourceView, len(all))
	for i, src := range all {
		views[i] = sourceView{ID: src.ID, Name: src.Name, PipelineKey: src.PipelineKey, CreatedAt: src.CreatedAt}
	}
	p, err := pageOf(views, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
