package service_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blueprint-engine/blueprint/internal/service"
)

// loginAs logs email in and returns its access and refresh tokens.
func (h *harness) loginAs(email, password string) (access, refresh string) {
	h.t.Helper()
	st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": email, "password": password})
	if st != 200 {
		h.t.Fatalf("login %s: %d %v", email, st, out)
	}
	return out["access_token"].(string), out["refresh_token"].(string)
}

// openLive opens the live stream with tok.
func (h *harness) openLive(ctx context.Context, tok string) *websocket.Conn {
	h.t.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.admin, "http")+"/v1/admin/live",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// waitClosed reads c until the server closes it and fails when that takes
// longer than within.
func waitClosed(t *testing.T, ctx context.Context, c *websocket.Conn, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the stream stayed open after the session was revoked")
			}
			break
		}
	}
	if d := time.Since(start); d > within {
		t.Errorf("the stream closed %s after the revocation", d)
	}
}

// TestServeUserPatch: PATCH /v1/admin/users/{id} changes a user's role or
// password (owner only), with POST's checks; an owner cannot demote
// themself; a change ends every session of the user (access and refresh
// tokens, an open live stream within the recheck), and nothing answered
// or logged holds a password.
func TestServeUserPatch(t *testing.T) {
	defer service.SetLiveRecheck(50 * time.Millisecond)()
	var logs lockedBuf
	h := startWith(t, options{fastOwner: true, logger: bufLogger(&logs)})
	owner := h.login()
	const viewerEmail, viewerPass, newPass = "ops@example.com", "viewer-pass-1", "rotated-Pass-7c1e"
	st, v, _ := h.call("POST", "/v1/admin/users", owner, map[string]string{"email": viewerEmail, "password": viewerPass, "role": "viewer"})
	if st != 201 {
		t.Fatalf("create viewer: %d %v", st, v)
	}
	vid := v["id"].(string)
	_, me, _ := h.call("GET", "/v1/admin/users", owner, nil)
	ownerID := me["data"].([]any)[0].(map[string]any)["id"].(string)
	viewer, viewerRefresh := h.loginAs(viewerEmail, viewerPass)

	for _, c := range []struct {
		name   string
		path   string
		token  string
		body   any
		status int
		code   string
		role   string // the role answered, on 200
	}{
		{"viewer", "/v1/admin/users/" + vid, viewer, map[string]string{"role": "owner"}, 403, "FORBIDDEN", ""},
		{"viewer, own password", "/v1/admin/users/" + vid, viewer, map[string]string{"password": newPass}, 403, "FORBIDDEN", ""},
		{"no token", "/v1/admin/users/" + vid, "", map[string]string{"role": "owner"}, 401, "INVALID_TOKEN", ""},
		{"unknown user", "/v1/admin/users/usr_nope", owner, map[string]string{"role": "owner"}, 404, "NOT_FOUND", ""},
		{"unknown field", "/v1/admin/users/" + vid, owner, `{"email":"x@example.com"}`, 400, "UNKNOWN_FIELD", ""},
		{"wrong type", "/v1/admin/users/" + vid, owner, `{"role":1}`, 400, "INVALID_JSON", ""},
		{"unknown role", "/v1/admin/users/" + vid, owner, map[string]string{"role": "admin"}, 422, "INVALID_ROLE", ""},
		{"empty role", "/v1/admin/users/" + vid, owner, map[string]string{"role": ""}, 422, "INVALID_ROLE", ""},
		{"short password", "/v1/admin/users/" + vid, owner, map[string]string{"password": "short"}, 422, "INVALID_PASSWORD", ""},
		{"password over 72 bytes", "/v1/admin/users/" + vid, owner, map[string]string{"password": strings.Repeat("p", 73)}, 422, "INVALID_PASSWORD", ""},
		{"demote self", "/v1/admin/users/" + ownerID, owner, map[string]string{"role": "viewer"}, 409, "CANNOT_DEMOTE_SELF", ""},
		{"self, same role", "/v1/admin/users/" + ownerID, owner, map[string]string{"role": "owner"}, 200, "", "owner"},
		{"nothing", "/v1/admin/users/" + vid, owner, `{}`, 200, "", "viewer"},
		{"same role", "/v1/admin/users/" + vid, owner, map[string]string{"role": "viewer"}, 200, "", "viewer"},
	} {
		st, out, _ := h.call("PATCH", c.path, c.token, c.body)
		if st != c.status || errCode(out) != c.code || (st == 200 && out["role"] != c.role) {
			t.Errorf("%s: %d %v, want %d %s", c.name, st, out, c.status, c.code)
		}
		if st == 422 {
			if f, _ := out["error"].(map[string]any)["fields"].([]any); len(f) != 1 {
				t.Errorf("%s: 422 without its field: %v", c.name, out)
			}
		}
	}
	// Nothing above changed the viewer: its session is still open.
	if st, out, _ := h.call("GET", "/v1/admin/integrations", viewer, nil); st != 200 {
		t.Fatalf("a refused or empty PATCH ended the viewer's session: %d %v", st, out)
	}

	// A role change: the viewer becomes an owner, and its sessions end.
	st, out, _ := h.call("PATCH", "/v1/admin/users/"+vid, owner, map[string]string{"role": "owner"})
	if st != 200 || out["id"] != vid || out["email"] != viewerEmail || out["role"] != "owner" || out["created_at"] == nil || len(out) != 4 {
		t.Fatalf("promote: %d %v", st, out)
	}
	if st, out, _ := h.call("GET", "/v1/admin/integrations", viewer, nil); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("the promoted user's old access token: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": viewerRefresh}); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("the promoted user's old refresh token: %d %v", st, out)
	}
	promoted, _ := h.loginAs(viewerEmail, viewerPass)
	if st, out, _ := h.call("GET", "/v1/admin/users", promoted, nil); st != 200 {
		t.Errorf("the promoted user lists users: %d %v", st, out)
	}

	// A password change: the old password, tokens and live stream end.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, refresh := h.loginAs(viewerEmail, viewerPass)
	live := h.openLive(ctx, promoted)
	defer live.CloseNow()
	st, out, _ = h.call("PATCH", "/v1/admin/users/"+vid, owner, map[string]string{"password": newPass})
	if st != 200 || out["role"] != "owner" || len(out) != 4 {
		t.Fatalf("change password: %d %v", st, out)
	}
	waitClosed(t, ctx, live, 5*time.Second)
	if st, out, _ := h.call("GET", "/v1/admin/integrations", promoted, nil); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("old access token after a password change: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("old refresh token after a password change: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": viewerEmail, "password": viewerPass}); st != 401 || errCode(out) != "INVALID_CREDENTIALS" {
		t.Errorf("login with the old password: %d %v", st, out)
	}
	other, _ := h.loginAs(viewerEmail, newPass)

	// Another owner may demote the first one (the caller stays an owner);
	// the demoted owner's own session ended, and a demoted caller can no
	// longer change users.
	st, out, _ = h.call("PATCH", "/v1/admin/users/"+ownerID, other, map[string]string{"role": "viewer"})
	if st != 200 || out["role"] != "viewer" {
		t.Fatalf("demote the first owner: %d %v", st, out)
	}
	if st, out, _ := h.call("GET", "/v1/admin/users", owner, nil); st != 401 {
		t.Errorf("the demoted owner's old token: %d %v", st, out)
	}
	demoted := h.login()
	if st, out, _ := h.call("PATCH", "/v1/admin/users/"+vid, demoted, map[string]string{"role": "viewer"}); st != 403 || errCode(out) != "FORBIDDEN" {
		t.Errorf("a demoted owner demotes the last owner: %d %v", st, out)
	}

	for _, p := range []string{viewerPass, newPass} {
		if strings.Contains(logs.String(), p) {
			t.Errorf("a password is in the log")
		}
	}
}

// TestServeOwnPasswordChange: POST /v1/admin/users/me/password is any
// user's (a viewer's too): the current password must be right (401
// INVALID_CREDENTIALS, counted toward the login lock), the new one meets
// the policy (422 INVALID_PASSWORD), and on 204 every session of the user
// ends, the caller's included; the old password no longer logs in.
func TestServeOwnPasswordChange(t *testing.T) {
	defer service.SetLiveRecheck(50 * time.Millisecond)()
	var logs lockedBuf
	h := startWith(t, options{fastOwner: true, logger: bufLogger(&logs)})
	owner := h.login()
	const viewerEmail, viewerPass, newPass = "viewer@example.com", "viewer-pass-1", "my-new-Pass-4f2a"
	if st, out, _ := h.call("POST", "/v1/admin/users", owner, map[string]string{"email": viewerEmail, "password": viewerPass}); st != 201 {
		t.Fatalf("create viewer: %d %v", st, out)
	}
	viewer, refresh := h.loginAs(viewerEmail, viewerPass)
	second, _ := h.loginAs(viewerEmail, viewerPass)
	const path = "/v1/admin/users/me/password"
	for _, c := range []struct {
		name   string
		token  string
		body   any
		status int
		code   string
	}{
		{"no token", "", map[string]string{"current_password": viewerPass, "new_password": newPass}, 401, "INVALID_TOKEN"},
		{"unknown field", viewer, map[string]string{"current_password": viewerPass, "password": newPass}, 400, "UNKNOWN_FIELD"},
		{"not JSON", viewer, `{"current_password":`, 400, "INVALID_JSON"},
		{"new too short", viewer, map[string]string{"current_password": viewerPass, "new_password": "short"}, 422, "INVALID_PASSWORD"},
		{"new missing", viewer, map[string]string{"current_password": viewerPass}, 422, "INVALID_PASSWORD"},
		{"wrong current", viewer, map[string]string{"current_password": "wrong-pass-1", "new_password": newPass}, 401, "INVALID_CREDENTIALS"},
	} {
		st, out, _ := h.call("POST", path, c.token, c.body)
		if st != c.status || errCode(out) != c.code {
			t.Errorf("%s: %d %v, want %d %s", c.name, st, out, c.status, c.code)
		}
		if st == 422 {
			if f, _ := out["error"].(map[string]any)["fields"].([]any); len(f) != 1 || f[0] != "new_password" {
				t.Errorf("%s: 422 fields %v", c.name, out)
			}
		}
	}
	// A wrong current password ends no session.
	if st, out, _ := h.call("GET", "/v1/admin/integrations", second, nil); st != 200 {
		t.Fatalf("a refused change ended a session: %d %v", st, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	live := h.openLive(ctx, second)
	defer live.CloseNow()
	st, out, _ := h.call("POST", path, viewer, map[string]string{"current_password": viewerPass, "new_password": newPass})
	if st != 204 {
		t.Fatalf("change: %d %v", st, out)
	}
	waitClosed(t, ctx, live, 5*time.Second)
	for _, tok := range []string{viewer, second} {
		if st, out, _ := h.call("GET", "/v1/admin/integrations", tok, nil); st != 401 || errCode(out) != "INVALID_TOKEN" {
			t.Errorf("a session after the change: %d %v", st, out)
		}
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh}); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("a refresh token after the change: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": viewerEmail, "password": viewerPass}); st != 401 {
		t.Errorf("the old password: %d %v", st, out)
	}
	h.loginAs(viewerEmail, newPass)

	// Wrong current passwords count toward the lock, as failed logins do:
	// the fifth is still 401, then the account is locked (429, login too).
	for i := range 5 {
		st, out, _ := h.call("POST", path, owner, map[string]string{"current_password": "wrong-" + strconv.Itoa(i), "new_password": newPass})
		if st != 401 || errCode(out) != "INVALID_CREDENTIALS" {
			t.Fatalf("wrong current password %d: %d %v", i, st, out)
		}
	}
	if st, out, hdr := h.call("POST", path, owner, map[string]string{"current_password": adminPass, "new_password": newPass}); st != 429 || errCode(out) != "ACCOUNT_LOCKED" || hdr.Get("Retry-After") == "" {
		t.Errorf("change on a locked account: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass}); st != 429 || errCode(out) != "ACCOUNT_LOCKED" {
		t.Errorf("login after five wrong current passwords: %d %v", st, out)
	}
	for _, p := range []string{viewerPass, newPass, adminPass} {
		if strings.Contains(logs.String(), p) {
			t.Errorf("a password is in the log")
		}
	}
}
