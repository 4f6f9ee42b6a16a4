package send_test

// Issue #11, finding 3: every error text that can come out of the sender
// (a URL that does not parse, net/http client errors, which quote the
// whole URL with its query, TLS and redirect errors) is scrubbed with the
// integration's redactor, and the URL inside a *url.Error is the redacted
// URL, so that a query-auth key never reaches Attempt.Message, Attempt.Err,
// a log line or a dead letter.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// queryKey is the api_key of the query-auth blueprint below.
const queryKey = "sk-test-123"

// queryAuthBlueprint sends the key in the query (?key=...); its host label
// is read from the event (evaluation refuses a label such as "a b" since
// #11 finding 2, so the tests break URLs after evaluation, or drop the
// connection, to reach the sender's error paths).
const queryAuthBlueprint = `key: qauth
version: 1.0.0
name: Query auth
category: other
status: alpha
hosts: ["*.example.com", "api.example.com"]
config:
  api_key: {type: secret, required: true}
values:
  sub: {from: properties.sub, type: string, pattern: "[a-z]+"}
requests:
  r:
    method: POST
    url: "https://{values.sub}.example.com/v1/e"
    auth: {type: query, name: key, value: "{config.api_key}"}
    body:
      a: {from: properties.a}
events:
  E: {vendor_event: e, request: r}
`

func queryAuth(t testing.TB) *runtime.Integration {
	t.Helper()
	bp, ds := engine.Compile("qauth.yaml", []byte(queryAuthBlueprint))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"api_key": queryKey})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// queryRequest is a request of the query-auth blueprint to host
// sub.example.com.
func queryRequest(t testing.TB, in *runtime.Integration, sub string) *runtime.Request {
	t.Helper()
	res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":"x","sub":"` + sub + `"}}`))
	if res.Outcome != runtime.Deliver {
		t.Skipf("the event is no longer delivered (%s %s: %s): evaluation refuses the host first", res.Outcome, res.Reason, res.Message)
	}
	if !strings.Contains(res.Requests[0].URL, "key="+queryKey) {
		t.Fatalf("the request does not carry the key in its query: %s", res.Requests[0].URL)
	}
	return res.Requests[0]
}

// attemptLeaks lists where an attempt shows the key.
func attemptLeaks(a send.Attempt) []string {
	var where []string
	if strings.Contains(a.Message, queryKey) {
		where = append(where, "Message: "+a.Message)
	}
	if a.Err != nil {
		if strings.Contains(a.Err.Error(), queryKey) {
			where = append(where, "Err: "+a.Err.Error())
		}
		var ue *url.Error
		if errors.As(a.Err, &ue) && strings.Contains(ue.URL, queryKey) {
			where = append(where, "*url.Error URL: "+ue.URL)
		}
		for e := a.Err; e != nil; e = errors.Unwrap(e) {
			if strings.Contains(e.Error(), queryKey) {
				where = append(where, "wrapped error: "+e.Error())
				break
			}
		}
	}
	return where
}

// A URL that does not parse: the parse error quotes the whole URL.
func TestDoRedactsUnparsableURL(t *testing.T) {
	in := queryAuth(t)
	req := *queryRequest(t, in, "api")
	req.URL = "https://a b.example.com/v1/e?key=" + queryKey
	a := send.New(send.Options{}).Do(context.Background(), in, "qauth", &req)
	if a.Outcome != runtime.Failed || !strings.Contains(a.Message, "does not parse") {
		t.Fatalf("got %+v", a)
	}
	for _, w := range attemptLeaks(a) {
		t.Errorf("the key shows in %s", w)
	}
	var ue *url.Error
	if !errors.As(a.Err, &ue) || !strings.Contains(ue.URL, "key=***") {
		t.Errorf("Err is %T %v: want a *url.Error whose URL is the redacted URL (key=***)", a.Err, a.Err)
	}
}

// net/http's own errors: a dropped connection, a certificate the client
// does not trust, a redirect loop (with a client that follows redirects).
// Each is a *url.Error holding the URL with its query.
func TestDoRedactsTransportErrors(t *testing.T) {
	in := queryAuth(t)
	req := queryRequest(t, in, "api")
	drop := httptest.NewServer(&vendor{answers: []int{-1}})
	defer drop.Close()
	tlsSrv := httptest.NewUnstartedServer(&vendor{})
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the client refuses
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	var loop *httptest.Server
	loop = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, loop.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	defer loop.Close()
	for _, c := range []struct {
		name   string
		srv    *httptest.Server
		client *http.Client
	}{
		{"dropped connection", drop, nil},
		{"untrusted certificate", tlsSrv, nil},
		{"redirect loop", loop, &http.Client{Timeout: 5 * time.Second}},
	} {
		t.Run(c.name, func(t *testing.T) {
			u, _ := url.Parse(c.srv.URL)
			a := send.New(send.Options{VendorURL: u, Client: c.client}).Do(context.Background(), in, "qauth", req)
			if a.Err == nil || a.Status != 0 {
				t.Fatalf("want a transport error, got %+v", a)
			}
			for _, w := range attemptLeaks(a) {
				t.Errorf("the key shows in %s", w)
			}
			var ue *url.Error
			if errors.As(a.Err, &ue) && !strings.Contains(ue.URL, "key=***") {
				t.Errorf("*url.Error URL %q, want the redacted URL (key=***)", ue.URL)
			}
		})
	}
}

// The same through the worker: the dead letter (LastError) and every log
// line of the run are free of the key.
func TestWorkerDeadLetterTransportErrorHasNoKey(t *testing.T) {
	in := queryAuth(t)
	// A label evaluation refuses: the reject shows no key either.
	if res := in.Evaluate([]byte(`{"type":"track","event":"E","properties":{"a":"x","sub":"a b"}}`)); res.Outcome != runtime.Reject || strings.Contains(res.String(), queryKey) {
		t.Errorf("host label \"a b\": %s", res.String())
	}
	ev := []byte(`{"type":"track","event":"E","properties":{"a":"x","sub":"api"}}`)
	res := in.Evaluate(ev)
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%s %s: %s", res.Outcome, res.Reason, res.Message)
	}
	// A vendor that drops the connection: net/http's error quotes the URL,
	// query and all; the attempt runs out and the item is a dead letter.
	drop := httptest.NewServer(&vendor{answers: []int{-1, -1, -1}})
	defer drop.Close()
	dropURL, _ := url.Parse(drop.URL)
	items, err := send.Items(in, "qauth", "qauth@1.0.0", ev, res, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	q := outbox.NewMemory()
	if _, err := q.Enqueue(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	w := &send.Worker{
		Queue:       q,
		Sender:      send.New(send.Options{Logger: logger, VendorURL: dropURL}),
		Policy:      send.Policy{MaxAttempts: 1, Base: time.Millisecond, Cap: time.Millisecond},
		Integration: func(*outbox.Item) (*runtime.Integration, bool) { return in, true },
		Poll:        time.Millisecond,
		Logger:      logger,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Run(ctx, func() bool { return true }); err != nil {
		t.Fatal(err)
	}
	dead, _, _ := q.List(ctx, outbox.Dead, "", 10)
	if len(dead) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dead))
	}
	if strings.Contains(dead[0].LastError, queryKey) || strings.Contains(dead[0].URL, queryKey) {
		t.Errorf("the dead letter shows the key: LastError %q, URL %q", dead[0].LastError, dead[0].URL)
	}
	if strings.Contains(logs.String(), queryKey) {
		t.Errorf("the log shows the key:\n%s", logs.String())
	}
}
