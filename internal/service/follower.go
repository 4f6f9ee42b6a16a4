package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service/live"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// newFollower starts a process of Kafka role process or deliver. It holds
// no state (no service.db, no users, no outbox): it binds the integrations
// the process that owns the state publishes on the integrations topic,
// their secret config sealed with the deployment's key, which it must be
// given (SecretKeyFile, never created here). It reads the topic to its end
// before it returns, so its roles never start without an integration
// published before; a secret the key does not open then refuses the start.
// Its admin listener serves /metrics, /healthz and /readyz only; it opens
// no ingest listener.
func newFollower(cfg Config) (*Service, error) {
	role := cfg.Kafka.Role
	if cfg.Catalog == nil {
		return nil, errors.New("serve: no catalog")
	}
	if cfg.StateDir != "" {
		return nil, &StartError{Code: "STATE_NOT_USED", Message: fmt.Sprintf(
			"role %s keeps no state (integrations come from the %s topic): leave out --state; users, sources and integrations live in the process with role ingest or all", role, kafka.IntegrationsTopic)}
	}
	if cfg.SecretKeyFile == "" {
		return nil, &StartError{Code: "SECRET_KEY_REQUIRED", Message: fmt.Sprintf(
			"role %s reads secret config values sealed on the %s topic with the key of the process that owns the state: give a copy of that key file (its --secret-key-file, by default STATE/secret.key) with --secret-key-file FILE", role, kafka.IntegrationsTopic)}
	}
	key, err := store.LoadKey(cfg.SecretKeyFile)
	if err != nil {
		return nil, &StartError{Code: "SECRET_KEY_UNREADABLE", Message: err.Error()}
	}
	if cfg.AdminListen == "" {
		cfg.AdminListen = "127.0.0.1:8084"
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
	s := &Service{cfg: cfg, log: cfg.Logger, hub: live.NewHub(live.Options{Logger: cfg.Logger}), metrics: newMetrics()}
	if s.kafka, err = newKafka(s, cfg.Kafka, key); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			s.kafka.close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, at, err := s.kafka.config.reader.CatchUp(ctx)
	if err != nil {
		return nil, &StartError{Code: "INTEGRATIONS_UNREADABLE", Message: err.Error()}
	}
	// A secret the key does not open is the wrong key file only when no
	// record's secret opens: one record that does not open while others
	// do (damaged, moved to another ID, sealed elsewhere) is that record's
	// fault, and refusing every follower's start for it would be a crash
	// loop. It is logged and named by /readyz like any unusable record.
	opened := false
	for _, e := range entries {
		if e.Err == nil && len(e.Record.Secrets) > 0 {
			if _, err := s.openRecord(&e.Record); err == nil {
				opened = true
				break
			}
		}
	}
	for _, p := range s.applyIntegrations(entries, at) {
		if errors.Is(p, store.ErrDecrypt) && !opened {
			return nil, &StartError{Code: "SECRET_KEY_MISMATCH", Message: fmt.Sprintf(
				"%v. Copy the key file of the process that owns the state (its --secret-key-file) and give it with --secret-key-file", p)}
		}
	}
	s.adminLn, err = net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("serve: admin listener: %w", err)
	}
	s.admin = &http.Server{Handler: s.followerHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	ok = true
	return s, nil
}

// followerHandler is the admin listener of a process of role process or
// deliver: metrics and health; readiness says whether every enabled
// integration of the topic is bound here.
func (s *Service) followerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if why := s.kafka.config.otherOwner(); why != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "another owner", "code": codeAnotherOwner, "reason": why})
			return
		}
		if _, _, blocked := s.kafka.reg.ConfigState(); blocked != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "integrations not all bound", "reason": blocked.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("/", notFoundOrNotAllowed(mux, map[string]bool{"/": true}, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "NO_ADMIN_API",
			"this process runs the Kafka role %s: it serves GET /metrics, /healthz and /readyz only; the management API, the live page and ingestion are on the process that owns the state (role ingest or all)", s.kafka.role))
	}))
	return mux
}
