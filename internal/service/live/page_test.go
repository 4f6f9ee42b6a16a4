package live

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

func TestPageServesFiles(t *testing.T) {
	srv := httptest.NewServer(Page())
	defer srv.Close()
	for path, want := range map[string]struct{ file, ctype string }{
		"/":           {"page/index.html", "text/html; charset=utf-8"},
		"/index.html": {"page/index.html", "text/html; charset=utf-8"},
		"/app.js":     {"page/app.js", "text/javascript; charset=utf-8"},
		"/app.css":    {"page/app.css", "text/css; charset=utf-8"},
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		file, _ := pageFS.ReadFile(want.file)
		if resp.StatusCode != 200 || !bytes.Equal(body, file) || len(file) == 0 {
			t.Errorf("GET %s: %d, %d bytes; want 200 and %s", path, resp.StatusCode, len(body), want.file)
		}
		if got := resp.Header.Get("Content-Type"); got != want.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want.ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q allows inline code", path, csp)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", path, got)
		}

		// The ETag lets a browser revalidate cheaply.
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, resp.StatusCode)
		}
	}
}

func TestPageOtherRequests(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", 404},
		{"GET", "/page/app.js", 404},
		{"GET", "/favicon.ico", 204},
		{"HEAD", "/", 200},
		{"POST", "/", 405},
		{"DELETE", "/app.js", 405},
	} {
		w := httptest.NewRecorder()
		Page().ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		if w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
		if w.Header().Get("Content-Security-Policy") != ContentSecurityPolicy {
			t.Errorf("%s %s: no CSP", tc.method, tc.path)
		}
		if tc.method == "HEAD" && w.Body.Len() != 0 {
			t.Errorf("HEAD %s has a body", tc.path)
		}
	}
}

// Event data is hostile: the script must never parse it as HTML.
func TestPageScriptNeverParsesHTML(t *testing.T) {
	js, err := pageFS.ReadFile("page/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "createContextualFragment", "DOMParser", "eval(", "new Function", "setAttribute('on", `setAttribute("on`, "srcdoc"} {
		if bytes.Contains(js, []byte(bad)) {
			t.Errorf("app.js uses %s", bad)
		}
	}
	// setTimeout and setInterval take only functions, never strings.
	if m := regexp.MustCompile(`set(Timeout|Interval)\(\s*['"` + "`" + `]`).Find(js); m != nil {
		t.Errorf("app.js passes a string to %s", m)
	}
}

// The CSP allows no inline script or style: the HTML must have none.
func TestPageHTMLHasNothingInline(t *testing.T) {
	html, err := pageFS.ReadFile("page/index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`, `https?://`} {
		if m := regexp.MustCompile(`(?i)` + re).Find(html); m != nil {
			t.Errorf("index.html has %q: blocked by the CSP, or external", m)
		}
	}
	for _, hook := range []string{`id="login"`, `id="email"`, `id="password"`, `id="integration"`, `id="rows"`, `value="">All integrations<`} {
		if !bytes.Contains(html, []byte(hook)) {
			t.Errorf("index.html lacks %s", hook)
		}
	}
	js, _ := pageFS.ReadFile("page/app.js")
	css, _ := pageFS.ReadFile("page/app.css")
	for name, b := range map[string][]byte{"app.js": js, "app.css": css} {
		if m := regexp.MustCompile(`https?://|@import|url\(`).Find(b); m != nil {
			t.Errorf("%s refers to %q: the page loads nothing from elsewhere", name, m)
		}
	}
}

// The script parses, where node is at hand (the browser test runs it).
func TestPageScriptSyntax(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	js, _ := pageFS.ReadFile("page/app.js")
	cmd := exec.Command(node, "--check", "-")
	cmd.Stdin = bytes.NewReader(js)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("node --check app.js: %v\n%s", err, out)
	}
}
