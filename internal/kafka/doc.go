// Package kafka runs `blueprint serve`'s delivery on Kafka (DESIGN §7):
// the platform's topics, and three roles that each scale by adding
// processes to their consumer group.
//
//   - Ingester produces accepted events to raw-events (acks=all, idempotent
//     producer) and returns only once the brokers have acknowledged them.
//   - Processor is a consumer group on raw-events: it evaluates every bound
//     integration, produces each deliverable request to
//     delivery-{integration_id} and each reject to dlq-events, and commits
//     the raw-events offsets only after those produces are acknowledged.
//   - Deliverer is a consumer group per integration on delivery-{id} and
//     delivery-retry-{id}: it rebuilds each request from its event with the
//     integration's current revision, sends it with send.Sender and the
//     blueprint's response rules, and commits a record's offset only once
//     it is final (delivered, duplicate, dead-lettered to dlq-events) or
//     handed on to the retry topic (acknowledged).
//
// No record holds a credential: delivery records carry the event (an event
// that carries a secret config value is rejected, as the embedded outbox
// does), the integration ID, the request index and the outbox item ID of
// send.Items; dead letters and rejects carry the event with the
// integration's secrets scrubbed. See docs/kafka.md for topics, record
// formats, the retry design and the guarantees.
package kafka
