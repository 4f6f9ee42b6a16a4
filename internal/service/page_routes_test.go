package service_test

import (
	"net/http"
	"testing"

	"github.com/blueprint-engine/blueprint/internal/service/live"
)

// TestServeAdminPageRoutes: the admin listener serves the live page's
// files with its CSP, answers the favicon a browser asks for at every load
// with 204 (a 404 is a console error on the page), and 404s other paths.
func TestServeAdminPageRoutes(t *testing.T) {
	h := startWith(t, options{fastOwner: true})
	for _, c := range []struct {
		path   string
		status int
	}{
		{"/", 200}, {"/app.js", 200}, {"/app.css", 200}, {"/favicon.ico", 204}, {"/nope", 404},
	} {
		resp, err := http.Get(h.admin + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s: %d, want %d", c.path, resp.StatusCode, c.status)
		}
		if c.status < 300 && resp.Header.Get("Content-Security-Policy") != live.ContentSecurityPolicy {
			t.Errorf("GET %s: CSP %q", c.path, resp.Header.Get("Content-Security-Policy"))
		}
	}
}
