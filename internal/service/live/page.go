package live

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed page/index.html page/app.js page/app.css
var pageFS embed.FS

// ContentSecurityPolicy is the policy Page sends with every answer: the
// page runs only its own script and style files (nothing inline, nothing
// from elsewhere) and talks only to its own origin, over HTTP or WebSocket.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// assets maps a request path to the embedded file it serves.
var assets = func() map[string]asset {
	m := make(map[string]asset)
	for path, f := range map[string]struct{ file, ctype string }{
		"/":           {"page/index.html", "text/html; charset=utf-8"},
		"/index.html": {"page/index.html", "text/html; charset=utf-8"},
		"/app.js":     {"page/app.js", "text/javascript; charset=utf-8"},
		"/app.css":    {"page/app.css", "text/css; charset=utf-8"},
	} {
		b, err := pageFS.ReadFile(f.file)
		if err != nil {
			panic(err) // the files are embedded: cannot happen
		}
		sum := sha256.Sum256(b)
		m[path] = asset{body: b, contentType: f.ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return m
}()

// Page serves the embedded single-page app at "/" ("/", "/index.html",
// "/app.js", "/app.css"; "/favicon.ico" is 204 and any other path 404), with a strict
// Content-Security-Policy. Mount it at "/" of the admin listener; the page
// calls /v1/admin/auth/login, /v1/admin/auth/refresh,
// /v1/admin/integrations and the WebSocket /v1/admin/live on the same origin.
func Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/favicon.ico" { // none: answer without a console error
			w.WriteHeader(http.StatusNoContent)
			return
		}
		a, ok := assets[r.URL.Path]
		if !ok {
			writeError(w, http.StatusNotFound, "NOT_FOUND", "no such page")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET")
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
