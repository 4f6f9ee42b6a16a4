package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// deadLetterView is one entry of an integration's dead-letter view: a
// request whose attempts ran out or that failed permanently (kind
// "delivery"), or an event the integration rejected (kind "reject"), in
// the shape of the platform's dlq-events (error, details, fields,
// integration_id, original_event), secrets redacted.
type deadLetterView struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	IntegrationID string          `json:"integration_id"`
	Error         string          `json:"error"`
	Details       string          `json:"details"`
	Fields        []string        `json:"fields"`
	Status        int             `json:"status,omitempty"`
	Attempts      int             `json:"attempts,omitempty"`
	MessageID     string          `json:"message_id,omitempty"`
	VendorEvent   string          `json:"vendor_event,omitempty"`
	Method        string          `json:"method,omitempty"`
	URL           string          `json:"url,omitempty"`
	OriginalEvent json.RawMessage `json:"original_event,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}

// deadItems lists an integration's dead outbox items, oldest first.
func (s *Service) deadItems(ctx context.Context, id string) ([]*outbox.Item, error) {
	return s.itemsOf(ctx, id, outbox.Dead)
}

// itemsOf lists an integration's outbox items in a state, oldest first.
func (s *Service) itemsOf(ctx context.Context, id string, state outbox.State) ([]*outbox.Item, error) {
	var out []*outbox.Item
	cursor := ""
	for {
		items, next, err := s.box.List(ctx, state, cursor, 500)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if it.Integration == id {
				out = append(out, it)
			}
		}
		if next == "" {
			return out, nil
		}
		cursor = next
	}
}

func (s *Service) itemView(it *outbox.Item, withEvent bool) deadLetterView {
	v := deadLetterView{ID: it.ID, Kind: "delivery", IntegrationID: it.Integration, Error: "delivery_failed", Details: it.LastError, Fields: []string{},
		Status: it.LastStatus, Attempts: it.Attempts, MessageID: it.MessageID, VendorEvent: it.VendorEvent, Method: it.Method, URL: it.URL,
		CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt}
	if withEvent {
		if in, ok := s.integration(it.Integration); ok {
			v.OriginalEvent = json.RawMessage(in.RedactJSON(it.Event))
		} else {
			// Without its bound config the event cannot be scrubbed of the
			// integration's secrets: it is not shown.
			v.OriginalEvent = json.RawMessage(`null`)
			v.Details += " (the event is shown while the integration is enabled)"
		}
	}
	return v
}

func rejectView(r *store.Reject) deadLetterView {
	f := r.Fields
	if f == nil {
		f = []string{}
	}
	return deadLetterView{ID: r.ID, Kind: "reject", IntegrationID: r.IntegrationID, Error: r.Error, Details: r.Details, Fields: f,
		OriginalEvent: r.OriginalEvent, CreatedAt: r.CreatedAt, UpdatedAt: r.CreatedAt}
}

// dlqList answers GET /v1/admin/integrations/{id}/dlq: dead deliveries
// (oldest first), then rejects (newest first); ?kind=delivery|reject
// narrows it. Each entry of the page carries its original_event (secrets
// scrubbed), as the platform's dlq-events do.
func (s *Service) dlqList(w http.ResponseWriter, r *http.Request) error {
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	cursor, limit, err := paging(r)
	if err != nil {
		return err
	}
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != "delivery" && kind != "reject" {
		return errorf(http.StatusBadRequest, "INVALID_PARAMETER", "kind must be delivery or reject, not %q", kind)
	}
	if s.kafka != nil {
		all, events, err := s.kafka.deadLetters(it.ID, kind)
		if err != nil {
			return err
		}
		p, err := pageOf(all, cursor, limit)
		if err != nil {
			return err
		}
		s.kafka.describe(p.Data, events)
		for i := range p.Data {
			if dl, ok := events[p.Data[i].ID]; ok {
				p.Data[i].OriginalEvent = s.kafka.letterView(dl, true).OriginalEvent
			}
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
	var all []deadLetterView
	dead := map[string]*outbox.Item{}
	if kind != "reject" {
		items, err := s.deadItems(r.Context(), it.ID)
		if err != nil {
			return err
		}
		for _, x := range items {
			all = append(all, s.itemView(x, false))
			dead[x.ID] = x
		}
	}
	if kind != "delivery" {
		rs, err := s.rejectsOf(it.ID)
		if err != nil {
			return err
		}
		for _, x := range rs {
			all = append(all, rejectView(x))
		}
	}
	p, err := pageOf(all, cursor, limit)
	if err != nil {
		return err
	}
	// The events of this page only: a dead delivery's is scrubbed with
	// the integration's current config as it is shown (rejects were
	// scrubbed when stored).
	for i := range p.Data {
		if x := dead[p.Data[i].ID]; x != nil {
			p.Data[i] = s.itemView(x, true)
		}
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Service) dlqGet(w http.ResponseWriter, r *http.Request) error {
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	id := r.PathValue("item")
	if s.kafka != nil {
		v, err := s.kafka.deadLetter(it.ID, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, v)
		return nil
	}
	if strings.HasPrefix(id, "rej_") {
		rj, err := s.st.GetReject(it.ID, id)
		if err != nil {
			return errorf(http.StatusNotFound, "NOT_FOUND", "no dead letter %q in integration %s", id, it.ID)
		}
		writeJSON(w, http.StatusOK, rejectView(rj))
		return nil
	}
	x, err := s.box.Get(r.Context(), id)
	if err != nil || x.Integration != it.ID || x.State != outbox.Dead {
		return errorf(http.StatusNotFound, "NOT_FOUND", "no dead letter %q in integration %s", id, it.ID)
	}
	writeJSON(w, http.StatusOK, s.itemView(x, true))
	return nil
}

// dlqReplay answers POST .../dlq/replay {"ids":[...]} or {"all":true}:
// dead deliveries are sent again with the integration's current config;
// rejected events are evaluated again (a corrected config may take them).
func (s *Service) dlqReplay(w http.ResponseWriter, r *http.Request) error {
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		IDs []string `json:"ids"`
		All bool     `json:"all"`
	}
	if err := decode(r, &body); err != nil {
		return err
	}
	if body.All == (len(body.IDs) > 0) {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_REPLAY", Message: `give {"ids":[...]} or {"all":true}`, Fields: []string{"ids", "all"}}
	}
	if _, ok := s.integration(it.ID); !ok {
		return errorf(http.StatusConflict, "INTEGRATION_DISABLED", "integration %s is disabled: enable it before replaying", it.ID)
	}
	if s.kafka != nil {
		ids := body.IDs
		if body.All {
			ids = nil // every one listed
		}
		n, err := s.kafka.replay(r.Context(), it.ID, ids)
		if err != nil {
			return err
		}
		s.log.Info("dead letters replayed", "integration", it.ID, "replayed", n)
		writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
		return nil
	}
	var itemIDs, rejectIDs []string
	if body.All {
		items, err := s.deadItems(r.Context(), it.ID)
		if err != nil {
			return err
		}
		for _, x := range items {
			itemIDs = append(itemIDs, x.ID)
		}
		rs, err := s.rejectsOf(it.ID)
		if err != nil {
			return err
		}
		for _, x := range rs {
			rejectIDs = append(rejectIDs, x.ID)
		}
	} else {
		for _, id := range body.IDs {
			if strings.HasPrefix(id, "rej_") {
				rejectIDs = append(rejectIDs, id)
			} else {
				itemIDs = append(itemIDs, id)
			}
		}
	}
	if !body.All {
		// Every ID named must be a dead letter of this integration (a
		// reject already replayed is no longer one); else nothing is
		// replayed and the answer names them all.
		var missing []string
		for _, id := range slices.Compact(slices.Sorted(slices.Values(body.IDs))) {
			var err error
			if strings.HasPrefix(id, "rej_") {
				_, err = s.st.GetReject(it.ID, id)
			} else {
				var x *outbox.Item
				if x, err = s.box.Get(r.Context(), id); err == nil && x.Integration != it.ID {
					err = outbox.ErrNotFound // another integration's is as unknown here
				}
			}
			switch {
			case errors.Is(err, store.ErrNotFound), errors.Is(err, outbox.ErrNotFound):
				missing = append(missing, id)
			case err != nil:
				return err
			}
		}
		if len(missing) > 0 {
			return unknownDeadLetters(it.ID, missing)
		}
	}
	replayed := 0
	if len(itemIDs) > 0 {
		rep, err := s.pipe.Replay(r.Context(), it.ID, itemIDs)
		var fe *delivery.ForeignError
		switch {
		case errors.Is(err, outbox.ErrNotFound), errors.As(err, &fe):
			// Another integration's item is as unknown here as a made-up ID.
			return errorf(http.StatusNotFound, "NOT_FOUND", "ids names an item that is not a dead letter of integration %s: nothing was replayed", it.ID)
		case err != nil:
			return err
		}
		replayed += rep.Replayed
	}
	for _, id := range rejectIDs {
		rj, err := s.st.GetReject(it.ID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		if len(rj.OriginalEvent) == 0 || rj.OriginalEvent[0] != '{' {
			continue // not an event that can be evaluated again
		}
		// Fed first, then taken out of the view: an event that cannot be
		// fed stays a dead letter rather than vanish (fed twice at worst,
		// and the same messageId is not delivered twice).
		if err := s.pipe.FeedTo(r.Context(), it.ID, rj.OriginalEvent); err != nil {
			return err
		}
		if err := s.st.DeleteReject(it.ID, id); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		replayed++
	}
	s.log.Info("dead letters replayed", "integration", it.ID, "replayed", replayed)
	writeJSON(w, http.StatusOK, map[string]int{"replayed": replayed})
	return nil
}

// unknownDeadLetters is the 404 of a replay naming IDs that are not dead
// letters of the integration: the message and error.ids name them all.
func unknownDeadLetters(integration string, ids []string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "NOT_FOUND", IDs: ids,
		Message: fmt.Sprintf("not dead letters of integration %s: %s; nothing was replayed", integration, strings.Join(ids, ", "))}
}

// rejectsOf lists an integration's rejects, newest first (the store keeps
// at most store.MaxRejects of them).
func (s *Service) rejectsOf(id string) ([]*store.Reject, error) {
	var out []*store.Reject
	next := ""
	for {
		rs, n, err := s.st.ListRejects(id, next, 500)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		if n == "" {
			return out, nil
		}
		next = n
	}
}
