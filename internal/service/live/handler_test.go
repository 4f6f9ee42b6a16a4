package live

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const testToken = "tok_good"

// tokenAuth accepts testToken from the Authorization header or the
// access_token query parameter, as the service does.
func tokenAuth(r *http.Request) error {
	if r.Header.Get("Authorization") == "Bearer "+testToken || r.URL.Query().Get("access_token") == testToken {
		return nil
	}
	return errors.New("the access token is invalid")
}

type codedErr struct{ code, msg string }

func (e codedErr) Error() string { return e.msg }
func (e codedErr) Code() string  { return e.code }

// liveServer serves h.Handler(tokenAuth) and returns its ws:// URL.
func liveServer(t *testing.T, h *Hub) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(h.Handler(tokenAuth))
	t.Cleanup(srv.Close)
	return srv, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// dial connects and waits until the hub counts the new subscriber, so that
// what the test publishes next reaches it.
func dial(t *testing.T, h *Hub, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	before := h.Subscribers()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v (response %v)", url, err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	for h.Subscribers() <= before {
		if ctx.Err() != nil {
			t.Fatal("the handler did not subscribe")
		}
		time.Sleep(time.Millisecond)
	}
	return c
}

func read(t *testing.T, c *websocket.Conn) Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Errorf("frame type %v, want text", typ)
	}
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("frame %q is not a Message: %v", b, err)
	}
	return m
}

func TestHandlerRefused(t *testing.T) {
	h := quietHub(Options{})
	for _, tc := range []struct {
		name      string
		authorize func(*http.Request) error
		code, msg string
	}{
		{"invalid", tokenAuth, "INVALID_TOKEN", "the access token is invalid"},
		{"expired", func(*http.Request) error {
			return codedErr{"EXPIRED_TOKEN", "the access token has expired"}
		}, "EXPIRED_TOKEN", "the access token has expired"},
		{"no authorize", nil, "INVALID_TOKEN", "live events are not available: no authorization is configured"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(h.Handler(tc.authorize))
			defer srv.Close()
			// A real upgrade request: refused before the upgrade.
			_, resp, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"?access_token=nope", nil)
			if err == nil {
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("response %v, want 401", resp)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			var body struct {
				Error struct{ Code, Message string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			if body.Error.Code != tc.code || body.Error.Message != tc.msg {
				t.Errorf("error %+v, want %s %q", body.Error, tc.code, tc.msg)
			}
		})
	}
	if n := h.Subscribers(); n != 0 {
		t.Errorf("a refused caller subscribed: %d", n)
	}
}

func TestHandlerStreamsMessages(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{})
	_, url := liveServer(t, h)

	byQuery := dial(t, h, url+"?access_token="+testToken, nil)
	byHeader := dial(t, h, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + testToken}}})

	at := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)
	sent := []Message{
		{Type: TypeReceived, At: at, EventID: "e1", SourceID: "src_1", EventName: "Order Completed"},
		{Type: TypeDecision, At: at, EventID: "e1", IntegrationID: "int_a", EventName: "Order Completed", Outcome: "deliver", Warnings: []string{"w"}, Fields: []string{"properties.total"}},
		{Type: TypeRequest, At: at, EventID: "e1", IntegrationID: "int_a", Item: "it_1", Method: "POST", URL: "https://api.example/v1/orders", Request: "POST /v1/orders\n\n{\"api_key\":\"***\"}"},
		{Type: TypeAttempt, At: at, EventID: "e1", IntegrationID: "int_a", Item: "it_1", Outcome: "delivered", Status: 200, DurationMS: 42, Attempt: 1, BodyExcerpt: `{"ok":true}`},
		{Type: TypeFinal, At: at, EventID: "e1", IntegrationID: "int_a", Item: "it_1", Outcome: "delivered"},
	}
	for _, m := range sent {
		h.Publish(m)
	}
	for _, c := range []*websocket.Conn{byQuery, byHeader} {
		for _, want := range sent {
			if got := read(t, c); !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		}
	}

	// The JSON names are the documented ones, and empty fields are left out.
	ctx := context.Background()
	h.Publish(Message{Type: TypeAttempt, At: at, EventID: "e2", IntegrationID: "int_a", Status: 401, DurationMS: 7, Attempt: 2, Outcome: "failed", Message: "unauthorized", BodyExcerpt: "bad key"})
	_, b, err := byQuery.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"attempt","at":"2026-03-01T12:00:00.123Z","event_id":"e2","integration_id":"int_a","outcome":"failed","message":"unauthorized","status":401,"duration_ms":7,"attempt":2,"body_excerpt":"bad key"}`
	if string(b) != want {
		t.Errorf("frame\n%s\nwant\n%s", b, want)
	}

	byQuery.Close(websocket.StatusNormalClosure, "")
	byHeader.Close(websocket.StatusNormalClosure, "")
	waitSubscribers(t, h, 0)
}

func waitSubscribers(t *testing.T, h *Hub, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.Subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("Subscribers() = %d, want %d", h.Subscribers(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHandlerIntegrationFilter(t *testing.T) {
	h := quietHub(Options{})
	_, url := liveServer(t, h)
	c := dial(t, h, url+"?access_token="+testToken+"&integration_id=int_a", nil)

	h.Publish(Message{Type: TypeDecision, EventID: "e1", IntegrationID: "int_b", Outcome: "deliver"})
	h.Publish(Message{Type: TypeReceived, EventID: "e2"})
	h.Publish(Message{Type: TypeDecision, EventID: "e2", IntegrationID: "int_b", Outcome: "skip"})
	h.Publish(Message{Type: TypeDecision, EventID: "e2", IntegrationID: "int_a", Outcome: "deliver"})
	if m := read(t, c); m.Type != TypeReceived || m.EventID != "e2" {
		t.Errorf("first: %+v, want e2 received", m)
	}
	if m := read(t, c); m.IntegrationID != "int_a" || m.EventID != "e2" {
		t.Errorf("second: %+v, want int_a's decision on e2", m)
	}
}

func TestHandlerPings(t *testing.T) {
	h := quietHub(Options{PingInterval: 20 * time.Millisecond})
	_, url := liveServer(t, h)
	var pings atomic.Int32
	c := dial(t, h, url+"?access_token="+testToken, &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	ctx := c.CloseRead(context.Background()) // reads, so that pings are answered
	deadline := time.Now().Add(5 * time.Second)
	for pings.Load() < 3 {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%d pings, want 3 (conn err %v)", pings.Load(), ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A client that stops answering pings is dropped.
func TestHandlerDropsDeadClient(t *testing.T) {
	h := quietHub(Options{PingInterval: 20 * time.Millisecond, WriteTimeout: 50 * time.Millisecond})
	_, url := liveServer(t, h)
	dial(t, h, url+"?access_token="+testToken, nil) // never reads: never answers a ping
	waitSubscribers(t, h, 0)
}

func TestHandlerClosesOnHubClose(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{})
	srv, url := liveServer(t, h)
	c := dial(t, h, url+"?access_token="+testToken, nil)
	h.Close()
	_, _, err := c.Read(context.Background())
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Errorf("after Close: %v (status %v), want going away", err, s)
	}
	// New connections are refused.
	resp, err := srv.Client().Get(srv.URL + "?access_token=" + testToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: %d, want 503", resp.StatusCode)
	}
}

// The server's shutdown cancels its BaseContext: every connection closes
// with going away.
func TestHandlerClosesOnContext(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{})
	base, shutdown := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(h.Handler(tokenAuth))
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	defer srv.Close()
	c := dial(t, h, "ws"+strings.TrimPrefix(srv.URL, "http")+"?access_token="+testToken, nil)
	shutdown()
	_, _, err := c.Read(context.Background())
	if s := websocket.CloseStatus(err); s != websocket.StatusGoingAway {
		t.Errorf("after shutdown: %v (status %v), want going away", err, s)
	}
	waitSubscribers(t, h, 0)
}

func TestHandlerRefusesClientData(t *testing.T) {
	h := quietHub(Options{})
	_, url := liveServer(t, h)
	c := dial(t, h, url+"?access_token="+testToken, nil)
	if err := c.Write(context.Background(), websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(context.Background())
	if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation {
		t.Errorf("after a client message: %v, want policy violation", err)
	}
	waitSubscribers(t, h, 0)
}

func TestHandlerPlainRequest(t *testing.T) {
	h := quietHub(Options{})
	srv, _ := liveServer(t, h)
	resp, err := srv.Client().Get(srv.URL + "?access_token=" + testToken)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("a plain GET: %d, want 426", resp.StatusCode)
	}
}

// A page of another site may not open the stream with the operator's
// browser.
func TestHandlerRefusesCrossOrigin(t *testing.T) {
	h := quietHub(Options{})
	_, url := liveServer(t, h)
	_, resp, err := websocket.Dial(context.Background(), url+"?access_token="+testToken, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://evil.example"}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin dial: %v %v, want 403", err, resp)
	}
}

func TestHandlerAllowsListedOrigin(t *testing.T) {
	h := quietHub(Options{OriginPatterns: []string{"admin.example"}})
	_, url := liveServer(t, h)
	dial(t, h, url+"?access_token="+testToken, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://admin.example"}},
	})
	_, resp, err := websocket.Dial(context.Background(), url+"?access_token="+testToken, &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://evil.example"}},
	})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("unlisted origin: %v %v, want 403", err, resp)
	}
}

// TestHandlerSubscribedWhenOpen: once the upgrade is answered the client
// is subscribed, so an event it sends right away is streamed from its
// first step (TestAttackLiveNoSecretInDecision lost a decision now and
// then when the subscription came after the 101).
func TestHandlerSubscribedWhenOpen(t *testing.T) {
	noLeak(t)
	h := quietHub(Options{})
	_, url := liveServer(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 1; i <= 50; i++ {
		c, _, err := websocket.Dial(ctx, url+"?access_token="+testToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if n := h.Subscribers(); n != i {
			t.Fatalf("connection %d open, %d subscribers", i, n)
		}
	}
}
