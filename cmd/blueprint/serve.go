package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/internal/service"
)

func (a *app) serveCmd() *cobra.Command {
	var df deliveryFlags
	var kf kafkaFlags
	var adminListen, ingestListen, keyFile, role, instanceID string
	var takeOver bool
	var brokers []string
	cmd := &cobra.Command{
		Use:   "serve [--state DIR] [--admin-listen ADDR] [--ingest-listen ADDR] [--vendor-url URL] [--kafka-brokers HOST:PORT,... [--role ROLE] [--kafka-tls...] [--kafka-sasl-...]]",
		Short: "Run the service: management API, signed ingestion, live events page, delivery",
		Long: `Run the platform's face for the engine, with every piece of state in --state
(users, sources, integrations and their immutable revisions, rejected events,
the durable outbox, and secret.key): no other server is needed.

The admin listener (--admin-listen, default 127.0.0.1:8084) serves the
management API under /v1/admin (login, catalog, install, integrations,
sources, dead letters, the live events WebSocket), the live events page at /,
/metrics, /healthz and /readyz. The ingest listener (--ingest-listen, default
127.0.0.1:8080) takes signed events at POST /v1/events and POST /v1/batch and
answers 200 only once they are durable. See docs/service.md.

On an empty state, BLUEPRINT_ADMIN_EMAIL and BLUEPRINT_ADMIN_PASSWORD create
the first user (role owner); without them serve refuses to start. Secret
config values and source secret keys are encrypted at rest (AES-256-GCM) with
the key in --secret-key-file (default STATE/secret.key, created 0600 on first
start): keep it, or the secrets in the state cannot be read again. 'blueprint
serve rekey' replaces it, with serve stopped (see its --help).

With --kafka-brokers host:port,... delivery runs on Kafka (docs/kafka.md):
ingest answers 200 once the events are on raw-events (acks=all), and
--role (default all) says which of the ingest, process and deliver roles
this process runs. The process that owns the state (role all or ingest:
users, sources, integrations; one per deployment) publishes every
integration to the compacted integrations topic before it answers a change.
Roles process and deliver keep no state (no --state, no users, no ingest
listener): they read the integrations topic, whose secret config values are
sealed with the owner's key, so they need a copy of its key file in
--secret-key-file; their admin listener serves /metrics, /healthz and
/readyz only. One state owns a deployment: its ID is stamped on every
record it publishes, and serve refuses to start a state on an integrations
topic another state publishes (ANOTHER_OWNER; --kafka-take-over, once,
makes this state the owner instead), and stops publishing if another
state's record appears while it runs. --kafka-instance-id gives each process a stable identity in
its consumer groups, so that a restarted process takes its partitions back
at once. The outbox is not used, and the owner's dead-letter API reads and
replays the dlq-events topic through an index in STATE/dlq-index.db.
While someone watches the owner's live page, roles process and deliver copy
their live steps (decisions, requests, attempts, finals; redacted) to the
live-events topic, which the owner shows: told so by the owner on the
live-watch topic (both delete after an hour). --kafka-partitions (default 3)
is the partition count of the topics serve creates (the integrations and
live-watch topics always have 1).

Managed Kafka (MSK, Confluent Cloud): --kafka-tls connects with TLS trusting
the system's roots; --kafka-tls-ca FILE trusts only that CA (PEM);
--kafka-tls-cert FILE with --kafka-tls-key FILE present a client certificate
(mutual TLS); --kafka-tls-server-name NAME checks the brokers' certificates
against NAME. Any --kafka-tls-* flag turns TLS on. --kafka-sasl-mechanism
plain|scram-sha-256|scram-sha-512 with --kafka-sasl-user NAME authenticates;
the password is read from --kafka-sasl-password-file FILE or from the
environment variable BLUEPRINT_KAFKA_SASL_PASSWORD, never from a flag, and is
never logged. SASL PLAIN without TLS is allowed with a warning. Brokers that
refuse the credentials stop serve at start (exit 1) with an error naming the
broker, mechanism and user. blueprint fake-kafka runs an in-memory broker
for trying this out.

A long-running service trades memory for CPU: serve runs the Go garbage
collector at GOGC=400 unless GOGC is set in the environment, with a soft
memory limit of 256 MiB unless GOMEMLIMIT is set (under load it then
spends a quarter less CPU; bench/serve-load.sh measures it). Each variable
overrides its own default only.

SIGINT/SIGTERM stop accepting, let requests in flight finish (10 s at most)
and keep everything queued for the next start.`,
		Example: `  BLUEPRINT_ADMIN_EMAIL=admin@example.com BLUEPRINT_ADMIN_PASSWORD=change-me-now \
    blueprint serve --state /tmp/bp-serve --vendor-url http://127.0.0.1:8787 --retry-base 1s --retry-cap 10s
  BLUEPRINT_KAFKA_SASL_PASSWORD="$(cat /run/secrets/kafka)" \
    blueprint serve --state /tmp/bp-serve --kafka-brokers b-1.example.com:9096,b-2.example.com:9096 \
    --kafka-tls --kafka-sasl-mechanism scram-sha-512 --kafka-sasl-user blueprint`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := df.check(cmd); err != nil {
				return err
			}
			sec, parts, warnings, err := kf.security(cmd, len(brokers) > 0, os.Getenv)
			if err != nil {
				return err
			}
			var kc *service.KafkaConfig
			state := df.state
			switch {
			case len(brokers) > 0:
				if !service.ValidKafkaRole(role) {
					return usageErr("--role %q: want all, ingest, process or deliver", role)
				}
				kc = &service.KafkaConfig{Brokers: brokers, Role: role, Partitions: parts, Security: sec, InstanceID: instanceID, TakeOver: takeOver}
				if role == "process" || role == "deliver" {
					if takeOver {
						return usageErr("--kafka-take-over is of the process that owns the state (role all or ingest), not of role %s", role)
					}
					// No state: integrations come from the integrations topic.
					for _, f := range []string{"state", "ingest-listen"} {
						if cmd.Flags().Changed(f) {
							return usageErr("--%s is not used by role %s (it keeps no state and takes no events): run it on the process with role ingest or all", f, role)
						}
					}
					state = ""
				}
			case cmd.Flags().Changed("role"), cmd.Flags().Changed("kafka-instance-id"), cmd.Flags().Changed("kafka-take-over"):
				return usageErr("--role, --kafka-instance-id and --kafka-take-over need --kafka-brokers (they are of Kafka mode)")
			}
			log, err := df.logger(a.stderr)
			if err != nil {
				return err
			}
			if sec != nil {
				sec.Logger = log
			}
			for _, w := range warnings {
				log.Warn(w)
			}
			tuneGC()
			cat, err := a.catalog()
			if err != nil {
				return err
			}
			svc, err := service.New(service.Config{
				StateDir:      state,
				SecretKeyFile: keyFile,
				AdminListen:   adminListen,
				IngestListen:  ingestListen,
				Catalog:       cat,
				Delivery:      df.options(log, nil, 0),
				AdminEmail:    os.Getenv("BLUEPRINT_ADMIN_EMAIL"),
				AdminPassword: os.Getenv("BLUEPRINT_ADMIN_PASSWORD"),
				Kafka:         kc,
				Logger:        log,
			})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if state == "" {
				fmt.Fprintf(a.stdout, "serving: admin http://%s, kafka role %s, integrations from the integrations topic, no state\n", svc.AdminAddr(), role)
			} else {
				fmt.Fprintf(a.stdout, "serving: admin http://%s, ingest http://%s, state %s\n", svc.AdminAddr(), svc.IngestAddr(), state)
			}
			if err := svc.Run(ctx); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	df.register(cmd, true)
	// send's flags that mean nothing to a service: rejects go to the
	// dead-letter view, progress is the live page.
	_ = cmd.Flags().MarkHidden("rejects")
	_ = cmd.Flags().MarkHidden("progress")
	cmd.Flags().Lookup("state").Usage = "`DIR` holding the service's state: service.db, outbox.db and secret.key"
	// send's wording speaks of a run reading its input; serve's input is
	// ingestion, which waits, then answers 503.
	cmd.Flags().Lookup("max-pending").Usage = fmt.Sprintf("most requests of ingested events not final yet in the outbox (pending, retrying): beyond it ingestion waits, and answers 503 UNAVAILABLE after 10 s (1 to %d)", maxPendingMax)
	cmd.Flags().StringVar(&adminListen, "admin-listen", "127.0.0.1:8084", "management API, live page and metrics `ADDR`")
	cmd.Flags().StringVar(&ingestListen, "ingest-listen", "127.0.0.1:8080", "event ingestion `ADDR`")
	cmd.Flags().StringSliceVar(&brokers, "kafka-brokers", nil, "deliver through Kafka: seed brokers `host:port,...`")
	cmd.Flags().StringVar(&role, "role", "all", "Kafka `role` of this process: all, ingest, process or deliver (needs --kafka-brokers)")
	kf.register(cmd)
	cmd.AddCommand(a.rekeyCmd())
	cmd.Flags().StringVar(&instanceID, "kafka-instance-id", "", "stable `ID` of this process in its Kafka consumer groups (group.instance.id), unique per process: restarted with it, a process takes its partitions back at once")
	cmd.Flags().BoolVar(&takeOver, "kafka-take-over", false, "make this state the owner of the integrations topic that another state publishes (refused otherwise: ANOTHER_OWNER): its integrations replace the topic's, the other state's are deleted from it; stop the other state's process first, and use it once")
	cmd.Flags().StringVar(&keyFile, "secret-key-file", "", "`FILE` holding the key that encrypts secrets at rest (default STATE/secret.key, created 0600 when absent); roles process and deliver need a copy of the owner's")
	return cmd
}

// Serve's garbage collector, unless the environment chooses: see the
// command's help.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 256 << 20
)

// tuneGC sets serve's GC target and soft memory limit where GOGC and
// GOMEMLIMIT do not. Under load, the service's live heap is small (the
// outbox is on disk) and its garbage is per request: a higher GOGC cuts
// GC work, and the soft limit keeps the heap bounded all the same.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
}
