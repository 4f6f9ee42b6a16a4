package service_test

import (
	"strings"
	"testing"
)

// TestServeViewerRole: DESIGN §6's 403. An owner creates users (owner or
// viewer); a viewer may read everything an owner reads but change nothing
// and not see users: 403 FORBIDDEN. A deleted user's tokens stop working;
// an owner cannot delete themself, so an owner always remains.
func TestServeViewerRole(t *testing.T) {
	h := start(t)
	owner := h.login()
	id := installButton(t, h, owner, "Button", apiKey)
	const viewerEmail, viewerPass = "viewer@example.com", "viewer-pass-1"
	st, u, _ := h.call("POST", "/v1/admin/users", owner, map[string]string{"email": viewerEmail, "password": viewerPass, "role": "viewer"})
	if st != 201 || u["role"] != "viewer" || u["email"] != viewerEmail || !strings.HasPrefix(u["id"].(string), "usr_") || u["password"] != nil || u["password_hash"] != nil {
		t.Fatalf("create viewer: %d %v", st, u)
	}
	for _, c := range []struct {
		body   map[string]string
		status int
		code   string
	}{
		{map[string]string{"email": "VIEWER@example.com", "password": viewerPass}, 409, "EMAIL_TAKEN"},
		{map[string]string{"email": "x@example.com", "password": viewerPass, "role": "admin"}, 422, "INVALID_ROLE"},
		{map[string]string{"email": "x@example.com", "password": "short"}, 422, "INVALID_PASSWORD"},
		{map[string]string{"email": "not-an-address", "password": viewerPass}, 422, "INVALID_EMAIL"},
	} {
		if st, out, _ := h.call("POST", "/v1/admin/users", owner, c.body); st != c.status || errCode(out) != c.code {
			t.Errorf("create %v: %d %v, want %d %s", c.body, st, out, c.status, c.code)
		}
	}
	_, lg, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": viewerEmail, "password": viewerPass})
	viewer, _ := lg["access_token"].(string)
	if viewer == "" {
		t.Fatalf("viewer login: %v", lg)
	}
	for _, p := range []string{"/v1/admin/integration-catalog", "/v1/admin/integrations", "/v1/admin/integrations/" + id,
		"/v1/admin/integrations/" + id + "/revisions", "/v1/admin/integrations/" + id + "/dlq", "/v1/admin/sources"} {
		if st, out, _ := h.call("GET", p, viewer, nil); st != 200 {
			t.Errorf("viewer GET %s: %d %v", p, st, out)
		}
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/v1/admin/integration-catalog/button/install", map[string]any{"name": "B2", "config": map[string]any{"application_id": "app-abc123", "api_key": apiKey}}},
		{"PATCH", "/v1/admin/integrations/" + id, map[string]any{"enabled": false}},
		{"DELETE", "/v1/admin/integrations/" + id, nil},
		{"POST", "/v1/admin/integrations/" + id + "/dlq/replay", map[string]any{"all": true}},
		{"POST", "/v1/admin/sources", map[string]string{"name": "web"}},
		{"GET", "/v1/admin/users", nil},
		{"POST", "/v1/admin/users", map[string]string{"email": "y@example.com", "password": viewerPass, "role": "owner"}},
		{"DELETE", "/v1/admin/users/" + u["id"].(string), nil},
	} {
		if st, out, _ := h.call(c.method, c.path, viewer, c.body); st != 403 || errCode(out) != "FORBIDDEN" {
			t.Errorf("viewer %s %s: %d %v, want 403 FORBIDDEN", c.method, c.path, st, out)
		}
	}
	if _, it, _ := h.call("GET", "/v1/admin/integrations/"+id, owner, nil); it["enabled"] != true {
		t.Fatalf("a refused PATCH changed the integration: %v", it)
	}
	st, list, _ := h.call("GET", "/v1/admin/users?limit=1", owner, nil)
	if data, _ := list["data"].([]any); st != 200 || len(data) != 1 || list["has_more"] != true || list["next_cursor"] == nil ||
		data[0].(map[string]any)["role"] != "owner" {
		t.Fatalf("users, first page: %d %v", st, list)
	}
	_, me, _ := h.call("GET", "/v1/admin/users", owner, nil)
	ownerID := me["data"].([]any)[0].(map[string]any)["id"].(string)
	if st, out, _ := h.call("DELETE", "/v1/admin/users/"+ownerID, owner, nil); st != 409 || errCode(out) != "CANNOT_DELETE_SELF" {
		t.Errorf("owner deletes themself: %d %v", st, out)
	}
	if st, out, _ := h.call("DELETE", "/v1/admin/users/"+u["id"].(string), owner, nil); st != 204 {
		t.Fatalf("delete viewer: %d %v", st, out)
	}
	if st, out, _ := h.call("GET", "/v1/admin/integrations", viewer, nil); st != 401 || errCode(out) != "INVALID_TOKEN" {
		t.Errorf("a deleted user's token: %d %v", st, out)
	}
	if st, out, _ := h.call("POST", "/v1/admin/auth/refresh", "", map[string]any{"refresh_token": lg["refresh_token"]}); st != 401 {
		t.Errorf("a deleted user's refresh token: %d %v", st, out)
	}
	if st, out, _ := h.call("DELETE", "/v1/admin/users/"+u["id"].(string), owner, nil); st != 404 || errCode(out) != "NOT_FOUND" {
		t.Errorf("delete again: %d %v", st, out)
	}
}
