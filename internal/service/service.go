// Package service is `blueprint serve`: the management API (login, users,
// catalog, install, integrations and their revisions, sources, dead
// letters, the live events stream and page), signed ingestion, and
// delivery through the same pipeline as `blueprint send`
// (runtime/delivery), with its state in one directory: service.db (users,
// sources, integrations and their revisions, rejects; secrets encrypted
// with AES-256-GCM), outbox.db (the durable outbox) and secret.key. See
// docs/service.md.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/service/auth"
	"github.com/blueprint-engine/blueprint/internal/service/live"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// Config configures a Service. Zero values take the defaults.
type Config struct {
	// StateDir holds service.db, outbox.db and (by default) secret.key.
	StateDir string
	// SecretKeyFile holds the key that encrypts secrets at rest; created
	// (0600) on first start when absent. Default STATE/secret.key.
	SecretKeyFile string
	// AdminListen and IngestListen are the listeners' addresses
	// (defaults 127.0.0.1:8084 and 127.0.0.1:8080).
	AdminListen, IngestListen string
	// Catalog holds the installable blueprints.
	Catalog *engine.Catalog
	// Delivery configures the pipeline (sender, retry policy,
	// concurrency); its OnDecision, Metrics and Rejects are the service's.
	Delivery delivery.Options
	// AdminEmail and AdminPassword create the first user (role owner)
	// when the state holds none.
	AdminEmail, AdminPassword string
	// RatePerMinute is how many management requests a user may make per
	// minute (default 100).
	RatePerMinute int
	// MaxSkew is how far an ingest X-Timestamp may be from now (default 5
	// minutes).
	MaxSkew time.Duration
	// ShutdownGrace bounds the wait for requests in flight at shutdown
	// (default 10 s).
	ShutdownGrace time.Duration
	// Kafka, when set, puts delivery on Kafka (docs/kafka.md): ingest
	// produces to raw-events, the process and deliver roles run here as
	// its Role says, and the outbox is not used.
	Kafka  *KafkaConfig
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service is a running `blueprint serve`.
type Service struct {
	cfg     Config
	log     *slog.Logger
	st      *store.Store
	auth    *auth.Auth
	limiter *auth.Limiter
	gauges  *outboxGauges
	hub     *live.Hub
	box     *outbox.Bolt
	pipe    *delivery.Pipeline
	metrics *metrics
	// kafka is set in Kafka mode.
	kafka *kafkaMode

	// mu serialises changes to integrations (install, patch, enable,
	// delete) and the pipeline's bindings that follow them.
	mu sync.Mutex
	// usersMu serialises changes of a user's role or password.
	usersMu sync.Mutex
	// bound holds each enabled integration's bound form, swapped whole.
	bound sync.Map // id -> *runtime.Integration
	// items maps an outbox item to its event's live id, from its first
	// attempt watched live until it is final.
	items sync.Map

	admin, ingest *http.Server
	adminLn       net.Listener
	ingestLn      net.Listener
}

// New opens the state, creates the first user when asked, binds every
// enabled integration and listens; Run serves.
func New(cfg Config) (*Service, error) {
	if cfg.Kafka != nil && follows(cfg.Kafka.Role) {
		return newFollower(cfg) // no state: integrations from Kafka
	}
	if cfg.StateDir == "" {
		return nil, errors.New("serve: a state directory is required (--state DIR)")
	}
	if cfg.Catalog == nil {
		return nil, errors.New("serve: no catalog")
	}
	if cfg.AdminListen == "" {
		cfg.AdminListen = "127.0.0.1:8084"
	}
	if cfg.IngestListen == "" {
		cfg.IngestListen = "127.0.0.1:8080"
	}
	if cfg.SecretKeyFile == "" {
		cfg.SecretKeyFile = filepath.Join(cfg.StateDir, "secret.key")
	}
	if cfg.RatePerMinute <= 0 {
		cfg.RatePerMinute = 100
	}
	if cfg.MaxSkew <= 0 {
		cfg.MaxSkew = 5 * time.Minute
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("serve: state directory: %w", err)
	}
	key, err := store.LoadOrCreateKey(cfg.SecretKeyFile)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger}
	// Each step is scrubbed with every integration's secrets as it is
	// written to a watcher: the pipeline redacts it only with its own
	// integration's, and an event may quote another's.
	s.hub = live.NewHub(live.Options{Logger: cfg.Logger, Scrub: s.redactLive})
	s.st, err = store.Open(filepath.Join(cfg.StateDir, "service.db"), key)
	if errors.Is(err, store.ErrWrongKey) {
		return nil, &StartError{Code: "SECRET_KEY_MISMATCH", Message: fmt.Sprintf(
			"%v. --secret-key-file is %s; after 'blueprint serve rekey', give the new key file (or run the same rekey command again to finish it)", err, cfg.SecretKeyFile)}
	}
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			s.closeState()
		}
	}()
	if err := s.firstUser(); err != nil {
		return nil, err
	}
	s.auth = auth.New(s.st, cfg.Now)
	s.limiter = auth.NewLimiter(cfg.RatePerMinute, cfg.Now)
	s.metrics = newMetrics()
	s.box, err = outbox.OpenBolt(filepath.Join(cfg.StateDir, "outbox.db"))
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.gauges = &outboxGauges{box: s.box,
		pending: prometheus.NewDesc("blueprint_outbox_pending", "Requests waiting in the outbox for an attempt.", nil, nil),
		dead:    prometheus.NewDesc("blueprint_dead_letters", "Dead deliveries not replayed (dead-letter depth): the outbox's, or in Kafka mode the dead-letter index's.", nil, nil)}
	s.metrics.reg.MustRegister(s.gauges)
	opts := cfg.Delivery
	opts.OnDecision = s.onDecision
	opts.Rejects = rejectSink{s}
	opts.Metrics = s
	if opts.Logger == nil {
		opts.Logger = cfg.Logger
	}
	if opts.Retention == 0 {
		opts.Retention = 7 * 24 * time.Hour
	}
	s.pipe, err = delivery.New(s.box, opts)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if cfg.Kafka != nil {
		if s.kafka, err = newKafka(s, cfg.Kafka, key); err != nil {
			return nil, err
		}
		if s.kafka.dlq != nil {
			s.gauges.kafkaDead = s.kafka.dlq.DeadDeliveries
		}
	}
	if err := s.rebind(); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == codeNotPublished {
			return nil, &StartError{Code: codeNotPublished, Message: "the state's integrations could not be published to the integrations topic: " + ae.Message}
		}
		return nil, err
	}
	s.adminLn, err = net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("serve: admin listener: %w", err)
	}
	s.ingestLn, err = net.Listen("tcp", cfg.IngestListen)
	if err != nil {
		s.adminLn.Close()
		return nil, fmt.Errorf("serve: ingest listener: %w", err)
	}
	s.admin = &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	s.ingest = &http.Server{Handler: s.ingestHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	s.admin.RegisterOnShutdown(s.hub.Close) // live streams are told "going away"
	ok = true
	return s, nil
}

// AdminAddr and IngestAddr are the listeners' addresses (a :0 port
// resolved); IngestAddr is "" for a process that takes no events (Kafka
// roles process and deliver).
func (s *Service) AdminAddr() string { return s.adminLn.Addr().String() }
func (s *Service) IngestAddr() string {
	if s.ingestLn == nil {
		return ""
	}
	return s.ingestLn.Addr().String()
}

// firstUser creates the owner from the config when the state has no user,
// and refuses to start on an empty state without one.
func (s *Service) firstUser() error {
	n, err := s.st.CountUsers()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if n > 0 {
		return nil
	}
	if s.cfg.AdminEmail == "" || s.cfg.AdminPassword == "" {
		return errors.New("serve: the state holds no user: set BLUEPRINT_ADMIN_EMAIL and BLUEPRINT_ADMIN_PASSWORD to create the first one (role owner)")
	}
	hash, err := auth.HashPassword(s.cfg.AdminPassword)
	if err != nil {
		return fmt.Errorf("serve: BLUEPRINT_ADMIN_PASSWORD: %w", err)
	}
	if err := s.st.CreateUser(&store.User{Email: s.cfg.AdminEmail, PasswordHash: hash, Role: "owner"}); err != nil {
		return fmt.Errorf("serve: first user: %w", err)
	}
	s.log.Info("first user created", "email", s.cfg.AdminEmail, "role", "owner")
	return nil
}

// Run serves until ctx is done, then shuts down: it stops accepting,
// lets requests in flight finish within ShutdownGrace, stops delivery
// (attempts in flight finish; everything queued stays in the outbox for
// the next start) and closes the state.
func (s *Service) Run(ctx context.Context) error {
	if s.kafka != nil {
		s.kafka.start(ctx)
	} else if err := s.pipe.Start(ctx); err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- s.admin.Serve(s.adminLn) }()
	if s.ingest != nil {
		go func() { errc <- s.ingest.Serve(s.ingestLn) }()
	}
	if s.kafka != nil {
		s.log.Info("serving", "admin", s.AdminAddr(), "ingest", s.IngestAddr(), "state", s.cfg.StateDir, "kafka", s.kafka.cfg.Brokers, "role", s.kafka.role)
	} else {
		s.log.Info("serving", "admin", s.AdminAddr(), "ingest", s.IngestAddr(), "state", s.cfg.StateDir)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownGrace)
	defer cancel()
	if s.ingest != nil {
		_ = s.ingest.Shutdown(sctx) // ingest first: nothing new is accepted
	}
	_ = s.admin.Shutdown(sctx)
	if s.kafka != nil {
		s.kafka.stop() // attempts in flight end; the unsettled stay on their topics
	}
	if s.pipe != nil {
		if err := s.pipe.Close(); err != nil && runErr == nil {
			runErr = err
		}
	}
	s.closeState()
	s.log.Info("stopped")
	return runErr
}

func (s *Service) closeState() {
	if s.kafka != nil {
		s.kafka.close()
	}
	if s.box != nil {
		s.box.Close()
	}
	if s.st != nil {
		s.st.Close()
	}
}

// integration returns the bound form of an enabled integration.
func (s *Service) integration(id string) (*runtime.Integration, bool) {
	v, ok := s.bound.Load(id)
	if !ok {
		return nil, false
	}
	return v.(*runtime.Integration), true
}
