// Package send delivers built vendor requests over HTTP: explicit timeouts,
// a keep-alive pool sized for the concurrency, HTTP/2 where the vendor
// offers it, a per-integration adaptive rate limit, a per-host concurrency
// limit, the blueprint's host list checked before every attempt, and the
// blueprint's response rules to read each answer.
//
// Sender makes single attempts; Worker drives items of a durable outbox
// through them with retries (exponential backoff with jitter,
// Retry-After honoured) until each is delivered or a dead letter.
package send

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/blueprint-engine/blueprint/internal/netguard"
	"github.com/blueprint-engine/blueprint/runtime"
)

// Version is sent in the User-Agent.
const Version = "0.1.0"

// Options configure a Sender. Zero values take the defaults.
type Options struct {
	// Timeouts: connecting, the TLS handshake, waiting for the response
	// headers, and the whole attempt (body included).
	DialTimeout, TLSTimeout, ResponseHeaderTimeout, AttemptTimeout time.Duration
	// Concurrency is the most requests in flight per host (default 16).
	Concurrency int
	// Rate is the most requests per second per integration (0: no limit).
	// A 429 halves the current rate; successes raise it back.
	Rate  float64
	Burst int
	// VendorURL, when set, replaces the scheme, host and port of every
	// request, an OAuth token request included (sandboxes, tests); path
	// and query are kept. The host check
	// applies to the URL the blueprint built, before this rewrite.
	VendorURL *url.URL
	// UserAgent overrides "blueprint-engine/VERSION".
	UserAgent string
	// Client overrides the HTTP client built from the options.
	Client *http.Client
	// AllowPrivateAddresses lets requests reach private, loopback and
	// link-local addresses. By default every connection's address is
	// checked after DNS (internal/netguard), so that a URL from config
	// (a customer's webhook) cannot reach the operator's own network; a
	// request that would is failed, not retried. With VendorURL set, the
	// operator chose the address, and it is not checked. Behind an
	// HTTP(S)_PROXY the address checked is the proxy's.
	AllowPrivateAddresses bool
	Logger                *slog.Logger
	// Metrics receives every attempt (Attempt); final states (Final) are
	// reported by the Worker, through its Metrics: give both the same
	// value to see both.
	Metrics Metrics
	// MaxResponseBody bounds how much of an answer is read (default 64 KiB).
	MaxResponseBody int64
}

// Sender sends requests. It is safe for concurrent use.
type Sender struct {
	opts   Options
	client *http.Client
	// tokenClient fetches OAuth tokens: client, sent to VendorURL when set.
	tokenClient *http.Client
	log         *slog.Logger
	metrics     Metrics

	mu       sync.Mutex
	hosts    map[string]chan struct{}
	limiters map[string]*adaptiveLimiter
}

// New builds a Sender.
func New(opts Options) *Sender {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.TLSTimeout == 0 {
		opts.TLSTimeout = 5 * time.Second
	}
	if opts.ResponseHeaderTimeout == 0 {
		opts.ResponseHeaderTimeout = 30 * time.Second
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = 60 * time.Second
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "blueprint-engine/" + Version + " (+https://blueprint-engine.dev)"
	}
	if opts.MaxResponseBody <= 0 {
		opts.MaxResponseBody = 64 << 10
	}
	s := &Sender{opts: opts, hosts: map[string]chan struct{}{}, limiters: map[string]*adaptiveLimiter{}}
	s.client = opts.Client
	if s.client == nil {
		dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
		dial := dialer.DialContext
		if !opts.AllowPrivateAddresses && opts.VendorURL == nil {
			dial = netguard.DialContext(dialer)
		}
		s.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           dial,
				ForceAttemptHTTP2:     true,
				TLSHandshakeTimeout:   opts.TLSTimeout,
				ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
				MaxIdleConns:          4 * opts.Concurrency,
				MaxIdleConnsPerHost:   opts.Concurrency,
				MaxConnsPerHost:       opts.Concurrency,
				IdleConnTimeout:       90 * time.Second,
				ExpectContinueTimeout: time.Second,
			},
			Timeout: opts.AttemptTimeout,
			// A vendor redirect must not carry credentials elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	s.tokenClient = s.client
	if v := opts.VendorURL; v != nil {
		// The token endpoint is a vendor request too: a sandbox run must
		// not send the client secret to the production token endpoint
		// (nor its token to the sandbox).
		c := *s.client
		c.Transport = vendorTransport{base: c.Transport, to: v}
		s.tokenClient = &c
	}
	s.log = opts.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.metrics = opts.Metrics
	if s.metrics == nil {
		s.metrics = nopMetrics{}
	}
	return s
}

// Attempt is the outcome of one try.
type Attempt struct {
	runtime.Verdict
	// RetryAfter is the vendor's Retry-After, capped by the caller's policy
	// (0: none).
	RetryAfter time.Duration
	Latency    time.Duration
	// Err is a transport error (no answer): connection refused or dropped,
	// timeout. The verdict is then retry. Like Message, it is redacted: a
	// *url.Error in it holds the redacted URL, and no error of its chain
	// shows a secret (errors.Is and Timeout still answer for the cause).
	Err error
}

// ErrHostNotAllowed refuses a request whose host the blueprint does not
// list.
var ErrHostNotAllowed = errors.New("host not allowed by the blueprint")

// Do sends req once and reads the answer with the integration's response
// rules. It waits for the integration's rate limit and the host's
// concurrency limit first; ctx bounds the wait and the attempt.
func (s *Sender) Do(ctx context.Context, in *runtime.Integration, integration string, req *runtime.Request) Attempt {
	return s.do(ctx, in, integration, "", "", req)
}

// DoItem is Do for the queued request whose ID is item (an outbox item's,
// or a Kafka delivery record's), of the event whose message ID is
// messageID: Metrics receive the attempt with both, as they do from a
// Worker.
func (s *Sender) DoItem(ctx context.Context, in *runtime.Integration, integration, item, messageID string, req *runtime.Request) Attempt {
	return s.do(ctx, in, integration, item, messageID, req)
}

// do is Do for the outbox item named item ("" for none), which Metrics
// receive with the attempt.
func (s *Sender) do(ctx context.Context, in *runtime.Integration, integration, item, messageID string, req *runtime.Request) Attempt {
	u, err := url.Parse(req.URL)
	if err != nil {
		// The parse error quotes the URL, auth query and all.
		return failed(in, req, fmt.Errorf("request URL does not parse: %w", redactErr(in, req, err)))
	}
	// The host list is checked on the URL the blueprint built.
	if !in.HostAllowed(u.Hostname()) {
		return failed(in, req, fmt.Errorf("%w: %s is not in %s", ErrHostNotAllowed, u.Hostname(), strings.Join(in.Hosts(), ", ")))
	}
	if v := s.opts.VendorURL; v != nil {
		u.Scheme, u.Host = v.Scheme, v.Host
	}
	lim := s.limiter(integration)
	if err := lim.Wait(ctx); err != nil {
		return Attempt{Verdict: runtime.Verdict{Outcome: runtime.Retry, Message: "interrupted before sending"}, Err: err}
	}
	sem := s.hostSem(u.Host)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return Attempt{Verdict: runtime.Verdict{Outcome: runtime.Retry, Message: "interrupted before sending"}, Err: ctx.Err()}
	}
	defer func() { <-sem }()

	// A signature is made for this attempt: a retry is signed afresh.
	signed := *req
	if err := in.AuthorizeContext(ctx, &signed, s.tokenClient); err != nil {
		var ae *runtime.AuthError
		if errors.As(err, &ae) && ae.Permanent {
			a := Attempt{Verdict: runtime.Verdict{Outcome: runtime.Failed, Status: 0, Message: ae.Message}, Err: err}
			s.metrics.Attempt(AttemptInfo{Item: item, Integration: integration, MessageID: messageID, Outcome: a.Outcome, Message: a.Message})
			return a
		}
		a := Attempt{Verdict: runtime.Verdict{Outcome: runtime.Retry, Message: in.Redact(err.Error())}, Err: err}
		s.metrics.Attempt(AttemptInfo{Item: item, Integration: integration, MessageID: messageID, Outcome: a.Outcome, Message: a.Message})
		return a
	}
	in.Sign(&signed, time.Now())
	req = &signed
	hreq, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return failed(in, req, fmt.Errorf("request cannot be built: %w", redactErr(in, req, err)))
	}
	for _, h := range req.Headers {
		hreq.Header.Add(h.Name, h.Value)
	}
	hreq.Header.Set("User-Agent", s.opts.UserAgent)
	start := time.Now()
	resp, err := s.client.Do(hreq)
	lat := time.Since(start)
	if err != nil {
		// Every net/http error is a *url.Error quoting the URL, query and
		// all (a redirect's target included): redacted before anything
		// keeps it.
		if ge := (*netguard.Error)(nil); errors.As(err, &ge) {
			// Not a passing fault: the address is refused on every try.
			a := failed(in, req, fmt.Errorf("%s url %s", in.Blueprint().Key(), ge.Error()))
			a.Latency = lat
			s.metrics.Attempt(AttemptInfo{Item: item, Integration: integration, MessageID: messageID, Outcome: a.Outcome, Latency: lat, Message: a.Message})
			return a
		}
		err = redactErr(in, req, err)
		a := Attempt{Verdict: runtime.Verdict{Outcome: runtime.Retry, Message: in.Redact(transportMessage(err))}, Latency: lat, Err: err}
		s.metrics.Attempt(AttemptInfo{Item: item, Integration: integration, MessageID: messageID, Outcome: a.Outcome, Latency: lat, Message: a.Message})
		return a
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, s.opts.MaxResponseBody))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	resp.Body.Close()
	lat = time.Since(start)
	if rerr != nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// The vendor answered 2xx: the request was accepted even if the
		// body was cut off.
		rerr = nil
	}
	if resp.StatusCode == http.StatusUnauthorized {
		in.ForgetToken(req) // a fetched token the vendor no longer takes
	}
	v := in.Classify(req, resp.StatusCode, resp.Header, body)
	a := Attempt{Verdict: v, Latency: lat, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if rerr != nil && v.Outcome == runtime.Delivered {
		a.Verdict.Outcome = runtime.Retry
		a.Verdict.Message = in.Redact("answer cut off: " + redactErr(in, req, rerr).Error())
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		lim.slowDown()
	} else if v.Delivered() {
		lim.speedUp()
	}
	info := AttemptInfo{Item: item, Integration: integration, MessageID: messageID, Status: resp.StatusCode, Outcome: a.Outcome, Latency: lat}
	if !a.Delivered() {
		info.Message = a.Message
	}
	s.metrics.Attempt(info)
	return a
}

// vendorTransport sends every request to another scheme, host and port
// (Options.VendorURL), keeping its path and query.
type vendorTransport struct {
	base http.RoundTripper
	to   *url.URL
}

func (t vendorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.URL.Scheme, req.URL.Host = t.to.Scheme, t.to.Host
	req.Host = ""
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}

func failed(in *runtime.Integration, req *runtime.Request, err error) Attempt {
	err = redactErr(in, req, err)
	return Attempt{Verdict: runtime.Verdict{Outcome: runtime.Failed, Message: in.Redact(err.Error())}, Err: err}
}

// redactErr returns err as it may be shown, logged or stored (Attempt.Err
// and Message end in logs and dead letters): a *url.Error, which net/http
// and url.Parse make quoting the whole URL, query included, gets the
// redacted URL (Integration.RedactURL) and a redacted cause; any other
// error in whose chain a secret shows is replaced by its scrubbed text,
// which still answers errors.Is and Timeout for the original but never
// gives out its text. An error with nothing to hide is kept as it is.
func redactErr(in *runtime.Integration, req *runtime.Request, err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: in.RedactURL(req, ue.URL), Err: redactErr(in, req, ue.Err)}
	}
	if !shows(in, req, err) {
		return err
	}
	return &redactedError{msg: in.Redact(err.Error()), err: err}
}

// shows reports whether an error of err's chain shows a secret, in its
// text or in a *url.Error's URL.
func shows(in *runtime.Integration, req *runtime.Request, err error) bool {
	if err == nil {
		return false
	}
	if msg := err.Error(); in.Redact(msg) != msg {
		return true
	}
	if ue, ok := err.(*url.Error); ok && in.RedactURL(req, ue.URL) != ue.URL {
		return true
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return shows(in, req, e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, x := range e.Unwrap() {
			if shows(in, req, x) {
				return true
			}
		}
	}
	return false
}

// redactedError is an error whose text held a secret: its scrubbed text.
type redactedError struct {
	msg string
	err error // the original, for Is and Timeout only
}

func (e *redactedError) Error() string { return e.msg }

// Is answers for the original (io.EOF, context.DeadlineExceeded ...).
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// Timeout answers for the original, as net.Error does.
func (e *redactedError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

// transportMessage says what went wrong without the request URL, which Go
// puts in every *url.Error.
func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout: " + err.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer"
	}
	return "no answer: " + err.Error()
}

func (s *Sender) hostSem(host string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.hosts[host]
	if c == nil {
		c = make(chan struct{}, s.opts.Concurrency)
		s.hosts[host] = c
	}
	return c
}

func (s *Sender) limiter(integration string) *adaptiveLimiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.limiters[integration]
	if l == nil {
		l = newAdaptiveLimiter(s.opts.Rate, s.opts.Burst)
		s.limiters[integration] = l
	}
	return l
}

// retryAfter parses Retry-After: delay-seconds or an HTTP-date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0
		}
		if n > int64(365*24*time.Hour/time.Second) {
			n = int64(365 * 24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// adaptiveLimiter is a token bucket whose rate halves on a 429 (at most
// once a second: a burst of 429s answers one overload) and recovers by 10%
// per delivered request, up to the configured rate. With no configured
// rate it only limits after a 429, starting from 100 requests/s, and never
// goes below 5 requests/s.
type adaptiveLimiter struct {
	mu       sync.Mutex
	l        *rate.Limiter
	max      rate.Limit
	current  rate.Limit
	lastSlow time.Time
}

const minAdaptiveRate = 5

func newAdaptiveLimiter(perSecond float64, burst int) *adaptiveLimiter {
	limit := rate.Inf
	if perSecond > 0 {
		limit = rate.Limit(perSecond)
	}
	if burst <= 0 {
		burst = 16 // once a 429 makes an unlimited integration limited
		if perSecond > 0 {
			burst = max(1, int(perSecond))
		}
	}
	return &adaptiveLimiter{l: rate.NewLimiter(limit, burst), max: limit, current: limit}
}

func (a *adaptiveLimiter) Wait(ctx context.Context) error { return a.l.Wait(ctx) }

func (a *adaptiveLimiter) slowDown() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.lastSlow) < time.Second {
		return
	}
	a.lastSlow = time.Now()
	if a.current == rate.Inf {
		a.current = 200
	}
	floor := rate.Limit(minAdaptiveRate)
	if a.max != rate.Inf && a.max < floor {
		floor = a.max
	}
	a.current = max(a.current/2, floor)
	a.l.SetLimit(a.current)
}

func (a *adaptiveLimiter) speedUp() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == a.max {
		return
	}
	a.current *= 1.1
	if a.max != rate.Inf && a.current >= a.max || a.max == rate.Inf && a.current > 1000 {
		a.current = a.max
	}
	a.l.SetLimit(a.current)
}
