package send_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// A hostile token endpoint answering an error with a huge body, forged
// log lines and terminal escapes: the attempt's message (logs, metrics,
// dead letters) is one short printable line, as a vendor's is.
func TestAdvTokenEndpointHugeErrorIsClipped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(502)
		io.WriteString(w, "upstream\n{\"level\":\"INFO\",\"msg\":\"forged\"}\x1b[2J"+strings.Repeat("A", 900<<10))
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	in, req := oauthOrder(t, oauthBlueprint, "csecret-123")
	a := send.New(send.Options{Client: &http.Client{Transport: rewrite{to}}}).Do(context.Background(), in, "o", req)
	if a.Outcome != runtime.Retry {
		t.Fatalf("%v %q", a.Outcome, a.Message)
	}
	for what, m := range map[string]string{"Message": a.Message, "Err": a.Err.Error()} {
		if len(m) > 400 {
			t.Errorf("%s is %d bytes long", what, len(m))
		}
		if strings.IndexFunc(m, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			t.Errorf("%s holds control characters: %q", what, m)
		}
		if !strings.Contains(m, "502") {
			t.Errorf("%s does not say the status: %q", what, m)
		}
	}
}

// Auth is always secret: an OAuth client secret rendered from a config
// key that is not of type secret (or with literal text around one) is
// scrubbed from what a token endpoint echoes, as a Basic password is.
func TestAdvOAuthClientSecretFromPlainConfigIsScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, pass, _ := r.BasicAuth()
		io.WriteString(w, "upstream failed for "+r.Header.Get("Authorization")+" (secret "+pass+")")
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	src := strings.Replace(oauthBlueprint, "client_secret: {type: secret,", "client_secret: {type: string,", 1)
	const secret = "plainclientsecret"
	in, req := oauthOrder(t, src, secret)
	a := send.New(send.Options{Client: &http.Client{Transport: rewrite{to}}}).Do(context.Background(), in, "o", req)
	sent := base64.StdEncoding.EncodeToString([]byte("cid:" + secret))
	if a.Outcome != runtime.Retry || strings.Contains(a.Message, secret) || strings.Contains(a.Message, sent[4:]) {
		t.Fatalf("the echoed client secret shows: %v %q", a.Outcome, a.Message)
	}
}

// A token endpoint redirecting elsewhere: the client credentials are not
// carried there (redirects are never followed), and the attempt is
// retried.
func TestAdvTokenEndpointRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	in, req := oauthOrder(t, oauthBlueprint, "csecret-123")
	s := send.New(send.Options{VendorURL: to, AllowPrivateAddresses: true})
	a := s.Do(context.Background(), in, "o", req)
	if a.Outcome != runtime.Retry || hits.Load() != 0 || !strings.Contains(a.Message, "307") {
		t.Fatalf("%v %q, %d hits elsewhere", a.Outcome, a.Message, hits.Load())
	}
}
