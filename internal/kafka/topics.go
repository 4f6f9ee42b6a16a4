package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/conv"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// The platform's topics (DESIGN §7).
const (
	RawEvents = "raw-events"
	DLQEvents = "dlq-events"
)

// DeliveryTopic holds the built requests of one integration (no secret).
func DeliveryTopic(integrationID string) string { return "delivery-" + integrationID }

// RetryTopic holds the requests of one integration waiting for a later
// attempt, each with its due time.
func RetryTopic(integrationID string) string { return "delivery-retry-" + integrationID }

// EventKey is the partition key of an event: anonymousId, else userId,
// else messageId (the snake_case spellings too), so that one user's events
// stay in order. An id is read as the blueprints read ids
// (docs/vendors-common.md): a string as is, a number as its decimal text
// by value (42, 42.0 and "42" are one user), a boolean as its text; an
// empty string, an object, an array or null is no id. nil when the event
// has none.
func EventKey(event []byte) []byte {
	for _, path := range []string{"anonymousId", "anonymous_id", "userId", "user_id", "messageId", "message_id"} {
		switch v := gjson.GetBytes(event, path); v.Type {
		case gjson.String:
			if v.Str != "" {
				return []byte(v.Str)
			}
		case gjson.Number:
			if text, ok := conv.DecimalText(v.Raw); ok {
				return []byte(text)
			}
			return []byte(v.Raw)
		case gjson.True, gjson.False:
			return []byte(v.Raw)
		}
	}
	return nil
}

// DeliveryRecord is the value of a record of delivery-{id} and
// delivery-retry-{id}. It holds what the request is rebuilt from and a
// redacted view of the request as built (Built), never the request sent:
// its credentials are added at send time, from the integration's current
// revision.
type DeliveryRecord struct {
	// ID is the outbox item ID (send.Items): the integration, the event's
	// message id (or the hash of its bytes) and the request index. The
	// same request redelivered after a crash or rebalance has the same ID.
	ID            string `json:"id"`
	IntegrationID string `json:"integration_id"`
	// Blueprint is the catalog ref (key@version) and Variant the variant
	// the request was built with, for inspection; the deliverer uses the
	// integration's current revision whatever they say.
	Blueprint string `json:"blueprint"`
	Variant   string `json:"variant"`
	// Request is the index of the request among the event's requests.
	Request     int    `json:"request"`
	MessageID   string `json:"message_id,omitempty"`
	VendorEvent string `json:"vendor_event,omitempty"`
	// Event is the raw event JSON.
	Event json.RawMessage `json:"event"`
	// CreatedAt starts the retry window (Policy.MaxAge).
	CreatedAt time.Time `json:"created_at"`
	// Attempts made so far (0 on delivery-{id}).
	Attempts int `json:"attempts"`
	// DueAt is when the next attempt is due (retry topic only).
	DueAt time.Time `json:"due_at,omitzero"`
	// LastStatus and LastError describe the last attempt, redacted.
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Built is the request as the processor built it, redacted as every
	// view of a request is (auth as "Basic ***", secret fields and query
	// parameters as ***, any secret config value replaced): what the
	// platform's consumers of delivery-{id} read. The deliverer never
	// sends it: it rebuilds the request from Event with the revision
	// current at send time, which adds the credentials in memory only.
	// Left out when the record would be over MaxRecordBytes with it, and
	// on records a dead-letter replay makes.
	Built *BuiltRequest `json:"built,omitempty"`
}

// BuiltRequest is a built vendor request without its secrets.
type BuiltRequest struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	// Body is the body as text, in its encoding (JSON, form, ...).
	Body string `json:"body"`
}

// MaxRecordBytes bounds the key and value of a record the roles produce
// to delivery-{id}, delivery-retry-{id} and dlq-events, and of a record a
// deliverer accepts from its topics. It is well below the brokers' default
// max.message.bytes (1 MiB) and kgo's batch bound (1,000,012 bytes), so
// that a record read (and produced again, with a last_error, or as a dead
// letter) is never refused by the brokers: a refused produce would stop
// its role on the same record at every restart. Events are at most 64 KiB
// at ingest, so a record of a real event is far below it.
const MaxRecordBytes = 512 << 10

// check says why a record read from a delivery topic of integration is not
// one a processor or a replay makes (nil: it is): a deliverer passes such
// a record over, logged, rather than act on it.
func (r *DeliveryRecord) check(integration string) error {
	switch {
	case r.ID == "":
		return errors.New("no item id")
	case len(r.ID) > maxIDLen:
		return fmt.Errorf("an item id of %d bytes (at most %d)", len(r.ID), maxIDLen)
	case r.IntegrationID != integration:
		return fmt.Errorf("integration_id %.64q is not this topic's %q", r.IntegrationID, integration)
	case r.Request < 0:
		return fmt.Errorf("request index %d", r.Request)
	case r.Attempts < 0:
		return fmt.Errorf("attempts %d", r.Attempts)
	}
	return nil
}

// DeadRecord is a dead delivery on dlq-events: the platform's shape
// (delivery.RejectRecord's fields) plus what the service's DLQ view shows
// of a delivery. Rejected events go to dlq-events as a
// delivery.RejectRecord.
type DeadRecord struct {
	delivery.RejectRecord
	// Kind is "delivery" (attempts ran out, or a permanent failure).
	Kind     string `json:"kind"`
	ItemID   string `json:"item_id"`
	Request  int    `json:"request"`
	Status   int    `json:"status"`
	Attempts int    `json:"attempts"`
}

// Dead-letter error codes of deliveries.
const (
	ErrorDeliveryFailed    = "delivery_failed"    // a permanent failure (4xx)
	ErrorAttemptsExhausted = "attempts_exhausted" // retries ran out
	ErrorNotDeliverable    = "not_deliverable"    // the current revision no longer delivers it
)

// Config names the brokers and the client options every role uses.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Opts are more client options for every client.
	Opts []kgo.Opt
	// Security is TLS and SASL for every client (nil: plaintext).
	Security *Security
	// InstanceID, when set, makes every consumer group member static
	// (Kafka's group.instance.id): a process restarted with the same ID
	// within the session timeout takes its partitions back at once, with
	// no rebalance. Each process of a deployment needs its own, stable
	// across restarts (a pod name, say). Without it, the partitions of a
	// process that died wait for the session timeout (45 s) before
	// another member gets them.
	InstanceID string
}

// member is the options of a consumer group member of group.
func (c Config) member(group string) []kgo.Opt {
	opts := []kgo.Opt{kgo.ConsumerGroup(group)}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	return opts
}

func (c Config) client(extra ...kgo.Opt) (*kgo.Client, error) {
	cl, _, err := c.watchedClient(nil, extra...)
	return cl, err
}

// watchedClient is client, with the watch of its connections (see
// connWatch); onAuth, when set, sees each authentication failure.
func (c Config) watchedClient(onAuth func(*AuthError), extra ...kgo.Opt) (*kgo.Client, *connWatch, error) {
	if len(c.Brokers) == 0 {
		return nil, nil, errors.New("kafka: no brokers")
	}
	w := newConnWatch(c.Security, onAuth)
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		// acks=all with the idempotent producer (kgo's default, stated).
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	}
	opts = append(opts, c.Security.opts(w)...)
	opts = append(opts, c.Opts...)
	opts = append(opts, extra...)
	cl, err := kgo.NewClient(opts...)
	return cl, w, err
}

// EnsureTopics creates raw-events, dlq-events and each integration's
// delivery and retry topics with the given partitions (replication
// factor: the broker's default), leaving those that exist alone. Brokers
// that refuse the credentials twice make it return an *AuthError at once.
// Where the client may not create topics (managed Kafka whose operators
// create them: TOPIC_ or CLUSTER_AUTHORIZATION_FAILED), a topic that
// exists is used as it is, and one that does not is an error naming it.
func EnsureTopics(ctx context.Context, cfg Config, partitions int32, integrationIDs ...string) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cl, w, err := cfg.watchedClient(authFailFast(cancel))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := []string{RawEvents, DLQEvents}
	for _, id := range integrationIDs {
		topics = append(topics, DeliveryTopic(id), RetryTopic(id))
	}
	res, err := adm.CreateTopics(ctx, partitions, -1, nil, topics...)
	if err != nil {
		return explain(ctx, w, fmt.Errorf("kafka: create topics: %w", err))
	}
	var refused []string
	why := map[string]error{}
	for _, r := range res.Sorted() {
		switch {
		case r.Err == nil, errors.Is(r.Err, kerr.TopicAlreadyExists):
		case errors.Is(r.Err, kerr.TopicAuthorizationFailed), errors.Is(r.Err, kerr.ClusterAuthorizationFailed):
			refused = append(refused, r.Topic) // may exist: made by the operators
			why[r.Topic] = r.Err
		default:
			return fmt.Errorf("kafka: create topic %s: %w", r.Topic, r.Err)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	tds, err := adm.ListTopics(ctx, refused...)
	if err != nil {
		return explain(ctx, w, fmt.Errorf("kafka: topics %s: %w", strings.Join(refused, ", "), err))
	}
	for _, t := range refused {
		td, ok := tds[t]
		if !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("kafka: topic %s does not exist and could not be created (%v): create it, or allow this client to", t, why[t])
		}
		if td.Err != nil {
			return fmt.Errorf("kafka: topic %s: %w", t, td.Err)
		}
	}
	return nil
}
