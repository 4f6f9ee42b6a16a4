// Package fakebutton is a fake of Button's API for demos and tests, with
// fault injection.
//
// It answers the two requests the Button 0.1.0 blueprint sends (see
// docs/button-0.1.0.md):
//
//   - POST /v1/order, the Order API create: HTTP Basic auth with the API key as
//     user name and an empty password (401 otherwise); a JSON object with
//     order_id, total (a non-negative integer in minor units), currency
//     (three upper-case letters) and purchase_date (RFC 3339), else 400 naming
//     every field at fault; 409 "order already exists" for an order_id
//     already received; otherwise 200 with the created order
//     ({"meta":{"status":"ok"},"object":{"button_order_id":"btnorder-…",…}}).
//   - POST /v1/app/events, the activity request (no auth): a JSON object with
//     application_id (^app-[0-9a-zA-Z]+$), name and an RFC 3339 time, else
//     400; otherwise 200 {"meta":{"status":"ok"}}.
//
// Any other path is 404 and any other method on those paths 405. Every error
// is Button's error JSON, {"meta":{"status":"error"},"error":{"message":"…"}},
// and never contains the API key.
//
// Faults are decided per request to the two endpoints (POST only), with a
// seeded math/rand/v2 source: for a given Options.Seed, the same sequence of
// requests meets the same sequence of faults. See Options for each fault.
//
// A Server records every order (by order_id, the first body received) and
// every event, and counts every outcome; all methods are safe for concurrent
// use. Use it as an http.Handler (httptest.NewServer(fakebutton.New(opts))),
// or let it listen with Start and Close.
package fakebutton

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAPIKey is the API key accepted when Options.APIKey is empty.
const DefaultAPIKey = "sk-test-123"

// MaxBodySize is the largest request body read; a larger one is 400.
const MaxBodySize = 1 << 20

// Paths of the two endpoints.
const (
	OrderPath  = "/v1/order"
	EventsPath = "/v1/app/events"
)

// Options configures a Server. The zero value is a well-behaved fake with no
// faults that accepts DefaultAPIKey.
//
// The four rates are probabilities in [0, 1] whose sum is at most 1: for
// each request one number u is drawn uniformly in [0, 1) and the request
// meets an error when u < ErrorRate, else throttling when u < ErrorRate +
// ThrottleRate, and so on in the order of the fields below.
type Options struct {
	// APIKey is the key expected as the Basic auth user name on
	// POST /v1/order (the password must be empty). Empty means DefaultAPIKey.
	// It is never written in a response, a log line or Summary.
	APIKey string

	// ErrorRate is the probability of answering 500, 502 or 503 (chosen
	// uniformly, with Button's error JSON) without looking at the request
	// and without recording anything.
	ErrorRate float64

	// ThrottleRate is the probability of answering 429 with a Retry-After
	// header (see RetryAfter), without recording anything.
	ThrottleRate float64

	// DropBeforeRate is the probability of closing the connection without
	// any answer and without recording anything: the client gets a network
	// error for a request that had no effect.
	DropBeforeRate float64

	// DropAfterRate is the probability of handling the request normally
	// (recording the order or event when valid, counting its outcome) and
	// then closing the connection without answering: the client gets a
	// network error for a request that did take effect, so a retried order
	// create meets 409.
	DropAfterRate float64

	// RetryAfter is the delay advertised by a 429, sent as Retry-After in
	// whole seconds rounded up. Zero sends "Retry-After: 0" (retry at once),
	// which keeps tests fast; the CLI's default is one second.
	RetryAfter time.Duration

	// Latency is slept before answering each request to the two endpoints,
	// faults included. When the client goes away (or Close is called)
	// meanwhile, nothing is answered or recorded (Stats.Canceled).
	Latency time.Duration

	// Seed seeds the fault draws and the generated button_order_ids.
	Seed int64

	// Logf, when not nil, receives one line per request (method, path,
	// outcome, order_id) and the HTTP server's own errors. It is called from
	// many goroutines at once. It never receives the API key.
	Logf func(format string, args ...any)
}

// OptionError is an option Validate refuses. Option names it as the
// blueprint fake-button flag does ("error-rate"); it is "" when the
// problem is the rates together.
type OptionError struct {
	Option  string
	Value   any
	Problem string
}

func (e *OptionError) Error() string {
	if e.Option == "" {
		return e.Problem
	}
	return fmt.Sprintf("%s %v: %s", e.Option, e.Value, e.Problem)
}

// Validate reports options that New refuses: a rate outside [0, 1], rates
// summing to more than 1, or a negative duration. The error is an
// *OptionError.
func (o Options) Validate() error {
	rates := []struct {
		name string
		v    float64
	}{
		{"error-rate", o.ErrorRate},
		{"throttle-rate", o.ThrottleRate},
		{"drop-before-rate", o.DropBeforeRate},
		{"drop-after-rate", o.DropAfterRate},
	}
	sum := 0.0
	for _, r := range rates {
		if math.IsNaN(r.v) || r.v < 0 || r.v > 1 {
			return &OptionError{Option: r.name, Value: r.v, Problem: "must be between 0 and 1"}
		}
		sum += r.v
	}
	if sum > 1+1e-9 {
		return &OptionError{Problem: fmt.Sprintf("the error, throttle, drop-before and drop-after rates add up to %v: must be at most 1", sum)}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"retry-after", o.RetryAfter}, {"latency", o.Latency}} {
		if d.v < 0 {
			return &OptionError{Option: d.name, Value: d.v, Problem: "must not be negative"}
		}
	}
	return nil
}

// Order is an order as received by POST /v1/order.
type Order struct {
	ButtonOrderID string          // "btnorder-" + 16 hex digits, generated
	OrderID       string          // order_id
	Total         int64           // total, minor units
	Currency      string          // currency
	PurchaseDate  string          // purchase_date, as sent
	BtnRef        string          // btn_ref, "" when absent
	Body          json.RawMessage // the whole request body, as sent
	ReceivedAt    time.Time
	// Dropped is true when the answer was dropped (DropAfterRate): the
	// client never saw the 200.
	Dropped bool
}

// Event is an activity event as received by POST /v1/app/events.
type Event struct {
	ApplicationID string          // application_id
	Name          string          // name
	Time          string          // time, as sent
	Host          string          // the request's Host header
	Body          json.RawMessage // the whole request body, as sent
	ReceivedAt    time.Time
	Dropped       bool // the answer was dropped (DropAfterRate)
}

// Stats counts what a Server did. A request answered by an injected fault
// counts only as that fault; a drop-after request counts both as its outcome
// (Created, Duplicates, BadRequests, …) and as DroppedAfter.
type Stats struct {
	Requests         int64 // every request received, whatever its path
	Created          int64 // orders recorded, including those whose answer was dropped
	Duplicates       int64 // 409: order_id already received
	Events           int64 // activity events recorded, including dropped answers
	Unauthorized     int64 // 401: missing or wrong API key
	BadRequests      int64 // 400: body or field errors
	NotFound         int64 // 404: unknown path
	MethodNotAllowed int64 // 405: not POST
	ServerErrors     int64 // injected 500, 502 or 503
	Throttled        int64 // injected 429
	DroppedBefore    int64 // injected: connection closed, nothing recorded
	DroppedAfter     int64 // injected: handled, then connection closed
	Canceled         int64 // the client went away (or Close was called) during Latency
}

// Server is the fake. Create it with New.
type Server struct {
	opts   Options
	apiKey []byte

	rngMu sync.Mutex
	fault *rand.Rand // fault draws, one pair per request
	ids   *rand.Rand // button_order_id digits

	mu     sync.Mutex
	orders map[string]Order
	events []Event

	n struct {
		requests, created, duplicates, events, unauthorized, badRequests,
		notFound, methodNotAllowed, serverErrors, throttled, droppedBefore,
		droppedAfter, canceled atomic.Int64
	}

	srvMu  sync.Mutex
	hs     *http.Server
	url    string
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Server. It panics when opts.Validate fails; check options
// from users with Validate first.
func New(opts Options) *Server {
	if err := opts.Validate(); err != nil {
		panic("fakebutton: " + err.Error())
	}
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	s := &Server{opts: opts, apiKey: []byte(opts.APIKey)}
	s.reset()
	return s
}

func (s *Server) reset() {
	seed := uint64(s.opts.Seed)
	s.rngMu.Lock()
	s.fault = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	s.ids = rand.New(rand.NewPCG(seed, 0xbf58476d1ce4e5b9))
	s.rngMu.Unlock()
	s.mu.Lock()
	s.orders = map[string]Order{}
	s.events = nil
	s.mu.Unlock()
	for _, c := range s.counters() {
		c.Store(0)
	}
}

// Reset forgets every order, event and count, and re-seeds the random
// source: the Server then behaves as a new one with the same options.
func (s *Server) Reset() { s.reset() }

func (s *Server) counters() []*atomic.Int64 {
	n := &s.n
	return []*atomic.Int64{&n.requests, &n.created, &n.duplicates, &n.events,
		&n.unauthorized, &n.badRequests, &n.notFound, &n.methodNotAllowed,
		&n.serverErrors, &n.throttled, &n.droppedBefore, &n.droppedAfter, &n.canceled}
}

// Stats returns a snapshot of the counts.
func (s *Server) Stats() Stats {
	n := &s.n
	return Stats{
		Requests:         n.requests.Load(),
		Created:          n.created.Load(),
		Duplicates:       n.duplicates.Load(),
		Events:           n.events.Load(),
		Unauthorized:     n.unauthorized.Load(),
		BadRequests:      n.badRequests.Load(),
		NotFound:         n.notFound.Load(),
		MethodNotAllowed: n.methodNotAllowed.Load(),
		ServerErrors:     n.serverErrors.Load(),
		Throttled:        n.throttled.Load(),
		DroppedBefore:    n.droppedBefore.Load(),
		DroppedAfter:     n.droppedAfter.Load(),
		Canceled:         n.canceled.Load(),
	}
}

// Orders returns a copy of the orders received, by order_id.
func (s *Server) Orders() map[string]Order {
	s.mu.Lock()
	m := maps.Clone(s.orders)
	s.mu.Unlock()
	for k, o := range m {
		o.Body = slices.Clone(o.Body)
		m[k] = o
	}
	return m
}

// Order returns the order received with this order_id.
func (s *Server) Order(orderID string) (Order, bool) {
	s.mu.Lock()
	o, ok := s.orders[orderID]
	s.mu.Unlock()
	o.Body = slices.Clone(o.Body)
	return o, ok
}

// Events returns a copy of the events received, in the order they were
// recorded.
func (s *Server) Events() []Event {
	s.mu.Lock()
	evs := slices.Clone(s.events)
	s.mu.Unlock()
	for i := range evs {
		evs[i].Body = slices.Clone(evs[i].Body)
	}
	return evs
}

// Summary is a human-readable, multi-line account of the counts, ending
// with a newline. It never contains the API key.
func (s *Server) Summary() string {
	st := s.Stats()
	var b strings.Builder
	fmt.Fprintf(&b, "fake Button: %d requests\n", st.Requests)
	line := func(label string, v int64, note string) {
		fmt.Fprintf(&b, "  %-24s %6d%s\n", label+":", v, note)
	}
	line("orders created", st.Created, "")
	line("events recorded", st.Events, "")
	line("409 already exists", st.Duplicates, "")
	line("401 unauthorized", st.Unauthorized, "")
	line("400 bad request", st.BadRequests, "")
	line("404 not found", st.NotFound, "")
	line("405 method not allowed", st.MethodNotAllowed, "")
	line("injected 5xx", st.ServerErrors, "")
	line("injected 429", st.Throttled, "")
	line("dropped before", st.DroppedBefore, " (nothing recorded)")
	line("dropped after", st.DroppedAfter, " (handled, answer lost)")
	line("client gone", st.Canceled, "")
	return b.String()
}

type fault int

const (
	faultNone fault = iota
	faultError
	faultThrottle
	faultDropBefore
	faultDropAfter
)

var errorStatuses = [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}

// decide draws the fault of one request: always two draws, so that the
// sequence only depends on the number of requests.
func (s *Server) decide() (fault, int) {
	s.rngMu.Lock()
	u := s.fault.Float64()
	k := s.fault.IntN(len(errorStatuses))
	s.rngMu.Unlock()
	o := &s.opts
	switch {
	case u < o.ErrorRate:
		return faultError, errorStatuses[k]
	case u < o.ErrorRate+o.ThrottleRate:
		return faultThrottle, 0
	case u < o.ErrorRate+o.ThrottleRate+o.DropBeforeRate:
		return faultDropBefore, 0
	case u < o.ErrorRate+o.ThrottleRate+o.DropBeforeRate+o.DropAfterRate:
		return faultDropAfter, 0
	}
	return faultNone, 0
}

func (s *Server) newButtonOrderID() string {
	s.rngMu.Lock()
	v := s.ids.Uint64()
	s.rngMu.Unlock()
	return fmt.Sprintf("btnorder-%016x", v)
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf != nil {
		s.opts.Logf(format, args...)
	}
}

// response is what a handler decided to answer.
type response struct {
	status int
	body   any
	note   string // for the log
}

type metaJSON struct {
	Status string `json:"status"`
}

// errorJSON is Button's error body.
type errorJSON struct {
	Meta  metaJSON `json:"meta"`
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// okJSON is Button's success body.
type okJSON struct {
	Meta   metaJSON `json:"meta"`
	Object any      `json:"object,omitempty"`
}

// orderJSON is the object of a created order.
type orderJSON struct {
	ButtonOrderID string `json:"button_order_id"`
	OrderID       string `json:"order_id"`
	Total         int64  `json:"total"`
	Currency      string `json:"currency"`
	PurchaseDate  string `json:"purchase_date"`
	BtnRef        string `json:"btn_ref,omitempty"`
	Status        string `json:"status"`
}

func errorBody(msg string) any {
	var e errorJSON
	e.Meta.Status = "error"
	e.Error.Message = msg
	return e
}

func errResp(status int, note, msg string) response {
	return response{status: status, body: errorBody(msg), note: note}
}

// ServeHTTP answers one request as Button would, faults included. Dropped
// connections need a real connection (an http.Hijacker); without one the
// handler panics with http.ErrAbortHandler, which net/http turns into an
// aborted response.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.n.requests.Add(1)
	var handle func(r *http.Request, body []byte, dropped bool) response
	switch r.URL.Path {
	case OrderPath:
		handle = s.handleOrder
	case EventsPath:
		handle = s.handleEvent
	default:
		s.n.notFound.Add(1)
		s.answer(w, r, errResp(http.StatusNotFound, "", "not found: this fake serves POST "+OrderPath+" and POST "+EventsPath))
		return
	}
	if r.Method != http.MethodPost {
		s.n.methodNotAllowed.Add(1)
		w.Header().Set("Allow", http.MethodPost)
		s.answer(w, r, errResp(http.StatusMethodNotAllowed, "", "method "+r.Method+" not allowed: use POST"))
		return
	}

	// Read the body first: net/http notices a client that goes away (during
	// Latency) only once the body is read.
	body, readErr := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if readErr != nil {
		body = nil
	}
	f, errStatus := s.decide()
	if d := s.opts.Latency; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			s.n.canceled.Add(1)
			s.logf("%s %s -> client gone during latency", r.Method, r.URL.Path)
			return
		}
	}

	switch f {
	case faultError:
		s.n.serverErrors.Add(1)
		s.answer(w, r, errResp(errStatus, "injected", http.StatusText(errStatus)))
		return
	case faultThrottle:
		s.n.throttled.Add(1)
		secs := int64(math.Ceil(s.opts.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		s.answer(w, r, errResp(http.StatusTooManyRequests, "injected", "too many requests: retry later"))
		return
	case faultDropBefore:
		s.n.droppedBefore.Add(1)
		s.logf("%s %s -> connection dropped before handling (injected)", r.Method, r.URL.Path)
		drop(w)
		return
	}

	resp := handle(r, body, f == faultDropAfter)
	if f == faultDropAfter {
		s.n.droppedAfter.Add(1)
		s.logf("%s %s -> %d%s, then connection dropped (injected)", r.Method, r.URL.Path, resp.status, noteSuffix(resp.note))
		drop(w)
		return
	}
	s.answer(w, r, resp)
}

func noteSuffix(note string) string {
	if note == "" {
		return ""
	}
	return " " + note
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, resp response) {
	b, err := json.Marshal(resp.body)
	if err != nil { // cannot happen: the bodies are built here
		b = []byte(`{"meta":{"status":"error"},"error":{"message":"internal error"}}`)
		resp.status = http.StatusInternalServerError
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(resp.status)
	w.Write(b)
	s.logf("%s %s -> %d%s", r.Method, r.URL.Path, resp.status, noteSuffix(resp.note))
}

// drop closes the connection without answering.
func drop(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

// readObject reads the body as a JSON object; raw is nil when the body
// could not be read.
func readObject(raw []byte) (_ []byte, obj map[string]json.RawMessage, msg string) {
	if raw == nil {
		return nil, nil, "cannot read the request body"
	}
	if len(raw) > MaxBodySize {
		return nil, nil, fmt.Sprintf("request body over %d bytes", MaxBodySize)
	}
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, nil, "request body must be a JSON object"
	}
	return raw, obj, ""
}

// absent tells a missing value: no key, null, "" or [].
func absent(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || string(t) == "null" || string(t) == `""` {
		return true
	}
	if t[0] == '[' {
		var a []json.RawMessage
		return json.Unmarshal(t, &a) == nil && len(a) == 0
	}
	return false
}

func asString(v json.RawMessage) (string, bool) {
	t := bytes.TrimSpace(v)
	if len(t) == 0 || t[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(t, &s) != nil {
		return "", false
	}
	return s, true
}

// asCount reads a non-negative integer written as a JSON integer (no
// fraction, no exponent).
func asCount(v json.RawMessage) (int64, bool) {
	t := string(bytes.TrimSpace(v))
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || strings.HasPrefix(t, "+") {
		return 0, false
	}
	return n, true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

var (
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
	appIDRE    = regexp.MustCompile(`^app-[0-9a-zA-Z]+$`)
	sha256RE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// problems collects field errors; the 400's message names every field at
// fault, the missing ones first.
type problems struct{ missing, invalid []string }

func (p *problems) miss(field string)      { p.missing = append(p.missing, field) }
func (p *problems) bad(field, rule string) { p.invalid = append(p.invalid, field+": "+rule) }
func (p *problems) ok() bool               { return len(p.missing) == 0 && len(p.invalid) == 0 }

func (p *problems) message() string {
	var parts []string
	if len(p.missing) > 0 {
		parts = append(parts, "missing required field(s): "+strings.Join(p.missing, ", "))
	}
	if len(p.invalid) > 0 {
		parts = append(parts, "invalid field(s): "+strings.Join(p.invalid, "; "))
	}
	return strings.Join(parts, "; ")
}

func (p *problems) response() response {
	var note []string
	note = append(note, p.missing...)
	for _, s := range p.invalid {
		f, _, _ := strings.Cut(s, ":")
		note = append(note, f)
	}
	return errResp(http.StatusBadRequest, "fields="+strings.Join(note, ","), p.message())
}

func requiredString(p *problems, obj map[string]json.RawMessage, field, rule string, check func(string) bool) string {
	v := obj[field]
	if absent(v) {
		p.miss(field)
		return ""
	}
	s, ok := asString(v)
	if !ok || !check(s) {
		p.bad(field, rule)
		return ""
	}
	return s
}

func isRFC3339(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// checkAuth checks Basic auth: the API key as user name, an empty password.
func (s *Server) checkAuth(r *http.Request) (response, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return errResp(http.StatusUnauthorized, "no Authorization", "missing API key: use HTTP Basic auth with the API key as user name and an empty password"), false
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return errResp(http.StatusUnauthorized, "not Basic", "invalid Authorization header: use HTTP Basic auth with the API key as user name and an empty password"), false
	}
	if subtle.ConstantTimeCompare([]byte(user), s.apiKey) != 1 {
		return errResp(http.StatusUnauthorized, "wrong key", "invalid API key"), false
	}
	if pass != "" {
		return errResp(http.StatusUnauthorized, "non-empty password", "invalid credentials: the password must be empty"), false
	}
	return response{}, true
}

// handleOrder handles an order create; dropped tells that its answer will
// be dropped, for the record.
func (s *Server) handleOrder(r *http.Request, body []byte, dropped bool) response {
	if resp, ok := s.checkAuth(r); !ok {
		s.n.unauthorized.Add(1)
		return resp
	}
	raw, obj, msg := readObject(body)
	if msg != "" {
		s.n.badRequests.Add(1)
		return errResp(http.StatusBadRequest, "body", msg)
	}
	var p problems
	orderID := requiredString(&p, obj, "order_id", "must be an ASCII string of at most 255 characters",
		func(s string) bool { return len(s) <= 255 && isASCII(s) })
	var total int64
	if v := obj["total"]; absent(v) {
		p.miss("total")
	} else if n, ok := asCount(v); ok {
		total = n
	} else {
		p.bad("total", "must be a non-negative integer (minor units)")
	}
	currency := requiredString(&p, obj, "currency", "must be three upper-case letters (ISO 4217)", currencyRE.MatchString)
	purchaseDate := requiredString(&p, obj, "purchase_date", "must be an RFC 3339 time", isRFC3339)
	var btnRef string
	if v := obj["btn_ref"]; !absent(v) {
		if s, ok := asString(v); ok && len(s) <= 255 {
			btnRef = s
		} else {
			p.bad("btn_ref", "must be a string of at most 255 characters")
		}
	}
	checkCustomer(&p, obj["customer"])
	checkLineItems(&p, obj["line_items"])
	if !p.ok() {
		s.n.badRequests.Add(1)
		return p.response()
	}

	o := Order{
		ButtonOrderID: s.newButtonOrderID(),
		OrderID:       orderID,
		Total:         total,
		Currency:      currency,
		PurchaseDate:  purchaseDate,
		BtnRef:        btnRef,
		Body:          raw,
		ReceivedAt:    time.Now(),
		Dropped:       dropped,
	}
	s.mu.Lock()
	_, dup := s.orders[orderID]
	if !dup {
		s.orders[orderID] = o
	}
	s.mu.Unlock()
	if dup {
		s.n.duplicates.Add(1)
		return errResp(http.StatusConflict, "order_id="+orderID, "order already exists")
	}
	s.n.created.Add(1)
	return response{
		status: http.StatusOK,
		body: okJSON{Meta: metaJSON{"ok"}, Object: orderJSON{
			ButtonOrderID: o.ButtonOrderID,
			OrderID:       o.OrderID,
			Total:         o.Total,
			Currency:      o.Currency,
			PurchaseDate:  o.PurchaseDate,
			BtnRef:        o.BtnRef,
			Status:        "open",
		}},
		note: "order_id=" + orderID,
	}
}

func checkCustomer(p *problems, v json.RawMessage) {
	if absent(v) {
		return
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(v, &c) != nil || c == nil {
		p.bad("customer", "must be an object")
		return
	}
	if absent(c["id"]) {
		p.miss("customer.id")
	} else if _, ok := asString(c["id"]); !ok {
		p.bad("customer.id", "must be a string")
	}
	if e := c["email_sha256"]; !absent(e) {
		if s, ok := asString(e); !ok || !sha256RE.MatchString(s) {
			p.bad("customer.email_sha256", "must be 64 lower-case hex digits")
		}
	}
}

func checkLineItems(p *problems, v json.RawMessage) {
	if absent(v) {
		return
	}
	var items []json.RawMessage
	if json.Unmarshal(v, &items) != nil {
		p.bad("line_items", "must be an array")
		return
	}
	for i, it := range items {
		at := fmt.Sprintf("line_items[%d]", i)
		var m map[string]json.RawMessage
		if json.Unmarshal(it, &m) != nil || m == nil {
			p.bad(at, "must be an object")
			continue
		}
		if absent(m["identifier"]) {
			p.miss(at + ".identifier")
		} else if _, ok := asString(m["identifier"]); !ok {
			p.bad(at+".identifier", "must be a string")
		}
		if absent(m["total"]) {
			p.miss(at + ".total")
		} else if _, ok := asCount(m["total"]); !ok {
			p.bad(at+".total", "must be a non-negative integer (minor units)")
		}
		if q := m["quantity"]; !absent(q) {
			if n, ok := asCount(q); !ok || n < 1 {
				p.bad(at+".quantity", "must be an integer of at least 1")
			}
		}
		if a := m["amount"]; !absent(a) {
			if _, ok := asCount(a); !ok {
				p.bad(at+".amount", "must be a non-negative integer (minor units)")
			}
		}
	}
}

func (s *Server) handleEvent(r *http.Request, body []byte, dropped bool) response {
	raw, obj, msg := readObject(body)
	if msg != "" {
		s.n.badRequests.Add(1)
		return errResp(http.StatusBadRequest, "body", msg)
	}
	var p problems
	appID := requiredString(&p, obj, "application_id", "must match ^app-[0-9a-zA-Z]+$", appIDRE.MatchString)
	name := requiredString(&p, obj, "name", "must be a string", func(string) bool { return true })
	at := requiredString(&p, obj, "time", "must be an RFC 3339 time", isRFC3339)
	if !p.ok() {
		s.n.badRequests.Add(1)
		return p.response()
	}
	ev := Event{
		ApplicationID: appID,
		Name:          name,
		Time:          at,
		Host:          r.Host,
		Body:          raw,
		ReceivedAt:    time.Now(),
		Dropped:       dropped,
	}
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	s.n.events.Add(1)
	return response{
		status: http.StatusOK,
		body:   okJSON{Meta: metaJSON{"ok"}},
		note:   "name=" + name,
	}
}

// Start listens on addr (host:port; port 0 picks a free one) and serves in
// the background until Close. It returns the base URL, http://HOST:PORT; an
// unspecified host (":8787", "0.0.0.0:8787") is reported as 127.0.0.1. A
// Server can be started once.
func (s *Server) Start(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.done != nil {
		return "", errors.New("fakebutton: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	errLog := log.New(io.Discard, "", 0)
	if s.opts.Logf != nil {
		errLog = log.New(logWriter(s.opts.Logf), "", 0)
	}
	hs := &http.Server{
		Handler:           s,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          errLog,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		hs.Serve(ln) // returns http.ErrServerClosed after Shutdown or Close
	}()
	s.hs, s.cancel, s.done = hs, cancel, done
	s.url = "http://" + urlHost(ln.Addr())
	return s.url, nil
}

func urlHost(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	ip := ta.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(ta.Port))
}

type logWriter func(format string, args ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// URL returns the base URL after Start, else "".
func (s *Server) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.url
}

// Close stops a started Server: it stops listening, wakes requests sleeping
// in Latency, waits up to five seconds for requests in progress, then closes
// every connection, and returns once the server is done. Close is a no-op
// on a Server that was not started or is already closed. Recorded orders,
// events and counts stay readable.
func (s *Server) Close() error {
	s.srvMu.Lock()
	hs, cancel, done := s.hs, s.cancel, s.done
	s.hs, s.cancel = nil, nil
	s.srvMu.Unlock()
	if hs == nil {
		return nil
	}
	cancel()
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	err := hs.Shutdown(ctx)
	if err != nil {
		err = hs.Close()
	}
	<-done
	return err
}
