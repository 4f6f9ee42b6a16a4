package live

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Handler serves the live stream over a WebSocket.
//
// authorize(r) returns an error when the caller may not watch; the request
// is then answered 401 {"error":{"code":"INVALID_TOKEN","message":err.Error()}}
// before any upgrade. An error that has a method Code() string (found with
// errors.As), for instance one whose code is "EXPIRED_TOKEN", gives its code
// instead. A nil authorize refuses everyone.
//
// Once upgraded, each Message is sent as one JSON text frame; the query
// parameter integration_id narrows the stream to one integration (messages
// without an integration, such as "received", still come). The server pings
// every Options.PingInterval (20 s) and drops a client that does not answer
// within Options.WriteTimeout, or that sends a data frame: the stream is one
// way. The connection is closed with 1001 "going away" when the request's
// context ends (cancel the server's BaseContext on shutdown) or when the hub
// is closed; after Close, new connections get 503.
//
// The WebSocket upgrade checks that the Origin, when present, is the
// request's host or matches Options.OriginPatterns (403 otherwise): no other
// site's page may open the stream.
func (h *Hub) Handler(authorize func(r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if authorize == nil {
			writeError(w, http.StatusUnauthorized, "INVALID_TOKEN", "live events are not available: no authorization is configured")
			return
		}
		if err := authorize(r); err != nil {
			code, msg := "INVALID_TOKEN", err.Error()
			var coded interface{ Code() string }
			if errors.As(err, &coded) && coded.Code() != "" {
				code = coded.Code()
			}
			if msg == "" {
				msg = "a valid access token is required"
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, code, msg)
			return
		}
		select {
		case <-h.done:
			writeError(w, http.StatusServiceUnavailable, "SHUTTING_DOWN", "the server is shutting down")
			return
		default:
		}
		integrationID := r.URL.Query().Get("integration_id")
		// Subscribed before the upgrade is answered: a client that sends
		// an event once its connection is open sees every step of it (else
		// the first steps could be published between the 101 and the
		// subscription, and lost).
		ch, cancel := h.Subscribe(integrationID)
		defer cancel()
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: h.origins})
		if err != nil {
			// Accept has answered (426 or 403) already.
			h.log.Debug("live: websocket upgrade refused", "err", err, "remote", r.RemoteAddr)
			return
		}
		defer c.CloseNow()
		h.serve(r.Context(), c, ch, integrationID, r.RemoteAddr)
	})
}

// serve streams the subscription's messages to c until the client goes or
// stops answering, reqCtx ends or the hub closes.
func (h *Hub) serve(reqCtx context.Context, c *websocket.Conn, ch <-chan Message, integrationID, remote string) {
	h.log.Debug("live: client connected", "remote", remote, "integration_id", integrationID)
	defer h.log.Debug("live: client disconnected", "remote", remote, "integration_id", integrationID)

	// ctx bounds the reader, the pinger and the writes. It does not end with
	// reqCtx: a read or write whose context ends drops the connection at
	// once, and on shutdown the client is told "going away" first.
	ctx, stop := context.WithCancel(context.WithoutCancel(reqCtx))
	var wg sync.WaitGroup
	defer func() {
		stop()
		c.CloseNow()
		wg.Wait()
	}()

	// The reader answers pings and the close handshake. The stream is one
	// way: a client that sends a message is closed with policy violation.
	gone := make(chan struct{})
	wg.Go(func() {
		defer close(gone)
		if _, _, err := c.Read(ctx); err == nil {
			c.Close(websocket.StatusPolicyViolation, "the live stream takes no messages")
		}
	})

	// The pinger keeps proxies from closing an idle stream and notices a
	// peer that has gone without a word.
	dead := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(h.pingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(ctx, h.writeTimeout)
				err := c.Ping(pctx)
				pcancel()
				if err != nil {
					if ctx.Err() == nil {
						h.log.Debug("live: client did not answer a ping", "remote", remote, "err", err)
					}
					close(dead)
					return
				}
			}
		}
	})

	for {
		select {
		case <-reqCtx.Done():
			c.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case <-gone:
			return
		case <-dead:
			return
		case m, ok := <-ch:
			if !ok { // the hub was closed
				c.Close(websocket.StatusGoingAway, "server shutting down")
				return
			}
			if h.scrub != nil {
				m = h.scrub(m)
			}
			b, err := json.Marshal(m)
			if err != nil { // cannot happen with Message's field types
				h.log.Error("live: cannot encode a message", "err", err)
				continue
			}
			wctx, wcancel := context.WithTimeout(ctx, h.writeTimeout)
			err = c.Write(wctx, websocket.MessageText, b)
			wcancel()
			if err != nil {
				h.log.Debug("live: cannot write to client", "remote", remote, "err", err)
				return
			}
		}
	}
}

// writeError answers the service's error shape.
func writeError(w http.ResponseWriter, status int, code, message string) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Message = code, message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}
