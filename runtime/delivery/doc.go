// Package delivery is the pipeline that takes events to vendors: it reads
// or is fed events, evaluates each for one or more bound integrations,
// writes the requests to a durable outbox (an outbox.Queue) before their
// first attempt, delivers them with a send.Worker (retries with backoff,
// Retry-After, dead letters), and reports what became of each: the
// decision for every event and integration, every attempt, and the final
// state of every request, by its outbox item ID.
//
// 'blueprint send' and 'blueprint dlq replay' are this package with flags
// around it; a service feeds it from its ingestion endpoint, and a Kafka
// consumer from its topic.
//
//	p, err := delivery.New(queue, delivery.Options{...}, delivery.Binding{Name: "int_1", Ref: "button@0.1.0", Integration: in})
//	err = p.Start(ctx)                 // purges by Retention, then delivers until Close
//	err = p.Feed(ctx, event1, event2)  // returns once the requests are durable
//	...
//	err = p.Close()                    // in-flight attempts finish; the rest waits in the outbox
//
// Run does it all for a finite input (NDJSON or one JSON value, read with
// Reader): it feeds every event read, waits until each request it fed is
// final, and returns the Summary.
//
// # Guarantees
//
// Nothing acknowledged is lost: Feed returns only once the requests of its
// events are stored in the outbox (fsync'd, for outbox.Bolt), and a request
// in the outbox is delivered or becomes a dead letter, whatever happens to
// the process in between (a later pipeline on the same outbox picks it up).
// Each event's fate is known: every event fed is, for every integration,
// delivered (Decision, then the final state of each of its requests),
// skipped or rejected (Decision; rejects also go to Options.Rejects in the
// shape of the platform's dlq-events), and counted in the Summary. An
// interrupted Run (its ctx done) stops reading, still enqueues every event
// it has read, lets the attempts in flight finish within Options.Grace and
// leaves the rest pending in the outbox; Summary.Pending says how many.
// The same event fed again (same message_id, or the same bytes) is the
// same request, sent once while the outbox remembers it (Retention); one
// final already before this pipeline started is counted apart
// (Summary.AlreadyDelivered and the like), never as delivered again.
//
// # Backpressure
//
// Feed waits while more than Options.MaxPending requests it fed are not
// final yet, so a large input is not copied into the outbox ahead of
// delivery, and memory (which holds the IDs of those requests only) stays
// bounded whatever the input's length. A batch larger than MaxPending goes
// alone. A service gives Feed a context with a deadline and answers 429 or
// 503 when it runs out.
//
// # What a run waits for
//
// Drain and Run wait for the requests this pipeline fed or replayed, never
// for other pending items of the outbox (another integration's, or retries
// left by an earlier run that are not due): those are delivered when they
// are due while the pipeline runs, and otherwise left for a later one. A
// request whose stored record the outbox can no longer read (Bolt moves it
// to its quarantine) is not waited for either: it counts in
// Summary.Pending, and the same event fed again is enqueued anew.
package delivery
