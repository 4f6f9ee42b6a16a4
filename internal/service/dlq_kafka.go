package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// The dead-letter API in Kafka mode reads the process's index of
// dlq-events (kafka.DLQIndex, STATE/dlq-index.db), with the embedded
// mode's shapes, order and codes: see docs/kafka.md#dead-letters-and-replay.

// replayTimeout bounds a replay: catching up with dlq-events, producing
// its records and their acknowledgement (a variable for tests).
var replayTimeout = 15 * time.Second

// scrub scrubs an event of the integration's current secrets before the
// index stores it (its producer scrubbed it already, with the revision of
// that time).
func (k *kafkaMode) scrub(integrationID string, event json.RawMessage) json.RawMessage {
	if in, ok := k.s.integration(integrationID); ok {
		return in.RedactJSON(event)
	}
	return event
}

// letterView is a dead letter of the index as the API shows it: the
// embedded mode's deadLetterView. A dead delivery's created_at is when it
// first died, updated_at when it last did.
func (k *kafkaMode) letterView(dl kafka.DeadLetter, withEvent bool) deadLetterView {
	v := deadLetterView{ID: dl.ID, Kind: dl.Kind, IntegrationID: dl.IntegrationID, Error: dl.Error, Details: dl.Details, Fields: dl.Fields,
		CreatedAt: dl.FirstAt, UpdatedAt: dl.At}
	if v.Fields == nil {
		v.Fields = []string{}
	}
	in, bound := k.s.integration(dl.IntegrationID)
	if dl.Kind == kafka.KindDelivery {
		v.Status, v.Attempts, v.MessageID = dl.Status, dl.Attempts, dl.MessageID
		if bound {
			v.MessageID = in.Redact(v.MessageID)
		}
	} else {
		v.CreatedAt = dl.At
	}
	if withEvent {
		switch {
		case len(dl.OriginalEvent) == 0:
			v.OriginalEvent = json.RawMessage(`null`)
		case bound:
			v.OriginalEvent = json.RawMessage(in.RedactJSON(dl.OriginalEvent))
		default:
			// Scrubbed by its producer, and again when it was indexed.
			v.OriginalEvent = dl.OriginalEvent
		}
	}
	return v
}

// describe adds to the dead deliveries of a page what their request is
// with the integration's current revision (what a replay sends): method,
// URL (redacted) and the vendor's event name. A dead letter whose event no
// longer makes that request is shown without them.
func (k *kafkaMode) describe(vs []deadLetterView, events map[string]kafka.DeadLetter) {
	for i := range vs {
		v := &vs[i]
		dl, ok := events[v.ID]
		if !ok || v.Kind != kafka.KindDelivery || dl.Unreadable != "" || len(dl.OriginalEvent) == 0 || dl.OriginalEvent[0] != '{' {
			continue
		}
		in, bound := k.s.integration(v.IntegrationID)
		if !bound {
			continue
		}
		res := in.Evaluate(dl.OriginalEvent)
		if res.Outcome != runtime.Deliver || dl.Request >= len(res.Requests) {
			continue
		}
		req := res.Requests[dl.Request]
		v.Method, v.URL, v.VendorEvent = req.Method, in.RedactURL(req, req.URL), res.VendorEvent
	}
}

// deadLetters lists an integration's dead letters (kind "" for both), in
// the embedded view's order.
func (k *kafkaMode) deadLetters(id, kind string) ([]deadLetterView, map[string]kafka.DeadLetter, error) {
	dls, err := k.dlq.List(id)
	if err != nil {
		return nil, nil, err
	}
	var out []deadLetterView
	by := make(map[string]kafka.DeadLetter, len(dls))
	for _, dl := range dls {
		if kind != "" && dl.Kind != kind {
			continue
		}
		out = append(out, k.letterView(dl, false))
		by[dl.ID] = dl
	}
	return out, by, nil
}

// deadLetter shows one, with its event.
func (k *kafkaMode) deadLetter(id, item string) (deadLetterView, error) {
	dl, err := k.dlq.Get(id, item)
	if errors.Is(err, kafka.ErrNotFound) {
		return deadLetterView{}, errorf(http.StatusNotFound, "NOT_FOUND", "no dead letter %q in integration %s", item, id)
	} else if err != nil {
		return deadLetterView{}, err
	}
	vs := []deadLetterView{k.letterView(dl, true)}
	k.describe(vs, map[string]kafka.DeadLetter{dl.ID: dl})
	return vs[0], nil
}

// binding is the registry's binding of an integration.
func (k *kafkaMode) binding(id string) (delivery.Binding, bool) {
	for _, b := range k.reg.Bindings() {
		if b.Name == id {
			return b, true
		}
	}
	return delivery.Binding{}, false
}

// replay replays dead letters of an integration (ids nil: all) through
// the index (kafka.DLQIndex.Replay) and reports the rejects' new
// decisions as the processor would.
func (k *kafkaMode) replay(ctx context.Context, id string, ids []string) (int, error) {
	b, ok := k.binding(id)
	if !ok {
		return 0, errorf(http.StatusConflict, "INTEGRATION_DISABLED", "integration %s is disabled: enable it before replaying", id)
	}
	k.mu.Lock()
	k.ensure([]delivery.Binding{b}) // its delivery topic, in a process whose roles did not create it
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, replayTimeout)
	defer cancel()
	res, err := k.dlq.Replay(ctx, b, ids, k.s.cfg.Now().UTC())
	switch {
	case errors.Is(err, kafka.ErrNotFound):
		var nf *kafka.NotFoundError
		if errors.As(err, &nf) {
			return 0, unknownDeadLetters(id, nf.IDs)
		}
		return 0, errorf(http.StatusNotFound, "NOT_FOUND", "ids names an item that is not a dead letter of integration %s: nothing was replayed", id)
	case errors.Is(err, kafka.ErrUnavailable):
		k.log.Warn("dead letters not replayed: Kafka unavailable", "integration", id, "error", err.Error())
		return 0, &apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE",
			Message: "Kafka did not answer in time: the dead letters were not marked replayed (they stay listed); try again", RetryAfter: 5 * time.Second}
	case err != nil:
		return 0, err
	}
	for _, d := range res.Decisions {
		k.s.onDecision(d)
	}
	return res.Replayed, nil
}

// deadDeliveries counts an integration's listed dead deliveries.
func (k *kafkaMode) deadDeliveries(id string) (int, error) {
	dls, err := k.dlq.List(id)
	n := 0
	for _, dl := range dls {
		if dl.Kind == kafka.KindDelivery {
			n++
		}
	}
	return n, err
}
