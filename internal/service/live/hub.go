// Package live carries the steps of each event (received, decision,
// request, attempt, final) from the service's pipeline to whoever watches:
// a Hub fans messages out to subscribers without ever blocking the
// pipeline, Handler streams them over a WebSocket, and Page serves the
// browser page that shows them.
//
// Everything a Message carries is shown to an operator as is, after
// Options.Scrub: the callers redact each step with its own integration's
// secrets, and Scrub with what they cannot know (another integration's).
package live

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Message is one step of one event, as the live stream and the page show it. JSON field names as tagged.
type Message struct {
	Type          string    `json:"type"` // "received" | "decision" | "request" | "attempt" | "final" (and "dropped", from the hub itself)
	At            time.Time `json:"at"`
	EventID       string    `json:"event_id"`                 // the event's messageId or a hash: groups the steps of one event
	IntegrationID string    `json:"integration_id,omitempty"` // empty for "received" (an event is received once, for every integration)
	SourceID      string    `json:"source_id,omitempty"`
	Item          string    `json:"item,omitempty"` // outbox item id (request/attempt/final)
	EventName     string    `json:"event_name,omitempty"`
	Outcome       string    `json:"outcome,omitempty"` // decision: deliver|skip|reject; attempt: delivered|duplicate|retry|failed; final: delivered|dead|skipped
	Reason        string    `json:"reason,omitempty"`
	Fields        []string  `json:"fields,omitempty"`
	Warnings      []string  `json:"warnings,omitempty"`
	Message       string    `json:"message,omitempty"` // redacted by the caller
	Method        string    `json:"method,omitempty"`
	URL           string    `json:"url,omitempty"`     // redacted
	Request       string    `json:"request,omitempty"` // the redacted request as text (request step)
	Status        int       `json:"status,omitempty"`
	DurationMS    int64     `json:"duration_ms,omitempty"`
	Attempt       int       `json:"attempt,omitempty"`
	BodyExcerpt   string    `json:"body_excerpt,omitempty"` // redacted, ≤ 200 chars
}

// Message types.
const (
	TypeReceived = "received"
	TypeDecision = "decision"
	TypeRequest  = "request"
	TypeAttempt  = "attempt"
	TypeFinal    = "final"
	// TypeDropped is sent by the hub itself, ahead of the next message a
	// slow subscriber gets, saying how many it lost.
	TypeDropped = "dropped"
)

// DefaultBuffer is the number of messages a subscriber may fall behind
// before it loses messages, when Options.Buffer is 0.
const DefaultBuffer = 256

// DefaultPingInterval is how often Handler pings a connected client, when
// Options.PingInterval is 0.
const DefaultPingInterval = 20 * time.Second

// Options configure a Hub.
type Options struct {
	// Buffer is the number of messages each subscriber may fall behind
	// before it loses messages (default 256).
	Buffer int
	// Logger receives connection and slow-subscriber notices (default
	// slog.Default()). No message content is logged.
	Logger *slog.Logger
	// PingInterval is how often Handler pings a client to keep the
	// connection alive and notice a dead peer (default 20 s).
	PingInterval time.Duration
	// WriteTimeout bounds the sending of one message or ping to a client;
	// a client that takes longer is disconnected (default 10 s).
	WriteTimeout time.Duration
	// OriginPatterns are the other origins (hosts, or scheme://host, with
	// path.Match patterns) whose pages may open the stream; the request's
	// own host always may. Needed only when a proxy serves the page under
	// another host than the one the service sees.
	OriginPatterns []string
	// Scrub, when set, is applied to each message by Handler's write loop,
	// per client, just before it is encoded: off the pipeline, so that
	// Publish stays cheap however costly the scrubbing (every integration's
	// secrets from every text, say).
	Scrub func(Message) Message
}

// Hub fans published messages out to subscribers. Its methods are safe for
// concurrent use. The zero value is not usable: use NewHub.
type Hub struct {
	buffer       int
	log          *slog.Logger
	pingInterval time.Duration
	writeTimeout time.Duration
	origins      []string
	scrub        func(Message) Message

	// n counts subscribers, so that Publish costs one atomic load when
	// nobody listens.
	n atomic.Int64
	// dropped counts messages lost by slow subscribers since the start.
	dropped atomic.Uint64

	mu     sync.RWMutex // guards subs and closed; held for reading while sending
	subs   map[*subscriber]struct{}
	closed bool
	done   chan struct{} // closed by Close
}

type subscriber struct {
	integrationID string // "" = all integrations
	ch            chan Message

	mu      sync.Mutex // orders the sends of concurrent publishers, guards the fields below
	dropped uint64     // messages lost since the last one delivered
	lost    uint64     // messages lost since the last log line
	logged  time.Time  // when the last log line about losses was written
}

// logEvery bounds how often a slow subscriber's losses are logged.
const logEvery = 10 * time.Second

// NewHub returns a Hub with no subscriber.
func NewHub(opts Options) *Hub {
	h := &Hub{
		buffer:       opts.Buffer,
		log:          opts.Logger,
		pingInterval: opts.PingInterval,
		writeTimeout: opts.WriteTimeout,
		origins:      opts.OriginPatterns,
		scrub:        opts.Scrub,
		subs:         make(map[*subscriber]struct{}),
		done:         make(chan struct{}),
	}
	if h.buffer <= 0 {
		h.buffer = DefaultBuffer
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.pingInterval <= 0 {
		h.pingInterval = DefaultPingInterval
	}
	if h.writeTimeout <= 0 {
		h.writeTimeout = 10 * time.Second
	}
	return h
}

// Publish hands m to every subscriber that watches its integration (a
// message without an integration, such as "received", concerns every
// integration and goes to all). It never blocks: a subscriber whose buffer
// is full loses the message, and the next message it does get is preceded
// by a "dropped" message saying how many it lost. It costs one atomic load
// when nobody listens. A message without a time is stamped with the
// current one.
func (h *Hub) Publish(m Message) {
	if h.n.Load() == 0 {
		return
	}
	if m.At.IsZero() {
		m.At = time.Now().UTC()
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs {
		if s.integrationID != "" && m.IntegrationID != "" && s.integrationID != m.IntegrationID {
			continue
		}
		h.send(s, m)
	}
}

// send delivers m to s without blocking; the caller holds h.mu for reading,
// so s.ch is open.
func (h *Hub) send(s *subscriber, m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped > 0 {
		notice := Message{
			Type:    TypeDropped,
			At:      time.Now().UTC(),
			Message: fmt.Sprintf("%d messages dropped: the page was too slow", s.dropped),
		}
		select {
		case s.ch <- notice:
			s.lost += s.dropped
			s.dropped = 0
			if now := notice.At; now.Sub(s.logged) >= logEvery {
				h.log.Warn("live: a slow subscriber lost messages", "dropped", s.lost, "integration_id", s.integrationID)
				s.lost, s.logged = 0, now
			}
		default:
			s.dropped++
			h.dropped.Add(1)
			return
		}
	}
	select {
	case s.ch <- m:
	default:
		s.dropped++
		h.dropped.Add(1)
	}
}

// Subscribe returns a channel of the messages of one integration ("" = all
// integrations) and a cancel func that ends the subscription and closes the
// channel; cancel may be called more than once. The channel is also closed
// by Close. A subscriber that falls more than Options.Buffer messages behind
// loses messages (see Publish).
func (h *Hub) Subscribe(integrationID string) (ch <-chan Message, cancel func()) {
	s := &subscriber{integrationID: integrationID, ch: make(chan Message, h.buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	h.subs[s] = struct{}{}
	h.n.Add(1)
	return s.ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[s]; !ok {
			return // cancelled already, or closed by Close
		}
		delete(h.subs, s)
		h.n.Add(-1)
		close(s.ch)
	}
}

// Close ends every subscription, closing their channels, and makes Handler
// close its connections with "going away" (1001). Later subscriptions get a
// closed channel and Handler refuses new connections with 503. Call it when
// the server shuts down (http.Server.Shutdown does not wait for, nor
// cancel, WebSocket connections): for instance with
// srv.RegisterOnShutdown(hub.Close). Close may be called more than once.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	for s := range h.subs {
		delete(h.subs, s)
		h.n.Add(-1)
		close(s.ch)
	}
}

// Subscribers returns the number of current subscribers (one per connected
// live client), for metrics.
func (h *Hub) Subscribers() int { return int(h.n.Load()) }

// Dropped returns the number of messages lost by slow subscribers since the
// hub was made, for metrics.
func (h *Hub) Dropped() uint64 { return h.dropped.Load() }
