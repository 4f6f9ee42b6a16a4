package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Security is how every client of a process reaches managed brokers (MSK,
// Confluent Cloud): TLS, SASL, or both. The zero value is plaintext
// without authentication.
type Security struct {
	// TLS, when not nil, dials every broker with TLS (kgo.DialTLSConfig;
	// the server name is the broker's host unless the config sets one).
	TLS *tls.Config
	// SASL, when not nil, authenticates every connection.
	SASL *SASL
	// Logger receives one error line, at most once a minute, when the
	// brokers refuse the credentials or a connection fails its TLS
	// handshake while the roles run (at start, EnsureTopics returns the
	// error instead). Nil: not logged.
	Logger *slog.Logger

	lastLog atomic.Int64 // unix nanoseconds of the last line logged
}

// SASL mechanisms.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASL holds credentials for one mechanism. Its password is unexported and
// never printed: String and GoString show the mechanism and the user only.
type SASL struct {
	mechanism string
	user      string
	pass      string
}

// NewSASL checks the mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, in
// any case) and returns the credentials. The error never holds the
// password.
func NewSASL(mechanism, user, password string) (*SASL, error) {
	m := strings.ToUpper(strings.TrimSpace(mechanism))
	switch m {
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		return nil, fmt.Errorf("kafka: SASL mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
	}
	if user == "" {
		return nil, errors.New("kafka: SASL: no user name")
	}
	if password == "" {
		return nil, errors.New("kafka: SASL: empty password")
	}
	return &SASL{mechanism: m, user: user, pass: password}, nil
}

// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
func (s *SASL) Mechanism() string { return s.mechanism }

// User is the SASL user name.
func (s *SASL) User() string { return s.user }

// String says which mechanism and user, never the password.
func (s *SASL) String() string { return fmt.Sprintf("SASL %s as user %q", s.mechanism, s.user) }

// GoString is String: %#v does not print the password either.
func (s *SASL) GoString() string { return s.String() }

// LogValue keeps the password out of structured logs.
func (s *SASL) LogValue() slog.Value { return slog.StringValue(s.String()) }

func (s *SASL) mech() sasl.Mechanism {
	switch s.mechanism {
	case SASLPlain:
		return plain.Auth{User: s.user, Pass: s.pass}.AsMechanism()
	case SASLScramSHA512:
		return scram.Auth{User: s.user, Pass: s.pass}.AsSha512Mechanism()
	default:
		return scram.Auth{User: s.user, Pass: s.pass}.AsSha256Mechanism()
	}
}

// TLSFiles name what a TLS client config is built from.
type TLSFiles struct {
	// CA is a PEM file of the certificates that sign the brokers'
	// certificates; empty: the system's roots. When given, only its
	// certificates are trusted.
	CA string
	// Cert and Key are a PEM client certificate and its private key, for
	// mutual TLS; both or neither.
	Cert, Key string
	// ServerName is checked against the brokers' certificates instead of
	// the host dialled.
	ServerName string
}

// Config builds the TLS client config (TLS 1.2 at least). Errors name the
// file at fault, never its content.
func (f TLSFiles) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.ServerName}
	if f.CA != "" {
		b, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("kafka: TLS CA %s: no PEM certificate in it", f.CA)
		}
		c.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		pair, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS client certificate %s and key %s: %w", f.Cert, f.Key, err)
		}
		c.Certificates = []tls.Certificate{pair}
	case f.Cert != "":
		return nil, errors.New("kafka: TLS client certificate without its key")
	case f.Key != "":
		return nil, errors.New("kafka: TLS client key without its certificate")
	}
	return c, nil
}

// opts are the client options of s, with w watching its connections.
func (s *Security) opts(w *connWatch) []kgo.Opt {
	opts := []kgo.Opt{kgo.WithHooks(w)}
	if s == nil {
		return opts
	}
	if s.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(s.TLS))
	}
	if s.SASL != nil {
		opts = append(opts, kgo.SASL(watchedMech{s.SASL.mech(), w}))
	}
	return opts
}

// AuthError is a broker refusing the SASL credentials (or the mechanism).
// It never holds the password.
type AuthError struct {
	Mechanism, User string
	// Broker is the host:port that refused.
	Broker string
	// Err is what the connection ended with: the broker's
	// SASL_AUTHENTICATION_FAILED, or a connection it closed.
	Err error
}

func (e *AuthError) Error() string {
	hint := "wrong user name, password or mechanism?"
	if errors.Is(e.Err, kerr.UnsupportedSaslMechanism) {
		hint = "the broker does not offer this mechanism"
	}
	return fmt.Sprintf("kafka: broker %s refused SASL %s authentication as user %q: %v (%s)", e.Broker, e.Mechanism, e.User, e.Err, hint)
}

func (e *AuthError) Unwrap() error { return e.Err }

// connWatch watches one client's connections: which are inside a SASL
// exchange, the last connection error, and authentication failures.
// Brokers answer a wrong password either with SASL_AUTHENTICATION_FAILED
// or by closing the connection mid-exchange (kfake does); kgo retries both
// quietly, so without this a wrong password is a silent timeout.
type connWatch struct {
	sec *Security

	mu       sync.Mutex
	inAuth   map[string]int // broker address → SASL exchanges begun, not finished
	lastErr  error          // the last failed connection (any cause)
	lastAddr string         // and its broker
	authErr  *AuthError     // the last authentication failure
	authFail int            // authentication failures seen
	onAuth   func(*AuthError)
}

func newConnWatch(sec *Security, onAuth func(*AuthError)) *connWatch {
	return &connWatch{sec: sec, inAuth: map[string]int{}, onAuth: onAuth}
}

func (w *connWatch) begin(addr string) {
	w.mu.Lock()
	w.inAuth[addr]++
	w.mu.Unlock()
}

func (w *connWatch) end(addr string) {
	w.mu.Lock()
	if w.inAuth[addr] > 0 {
		w.inAuth[addr]--
	}
	w.mu.Unlock()
}

// OnBrokerConnect implements kgo.HookBrokerConnect: a connection that
// failed while its SASL exchange was under way (or with a SASL error
// code) is an authentication failure.
func (w *connWatch) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	w.mu.Lock()
	w.lastErr, w.lastAddr = err, addr
	var ae *AuthError
	if w.sec != nil && w.sec.SASL != nil && (w.inAuth[addr] > 0 || errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.IllegalSaslState)) {
		if w.inAuth[addr] > 0 {
			w.inAuth[addr]--
		}
		ae = &AuthError{Mechanism: w.sec.SASL.mechanism, User: w.sec.SASL.user, Broker: addr, Err: err}
		w.authErr = ae
		w.authFail++
	}
	onAuth := w.onAuth
	w.mu.Unlock()
	if ae != nil && onAuth != nil {
		onAuth(ae)
	}
	w.log(ae, addr, err)
}

// log reports an authentication or TLS failure on the Security's logger,
// at most once a minute for all its clients.
func (w *connWatch) log(ae *AuthError, addr string, err error) {
	if w.sec == nil || w.sec.Logger == nil {
		return
	}
	var tlsFail bool
	if w.sec.TLS != nil {
		var re tls.RecordHeaderError
		var ve *tls.CertificateVerificationError
		var ue x509.UnknownAuthorityError
		var he x509.HostnameError
		tlsFail = errors.As(err, &re) || errors.As(err, &ve) || errors.As(err, &ue) || errors.As(err, &he) || strings.Contains(err.Error(), "tls:")
	}
	if ae == nil && !tlsFail {
		return
	}
	now := time.Now().UnixNano()
	last := w.sec.lastLog.Load()
	if now-last < int64(time.Minute) || !w.sec.lastLog.CompareAndSwap(last, now) {
		return
	}
	if ae != nil {
		w.sec.Logger.Error("kafka: authentication refused; retrying", "error", ae.Error())
		return
	}
	w.sec.Logger.Error("kafka: TLS handshake failed; retrying", "broker", addr, "error", err.Error())
}

// failure is what to add to an error of this client: the authentication
// failure if there was one, else the last connection error (nil: none).
func (w *connWatch) failure() (auth *AuthError, last error, addr string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.authErr, w.lastErr, w.lastAddr
}

// watchedMech tells the watch when a SASL exchange begins and ends.
type watchedMech struct {
	sasl.Mechanism
	w *connWatch
}

func (m watchedMech) Authenticate(ctx context.Context, host string) (sasl.Session, []byte, error) {
	s, b, err := m.Mechanism.Authenticate(ctx, host)
	if err != nil {
		return nil, nil, err
	}
	m.w.begin(host)
	return &watchedSession{Session: s, w: m.w, host: host}, b, nil
}

type watchedSession struct {
	sasl.Session
	w    *connWatch
	host string
	done bool
}

func (s *watchedSession) Challenge(b []byte) (bool, []byte, error) {
	done, out, err := s.Session.Challenge(b)
	if done && err == nil && !s.done {
		s.done = true
		s.w.end(s.host)
	}
	return done, out, err
}

// authFailFast cancels with the AuthError once the brokers have refused
// the credentials twice (kgo would retry until the deadline).
func authFailFast(cancel context.CancelCauseFunc) func(*AuthError) {
	var n atomic.Int32
	return func(ae *AuthError) {
		if n.Add(1) >= 2 {
			cancel(ae)
		}
	}
}

// explain replaces err by the authentication failure that caused it, or
// adds the last connection error (a TLS handshake, a refused dial) to it.
func explain(ctx context.Context, w *connWatch, err error) error {
	if ae, ok := errors.AsType[*AuthError](context.Cause(ctx)); ok {
		return ae
	}
	auth, last, addr := w.failure()
	switch {
	case auth != nil:
		return fmt.Errorf("%w (%v)", err, auth)
	case last != nil && strings.Contains(err.Error(), last.Error()):
		return fmt.Errorf("%w (broker %s)", err, addr)
	case last != nil:
		return fmt.Errorf("%w (last connection error: broker %s: %v)", err, addr, last)
	}
	return err
}
