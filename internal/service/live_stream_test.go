package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blueprint-engine/blueprint/internal/service"
)

// TestServeLiveStepsNameTheirEvent: every step of the live stream names its
// event, also when the worker attempts an item before the feeder has
// reported its decision (a batch: the decisions are reported after the
// whole batch is in the outbox, while the worker already sends).
func TestServeLiveStepsNameTheirEvent(t *testing.T) {
	// The worker polls the outbox every millisecond: it often claims
	// items before the feeder has reported their decisions.
	h := startWith(t, options{fastOwner: true, poll: time.Millisecond})
	tok := h.login()
	if st, out, _ := h.call("POST", "/v1/admin/integration-catalog/button/install", tok,
		`{"name": "Button", "variant": "default", "config": {"application_id": "app-abc123", "api_key": "sk-test-123"}, "delivery_mode": "server_side"}`); st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	_, out, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"})
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.admin, "http")+"/v1/admin/live",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)

	// Rounds of batches small enough for the stream's buffer (256
	// messages, about six per order).
	const rounds, n = 10, 30
	finals, attempts := 0, 0
	for r := range rounds {
		var batch []string
		for i := range n {
			batch = append(batch, string(order(fmt.Sprint("live-", r, "-", i))))
		}
		if st, out := h.post("/v1/batch", pk, sk, []byte(`{"batch":[`+strings.Join(batch, ",")+`]}`), time.Now().UnixMilli()); st != 200 || out["accepted"] != float64(n) {
			t.Fatalf("batch: %d %v", st, out)
		}
		for finals < (r+1)*n {
			_, raw, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("after %d finals and %d attempts: %v", finals, attempts, err)
			}
			var m struct {
				Type    string `json:"type"`
				EventID string `json:"event_id"`
				Item    string `json:"item"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			switch m.Type {
			case "dropped":
				t.Fatalf("the stream dropped messages: %s", m.Message)
			case "attempt", "final":
				if !strings.HasPrefix(m.EventID, "m-live-") {
					t.Errorf("a %s step of item %s names event %q", m.Type, m.Item, m.EventID)
				}
				if m.Type == "final" {
					finals++
				} else {
					attempts++
				}
			}
		}
	}
	if attempts != rounds*n {
		t.Errorf("%d attempts for %d orders", attempts, rounds*n)
	}
}

// TestServeLiveEndsWhenSessionRevoked: a live stream does not outlive its
// session. A refresh token used twice signs every session of the user out
// (reuse detection); the open stream then closes within the recheck
// interval, not when its access token would have expired (15 minutes).
func TestServeLiveEndsWhenSessionRevoked(t *testing.T) {
	defer service.SetLiveRecheck(50 * time.Millisecond)()
	h := startWith(t, options{fastOwner: true})
	st, out, _ := h.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	if st != 200 {
		t.Fatalf("login: %d %v", st, out)
	}
	tok, refresh := out["access_token"].(string), out["refresh_token"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(h.admin, "http")+"/v1/admin/live",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for range 2 { // the second use is a reuse: every session ends
		h.call("POST", "/v1/admin/auth/refresh", "", map[string]string{"refresh_token": refresh})
	}
	if st, _, _ := h.call("GET", "/v1/admin/integrations", tok, nil); st != 401 {
		t.Fatalf("the revoked token still lists integrations: %d", st)
	}
	start := time.Now()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatal("the stream stayed open after the session was revoked")
			}
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the stream closed %s after the revocation", d)
	}
}
