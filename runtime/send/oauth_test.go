package send_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

const oauthBlueprint = `key: oauthdemo
version: 1.0.0
name: OAuth demo
category: other
status: alpha
config:
  client_id: {type: string, label: Client ID, required: true}
  client_secret: {type: secret, label: Client secret, required: true}
hosts: [api.example.com, auth.example.com]
requests:
  collect:
    method: POST
    url: https://api.example.com/v1/collect
    auth:
      type: oauth2_client_credentials
      token_url: https://auth.example.com/oauth/token
      client_id: "{config.client_id}"
      client_secret: "{config.client_secret}"
      scopes: [events.write]
    body:
      id: {from: properties.id, type: id, required: true}
events:
  Order Completed: {vendor_event: purchase, request: collect}
`

// rewrite sends every request to srv, keeping its path: the test's
// stand-in for DNS.
type rewrite struct{ to *url.URL }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = r.to.Scheme, r.to.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestOAuth2ClientCredentials(t *testing.T) {
	var tokenCalls atomic.Int32
	var tokenStatus atomic.Int32
	tokenStatus.Store(200)
	var lastAuth atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/token":
			tokenCalls.Add(1)
			user, pass, _ := r.BasicAuth()
			r.ParseForm()
			if user != "cid" || pass != "csecret-123" || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("scope") != "events.write" {
				w.WriteHeader(401)
				io.WriteString(w, `{"error":"invalid_client"}`)
				return
			}
			if st := int(tokenStatus.Load()); st != 200 {
				w.WriteHeader(st)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-live-777","token_type":"bearer","expires_in":3600}`)
		default:
			lastAuth.Store(r.Header.Get("Authorization"))
			if strings.Contains(r.URL.RawQuery, "echo") {
				w.WriteHeader(400)
				io.WriteString(w, "bad request; you sent Authorization: "+r.Header.Get("Authorization"))
				return
			}
			w.WriteHeader(200)
		}
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	client := &http.Client{Transport: rewrite{to}}

	bp, ds := engine.Compile("oauth.yaml", []byte(oauthBlueprint))
	if bp == nil {
		t.Fatal(ds)
	}
	bind := func(secret string) *runtime.Integration {
		in, err := runtime.Bind(bp, "", map[string]any{"client_id": "cid", "client_secret": secret})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	in := bind("csecret-123")
	res := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"id":"o-1"}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatal(res.Outcome, res.Message)
	}
	req := res.Requests[0]
	s := send.New(send.Options{Client: client})
	for i := range 3 {
		if a := s.Do(context.Background(), in, "o", req); a.Outcome != runtime.Delivered {
			t.Fatalf("attempt %d: %v %s", i, a.Outcome, a.Message)
		}
	}
	if got := lastAuth.Load(); got != "Bearer tok-live-777" {
		t.Fatalf("vendor saw Authorization %q", got)
	}
	if n := tokenCalls.Load(); n != 1 {
		t.Fatalf("%d token requests for 3 sends, want 1 (cached)", n)
	}
	// A vendor that echoes the token: scrubbed from the message.
	echo := *req
	echo.URL += "?echo=1"
	a := s.Do(context.Background(), in, "o", &echo)
	if a.Outcome != runtime.Failed || strings.Contains(a.Message, "tok-live-777") || !strings.Contains(a.Message, "***") {
		t.Fatalf("echo: %v %q", a.Outcome, a.Message)
	}

	// Refused client credentials: failed, not retried, no secret shown.
	bad := bind("wrong-secret-456")
	a = send.New(send.Options{Client: client}).Do(context.Background(), bad, "o", bad.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"id":"o-1"}}`)).Requests[0])
	if a.Outcome != runtime.Failed || !strings.Contains(a.Message, "refused the client credentials (401)") || strings.Contains(a.Message, "wrong-secret") {
		t.Fatalf("bad secret: %v %q", a.Outcome, a.Message)
	}
	// A token endpoint that is down: retried.
	tokenStatus.Store(503)
	fresh := bind("csecret-123")
	a = send.New(send.Options{Client: client}).Do(context.Background(), fresh, "o", fresh.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"id":"o-2"}}`)).Requests[0])
	if a.Outcome != runtime.Retry || strings.Contains(a.Message, "csecret") {
		t.Fatalf("token endpoint down: %v %q", a.Outcome, a.Message)
	}
}

// TestOAuth2TokenFetchBoundByContext: a token endpoint that never answers
// holds an attempt no longer than the attempt's context (a deadline, a
// shutdown's grace), even with a client that has no timeout of its own:
// the attempt is retried, and its error says why.
func TestOAuth2TokenFetchBoundByContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	to, _ := url.Parse(srv.URL)
	in, req := oauthOrder(t, oauthBlueprint, "csecret-123")
	s := send.New(send.Options{Client: &http.Client{Transport: rewrite{to}}})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan send.Attempt, 1)
	go func() { done <- s.Do(ctx, in, "o", req) }()
	select {
	case a := <-done:
		if a.Outcome != runtime.Retry || !errors.Is(a.Err, context.DeadlineExceeded) {
			t.Fatalf("got %v %q (%v), want a retry for the deadline", a.Outcome, a.Message, a.Err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("the attempt took %v past its 200ms deadline", d)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the token fetch ignored the attempt's deadline: still waiting after 3s")
	}
}

// TestOAuth2EchoedEscapedSecretRedacted: golang.org/x/oauth2 query-escapes
// the client secret before base64-encoding it into the token request's
// Basic credentials; a token endpoint that echoes that header in an error
// must not put the (decodable) secret in the attempt's message.
func TestOAuth2EchoedEscapedSecretRedacted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, "upstream failed for "+r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	const secret = "s3cr3t/with+plus=="
	in, req := oauthOrder(t, oauthBlueprint, secret)
	a := send.New(send.Options{Client: &http.Client{Transport: rewrite{to}}}).Do(context.Background(), in, "o", req)
	sent := base64.StdEncoding.EncodeToString([]byte("cid:" + url.QueryEscape(secret)))
	if a.Outcome != runtime.Retry || strings.Contains(a.Message, sent[4:]) || strings.Contains(a.Err.Error(), sent[4:]) {
		t.Fatalf("the echoed credentials show: %v %q", a.Outcome, a.Message)
	}
}

// TestOAuth2TokenFromVendorURL: with VendorURL (a sandbox, --vendor-url)
// the token request goes there too. Before, a sandbox run sent the client
// secret to the production token endpoint, and the production token to
// the sandbox.
func TestOAuth2TokenFromVendorURL(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		if r.URL.Path == "/oauth/token" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-sandbox","token_type":"bearer","expires_in":3600}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok-sandbox" {
			w.WriteHeader(401)
		}
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	in, req := oauthOrder(t, oauthBlueprint, "csecret-123")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a := send.New(send.Options{VendorURL: to}).Do(ctx, in, "o", req)
	if a.Outcome != runtime.Delivered || strings.Join(paths, " ") != "/oauth/token /v1/collect" {
		t.Fatalf("got %v %q; the sandbox saw %v", a.Outcome, a.Message, paths)
	}
}

// TestOAuth2TokenRefusedIsFetchedAgain: a token sent without expires_in
// is kept until the vendor refuses it (401); the next attempt gets a new
// one instead of dead-lettering every event until a restart.
func TestOAuth2TokenRefusedIsFetchedAgain(t *testing.T) {
	var issued atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			n := issued.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-`+string(rune('0'+n))+`","token_type":"bearer"}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok-2" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	to, _ := url.Parse(srv.URL)
	in, req := oauthOrder(t, oauthBlueprint, "csecret-123")
	s := send.New(send.Options{Client: &http.Client{Transport: rewrite{to}}})
	if a := s.Do(context.Background(), in, "o", req); a.Status != 401 {
		t.Fatalf("first attempt: %d %s", a.Status, a.Message)
	}
	if a := s.Do(context.Background(), in, "o", req); a.Outcome != runtime.Delivered {
		t.Fatalf("second attempt, with a new token: %v %d %s", a.Outcome, a.Status, a.Message)
	}
	if n := issued.Load(); n != 2 {
		t.Fatalf("%d tokens fetched, want 2", n)
	}
}

// oauthOrder binds src (an OAuth blueprint) with the client secret and
// evaluates an order: the integration and the request to send.
func oauthOrder(t *testing.T, src, secret string) (*runtime.Integration, *runtime.Request) {
	t.Helper()
	bp, ds := engine.Compile("oauth.yaml", []byte(src))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"client_id": "cid", "client_secret": secret})
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"Order Completed","properties":{"id":"o-1"}}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s", res)
	}
	return in, res.Requests[0]
}
