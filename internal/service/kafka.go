package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// KafkaConfig puts the service's delivery on Kafka (docs/kafka.md): the
// ingest listener produces to raw-events, and the process and deliver
// roles run in this process, as Role says.
type KafkaConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Role is "all" (the default), "ingest", "process" or "deliver".
	Role string
	// Partitions of the topics the service creates (default 3); existing
	// topics are left alone.
	Partitions int32
	// Opts are more client options for every client.
	Opts []kgo.Opt
	// Security is TLS and SASL for every client (nil: plaintext).
	Security *kafka.Security
	// InstanceID makes this process a static member of its consumer
	// groups (kafka.Config.InstanceID): restarted with the same ID, it
	// takes its partitions back at once.
	InstanceID string
	// TakeOver lets the process that owns the state start on an
	// integrations topic another state publishes (refused otherwise,
	// ANOTHER_OWNER): its integrations replace the topic's, the other
	// state's are tombstoned (docs/kafka.md, "One owner").
	TakeOver bool
}

// Roles of a Kafka-mode process.
var kafkaRoles = []string{"all", "ingest", "process", "deliver"}

// ValidKafkaRole reports whether role is one of all, ingest, process,
// deliver.
func ValidKafkaRole(role string) bool { return slices.Contains(kafkaRoles, role) }

// kafkaMode is the Kafka side of a service: the ingester, the registry
// the roles read (filled by rebind), and the role goroutines.
type kafkaMode struct {
	cfg       kafka.Config
	role      string
	parts     int32
	reg       *kafka.StaticRegistry
	ing       *kafka.Ingester // nil unless the role ingests
	met       *kafkaMetrics
	dlq       *kafka.DLQIndex // the dead-letter API's index of dlq-events (roles all and ingest; nil in process and deliver)
	closeOnce sync.Once
	sender    *send.Sender
	policy    send.Policy
	conc      int
	s         *Service
	log       *slog.Logger
	config    topicConfig // the integrations topic: published or followed (kafkaconfig.go)
	live      *liveKafka  // the live topics (livekafka.go); nil when they are not available
	takeOver  bool        // KafkaConfig.TakeOver

	mu      sync.Mutex
	ensured map[string]bool // integrations whose topics exist
	ctx     context.Context // the roles' context, nil until start
	cancel  context.CancelFunc
	dels    map[string]context.CancelFunc // running deliverers
	wg      sync.WaitGroup
}

func (k *kafkaMode) ingests() bool   { return k.role == "all" || k.role == "ingest" }
func (k *kafkaMode) processes() bool { return k.role == "all" || k.role == "process" }
func (k *kafkaMode) delivers() bool  { return k.role == "all" || k.role == "deliver" }

// follows says whether the role learns integrations from the
// integrations topic (process, deliver) rather than owning the state
// that publishes them (all, ingest).
func follows(role string) bool { return role == "process" || role == "deliver" }

// newKafka checks the config, creates raw-events, dlq-events and the
// integrations topic, opens the dead-letter index (the owner of the
// state), connects the ingester when the role ingests, and reads the
// integrations topic (openConfig). key is the deployment's
// secret key, which seals secret config on the integrations topic.
func newKafka(s *Service, kc *KafkaConfig, key []byte) (*kafkaMode, error) {
	if len(kc.Brokers) == 0 {
		return nil, errors.New("serve: kafka: no brokers")
	}
	role := kc.Role
	if role == "" {
		role = "all"
	}
	if !ValidKafkaRole(role) {
		return nil, fmt.Errorf("serve: kafka: role %q: want all, ingest, process or deliver", role)
	}
	parts := kc.Partitions
	if parts <= 0 {
		parts = 3
	}
	so := s.cfg.Delivery.Sender
	if so.Concurrency == 0 {
		so.Concurrency = s.cfg.Delivery.Concurrency
	}
	if so.Logger == nil {
		so.Logger = s.log
	}
	so.Metrics = s
	met := newKafkaMetrics(s.metrics.reg)
	opts := append(slices.Clip(kc.Opts), kgo.WithHooks(met))
	k := &kafkaMode{cfg: kafka.Config{Brokers: kc.Brokers, Opts: opts, Security: kc.Security, InstanceID: kc.InstanceID}, role: role, parts: parts, reg: kafka.NewRegistry(), met: met,
		takeOver: kc.TakeOver,
		sender:   send.New(so), policy: s.cfg.Delivery.Policy, conc: s.cfg.Delivery.Concurrency, s: s, log: s.log,
		ensured: map[string]bool{}, dels: map[string]context.CancelFunc{}}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, k.cfg, parts); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := kafka.EnsureIntegrationsTopic(ctx, k.cfg); err != nil {
		return nil, &StartError{Code: "INTEGRATIONS_TOPIC", Message: err.Error()}
	}
	if err := met.watch(k); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	var err error
	if !follows(role) { // the dead-letter API is the owner's: roles process and deliver keep no state
		k.dlq, err = kafka.OpenDLQIndex(kafka.DLQIndexOptions{Config: k.cfg, Path: filepath.Join(s.cfg.StateDir, kafka.DLQIndexFile),
			Scrub: k.scrub, ConfigOffset: k.config.at.Load, Logger: s.log.With("role", "dlq"), Now: s.cfg.Now})
		if err != nil {
			k.close()
			return nil, fmt.Errorf("serve: %w", err)
		}
	}
	if k.ingests() {
		if k.ing, err = kafka.NewIngester(k.cfg); err != nil {
			k.close()
			return nil, fmt.Errorf("serve: %w", err)
		}
	}
	if err := k.openConfig(key); err != nil {
		k.close()
		return nil, err
	}
	k.openLive()
	return k, nil
}

// set hands the bound integrations to the roles: their topics are created
// first (a processor never sees a binding without its delivery topic,
// unless creating it failed, logged), then the registry is swapped whole
// (StaticRegistry.Set: an event is evaluated against the old set or the
// new one), then deliverers are started for new integrations and stopped
// for those gone (their records wait on their topics).
func (k *kafkaMode) set(bs []delivery.Binding) { k.setAt(-1, nil, bs) }

// setAt is set for a role that follows the integrations topic: the
// registry has applied it up to offset at, and blocked says why an
// enabled integration is not bound (kafka.StaticRegistry.SetAt). A
// negative at is set's.
func (k *kafkaMode) setAt(at int64, blocked error, bs []delivery.Binding) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.processes() || k.delivers() {
		k.ensure(bs)
	}
	if at < 0 {
		k.reg.Set(bs...)
	} else {
		k.reg.SetAt(at, blocked, bs...)
	}
	k.reconcile()
}

// ensure creates the topics of the integrations not yet seen (k.mu held).
func (k *kafkaMode) ensure(bs []delivery.Binding) {
	var ids []string
	for _, b := range bs {
		if !k.ensured[b.Name] {
			ids = append(ids, b.Name)
		}
	}
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := kafka.EnsureTopics(ctx, k.cfg, k.parts, ids...); err != nil {
		k.log.Error("kafka: integration topics not created; retried on the next change or processor restart", "integrations", ids, "error", err.Error())
		return
	}
	for _, id := range ids {
		k.ensured[id] = true
	}
}

// reconcile runs one deliverer per bound integration (k.mu held; nothing
// before start).
func (k *kafkaMode) reconcile() {
	if k.ctx == nil || !k.delivers() {
		return
	}
	want := map[string]bool{}
	for _, b := range k.reg.Bindings() {
		want[b.Name] = true
		if k.dels[b.Name] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(k.ctx)
		k.dels[b.Name] = cancel
		d := kafka.NewDeliverer(kafka.DelivererOptions{Config: k.cfg, Registry: k.reg, IntegrationID: b.Name, Sender: k.sender,
			Policy: k.policy, Concurrency: k.conc, Metrics: k.s, Logger: k.log.With("role", "deliver")})
		k.supervise(ctx, "deliver "+b.Name, d.Run)
	}
	for id, cancel := range k.dels {
		if !want[id] {
			cancel() // Run returns once its attempts in flight end; stop waits
			delete(k.dels, id)
		}
	}
}

// start runs the process and deliver roles until stop.
func (k *kafkaMode) start(ctx context.Context) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ctx, k.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if k.dlq != nil {
		k.supervise(k.ctx, "dlq index", k.dlq.Run)
	}
	if k.processes() {
		p := kafka.NewProcessor(kafka.ProcessorOptions{Config: k.cfg, Registry: k.reg, OnDecision: k.s.onDecision, Logger: k.log.With("role", "process")})
		k.supervise(k.ctx, "process", func(ctx context.Context) error {
			k.mu.Lock()
			// Every (re)start looks at every integration's topics again: a
			// produce that failed because one was deleted under the running
			// role stops the processor, and it must come back.
			clear(k.ensured)
			k.ensure(k.reg.Bindings())
			k.mu.Unlock()
			return p.Run(ctx)
		})
	}
	k.startConfig()
	k.startLive()
	k.reconcile()
}

// supervise runs f until ctx is done, again a second after each error.
func (k *kafkaMode) supervise(ctx context.Context, name string, f func(context.Context) error) {
	k.superviseUpTo(ctx, name, time.Second, f)
}

// superviseUpTo runs f until ctx is done, again after each error: a second
// after the first, twice as long after each next one, up to maxWait; a
// run that lasted a minute starts the count again. A part whose error
// does not go away by itself (a topic it may not read, say) so neither
// floods the log nor spins.
func (k *kafkaMode) superviseUpTo(ctx context.Context, name string, maxWait time.Duration, f func(context.Context) error) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		wait := time.Second
		for ctx.Err() == nil {
			start := time.Now()
			err := f(ctx)
			if time.Since(start) >= time.Minute {
				wait = time.Second
			}
			if err != nil && ctx.Err() == nil {
				k.log.Error("kafka role stopped; restarting in "+wait.String(), "role", name, "error", err.Error())
			}
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			if err != nil {
				wait = min(2*wait, max(maxWait, time.Second))
			}
		}
	}()
}

// stop stops the roles, waits for them, and disconnects the ingester.
func (k *kafkaMode) stop() {
	k.mu.Lock()
	if k.cancel != nil {
		k.cancel()
	}
	k.mu.Unlock()
	k.wg.Wait()
	k.close()
}

// close closes the clients and the dead-letter index, once. The fields
// stay set: a request still in flight (a handler past the admin server's
// shutdown deadline) reads them concurrently, and gets the closed
// client's or index's error, never a nil.
func (k *kafkaMode) close() {
	k.closeOnce.Do(func() {
		if k.ing != nil {
			k.ing.Close()
		}
		k.config.close()
		if k.live != nil {
			k.live.close()
		}
		k.met.close()
		if k.dlq != nil {
			if err := k.dlq.Close(); err != nil {
				k.log.Error("kafka: dlq index not closed cleanly", "error", err.Error())
			}
		}
	})
}
