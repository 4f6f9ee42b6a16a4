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
	// request (sandboxes, tests); path and query are kept. The host check
	// applies to the URL the blueprint built, before this rewrite.
	VendorURL *url.URL
	// UserAgent overrides "blueprint-engine/VERSION".
	UserAgent string
	// Client overrides the HTTP client built from the options.
	Client *http.Client
	Logger *slog.Logger
	// Metrics receives every attempt (Attempt); final states (Final) are
	// reported by the Worker, through its Metrics: give both the same
	// value to see both.
	Metrics Metrics
	// MaxResponseBody bounds how much of an answer is read (default 64 KiB).
	MaxResponseBody int64
}

// Sender sends requests. It is safe for concurrent use.
type Sender struct {
	opts    Options
	client  *http.Client
	log     *slog.Logger
	metrics Metrics

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
		s.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                 http.ProxyFromEnvironment,
				DialContext:           dialer.DialContext,
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
	// timeout. The verdict is then retry.
	Err error
}

// ErrHostNotAllowed refuses a request whose host the blueprint does not
// list.
var ErrHostNotAllowed = errors.New("host not allowed by the blueprint")

// Do sends req once and reads the answer with the integration's response
// rules. It waits for the integration's rate limit and the host's
// concurrency limit first; ctx bounds the wait and the attempt.
func (s *Sender) Do(ctx context.Context, in *runtime.Integration, integration string, req *runtime.Request) Attempt {
	return s.do(ctx, in, integration, "", req)
}

// do is Do for the outbox item named item ("" for none), which Metrics
// receive with the attempt.
func (s *Sender) do(ctx context.Context, in *runtime.Integration, integration, item string, req *runtime.Request) Attempt {
	u, err := url.Parse(req.URL)
	if err != nil {
		return failed(fmt.Errorf("request URL does not parse: %w", err))
	}
	// The host list is checked on the URL the blueprint built.
	if !in.HostAllowed(u.Hostname()) {
		return failed(fmt.Errorf("%w: %s is not in %s", ErrHostNotAllowed, u.Hostname(), strings.Join(in.Hosts(), ", ")))
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

	hreq, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(req.Body))
	if err != nil {
		return failed(fmt.Errorf("request cannot be built: %w", err))
	}
	for _, h := range req.Headers {
		hreq.Header.Add(h.Name, h.Value)
	}
	hreq.Header.Set("User-Agent", s.opts.UserAgent)
	start := time.Now()
	resp, err := s.client.Do(hreq)
	lat := time.Since(start)
	if err != nil {
		msg := transportMessage(err)
		a := Attempt{Verdict: runtime.Verdict{Outcome: runtime.Retry, Message: in.Redact(msg)}, Latency: lat, Err: err}
		s.metrics.Attempt(AttemptInfo{Item: item, Integration: integration, Outcome: a.Outcome, Latency: lat, Message: a.Message})
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
	v := in.Classify(req, resp.StatusCode, resp.Header, body)
	a := Attempt{Verdict: v, Latency: lat, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if rerr != nil && v.Outcome == runtime.Delivered {
		a.Verdict.Outcome = runtime.Retry
		a.Verdict.Message = "answer cut off: " + rerr.Error()
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		lim.slowDown()
	} else if v.Delivered() {
		lim.speedUp()
	}
	info := AttemptInfo{Item: item, Integration: integration, Status: resp.StatusCode, Outcome: a.Outcome, Latency: lat}
	if !a.Delivered() {
		info.Message = a.Message
	}
	s.metrics.Attempt(info)
	return a
}

func failed(err error) Attempt {
	return Attempt{Verdict: runtime.Verdict{Outcome: runtime.Failed, Message: err.Error()}, Err: err}
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
