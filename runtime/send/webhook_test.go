package send_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

const signingSecret = "whsec-test-0123456789abcdef0123456789"

func webhook(t testing.TB, config map[string]any) *runtime.Integration {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds, err := cat.Compile("webhook@0.1.0")
	if bp == nil {
		t.Fatal(err, ds)
	}
	in, err := runtime.Bind(bp, "", config)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// received is what a capture server saw of one request.
type received struct {
	header http.Header
	body   []byte
}

type capture struct {
	mu     sync.Mutex
	got    []received
	status []int
}

func (c *capture) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	c.got = append(c.got, received{r.Header.Clone(), b})
	status := 200
	if len(c.status) > 0 {
		status, c.status = c.status[0], c.status[1:]
	}
	c.mu.Unlock()
	w.WriteHeader(status)
}

// TestWebhookSignsEveryAttempt: the receiver checks X-Signature over the
// raw bytes it got with the X-Timestamp it got, and a retry carries a
// fresh timestamp and a signature that still verifies.
func TestWebhookSignsEveryAttempt(t *testing.T) {
	in := webhook(t, map[string]any{"url": "https://hooks.example.com/events", "authentication": "hmac", "signing_secret": signingSecret})
	event := `{"type":"page", "name":"Checkout","n":1e3}`
	res := in.Evaluate([]byte(event))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%v: %s", res.Outcome, res.Message)
	}
	req := res.Requests[0]
	cap := &capture{status: []int{503, 200}}
	srv := httptest.NewServer(cap)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	s := send.New(send.Options{VendorURL: u})
	if a := s.Do(context.Background(), in, "hook", req); a.Outcome != runtime.Retry {
		t.Fatalf("first attempt: %v %s", a.Outcome, a.Message)
	}
	time.Sleep(3 * time.Millisecond)
	if a := s.Do(context.Background(), in, "hook", req); a.Outcome != runtime.Delivered {
		t.Fatalf("second attempt: %v %s", a.Outcome, a.Message)
	}
	if len(cap.got) != 2 {
		t.Fatalf("%d requests", len(cap.got))
	}
	for i, g := range cap.got {
		if string(g.body) != event {
			t.Fatalf("attempt %d: body %q, want the event byte for byte", i, g.body)
		}
		ts := g.header.Get("X-Timestamp")
		m := hmac.New(sha256.New, []byte(signingSecret))
		m.Write([]byte(ts + "." + string(g.body)))
		if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); g.header.Get("X-Signature") != want {
			t.Fatalf("attempt %d: X-Signature %q does not verify (want %q)", i, g.header.Get("X-Signature"), want)
		}
	}
	if cap.got[0].header.Get("X-Timestamp") == cap.got[1].header.Get("X-Timestamp") {
		t.Fatalf("the retry was not signed again: both at %s", cap.got[0].header.Get("X-Timestamp"))
	}
	// The evaluation's own request is left as it was.
	if v, _ := req.Header("X-Timestamp"); v == cap.got[1].header.Get("X-Timestamp") {
		t.Fatal("Do changed the caller's request")
	}
	if view := res.String(); strings.Contains(view, signingSecret) || !strings.Contains(view, "X-Signature: ***") {
		t.Fatalf("the printed request shows the signature:\n%s", view)
	}
}

// TestWebhookPrivateAddressRefusedAtConnection: a name that resolves to a
// loopback address passes the install-time check (it is a name) and is
// refused when the connection is made: failed, not retried, with no
// request sent.
func TestWebhookPrivateAddressRefusedAtConnection(t *testing.T) {
	cap := &capture{}
	srv := httptest.NewServer(cap)
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	in := webhook(t, map[string]any{"url": "https://localhost:" + port + "/events"})
	res := in.Evaluate([]byte(`{"type":"page"}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%v: %s", res.Outcome, res.Message)
	}
	a := send.New(send.Options{}).Do(context.Background(), in, "hook", res.Requests[0])
	if a.Outcome != runtime.Failed || !strings.HasPrefix(a.Message, "webhook url resolves to a private, loopback or link-local address (127.0.0.1") {
		t.Fatalf("got %v %q, want failed: resolves to a private ... address", a.Outcome, a.Message)
	}
	if len(cap.got) != 0 {
		t.Fatal("a request reached the loopback server")
	}
	// The operator may allow it (the TLS handshake then fails on the
	// plain-HTTP test server: a transport error, retried, but the address
	// was let through).
	a = send.New(send.Options{AllowPrivateAddresses: true}).Do(context.Background(), in, "hook", res.Requests[0])
	if a.Outcome != runtime.Retry || strings.Contains(a.Message, "private") {
		t.Fatalf("allowed: got %v %q, want a transport retry", a.Outcome, a.Message)
	}
}

// TestWebhookRedirectNotFollowed: a 3xx is failed with the contract's
// message, and the redirect's target is never asked.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	target := &capture{}
	tsrv := httptest.NewServer(target)
	defer tsrv.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, tsrv.URL+"/stolen", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	in := webhook(t, map[string]any{"url": "https://hooks.example.com/events", "authentication": "bearer", "auth_token": "tok-secret"})
	res := in.Evaluate([]byte(`{"type":"page"}`))
	u, _ := url.Parse(srv.URL)
	a := send.New(send.Options{VendorURL: u}).Do(context.Background(), in, "hook", res.Requests[0])
	want := "the webhook answered a redirect (307); redirects are not followed: set url to the final address"
	if a.Outcome != runtime.Failed || a.Message != want {
		t.Fatalf("got %v %q, want failed %q", a.Outcome, a.Message, want)
	}
	if len(target.got) != 0 {
		t.Fatal("the redirect was followed")
	}
}

// TestWebhookEchoedSignatureRedacted: a receiver that echoes the request's
// headers in its error must not put the attempt's signature in the
// message (logs, dead letters): whoever reads it could replay the
// request. The signature is made per attempt, so the redaction of config
// secrets does not know it.
func TestWebhookEchoedSignatureRedacted(t *testing.T) {
	in := webhook(t, map[string]any{"url": "https://hooks.example.com/events", "authentication": "hmac", "signing_secret": signingSecret})
	res := in.Evaluate([]byte(`{"type":"page"}`))
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sig := r.Header.Get("X-Signature")
		sent = append(sent, sig)
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"bad signature `+sig+` (digest `+strings.TrimPrefix(sig, "sha256=")+`)"}`)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	a := send.New(send.Options{VendorURL: u}).Do(context.Background(), in, "hook", res.Requests[0])
	if a.Outcome != runtime.Failed || len(sent) != 1 {
		t.Fatalf("got %v %q", a.Outcome, a.Message)
	}
	if digest := strings.TrimPrefix(sent[0], "sha256="); strings.Contains(a.Message, digest[:16]) {
		t.Fatalf("the message shows the signature: %q", a.Message)
	}
	if !strings.Contains(a.Message, "bad signature ***") {
		t.Fatalf("message %q", a.Message)
	}
}
