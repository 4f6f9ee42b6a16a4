package service

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/docgen"
	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// masked stands for a secret config value in every answer; given back in
// a PATCH, it keeps the stored value.
const masked = "***"

// integrationView is an integration as the API shows it.
type integrationView struct {
	ID                string         `json:"id"`
	Vendor            string         `json:"vendor"`
	Version           string         `json:"version"`
	Name              string         `json:"name"`
	Variant           string         `json:"variant"`
	Enabled           bool           `json:"enabled"`
	Config            map[string]any `json:"config"`
	DeliveryMode      string         `json:"delivery_mode"`
	ConsentCategories []string       `json:"consent_categories"`
	SourceIDs         []string       `json:"source_ids"`
	Revision          revisionView   `json:"revision"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
}

type revisionView struct {
	RevisionNumber int            `json:"revision_number"`
	Name           string         `json:"name,omitempty"`
	Variant        string         `json:"variant"`
	Config         map[string]any `json:"config"`
	DeliveryMode   string         `json:"delivery_mode"`
	ChangeSummary  string         `json:"change_summary"`
	CreatedAt      time.Time      `json:"created_at"`
}

// blueprintOf compiles the blueprint an integration was installed from.
func (s *Service) blueprintOf(vendor, version string) (*engine.Blueprint, error) {
	bp, _, err := s.cfg.Catalog.Compile(vendor + "@" + version)
	if err != nil {
		return nil, err
	}
	return bp, nil
}

// secretKeys are the keys of bp's secret config.
func secretKeys(bp *engine.Blueprint) []string {
	var out []string
	for _, f := range bp.ConfigFields() {
		if f.Secret {
			out = append(out, f.Key)
		}
	}
	return out
}

// maskConfig copies config with every secret value shown as ***. Without
// the blueprint (known false: it is no longer in the catalog), which keys
// are secret is not known, and every value is masked.
func maskConfig(config map[string]any, secrets []string, known bool) map[string]any {
	out := make(map[string]any, len(config))
	for k, v := range config {
		if (!known || slices.Contains(secrets, k)) && v != nil && v != "" {
			v = masked
		}
		out[k] = v
	}
	return out
}

// consentCategories are the consent categories gating an integration.
func consentCategories(bp *engine.Blueprint, config map[string]any) []string {
	cb := compiler.Of(bp)
	out := []string{}
	switch {
	case cb.Consent != nil:
		out = append(out, cb.Consent.Category)
	case cb.ConsentConfig != "":
		v, _ := config[cb.ConsentConfig].(string)
		if v == "" {
			if f := cb.ConfigField(cb.ConsentConfig); f != nil {
				v, _ = f.Default.(string)
			}
		}
		if cs := cb.ConsentByOption[v]; cs != nil {
			out = append(out, cs.Category)
		}
	}
	return out
}

func (s *Service) view(in *store.Integration) (integrationView, error) {
	rev, err := s.st.GetRevision(in.ID, in.Revision)
	if err != nil {
		return integrationView{}, err
	}
	var secrets []string
	cats := []string{}
	bp, err := s.blueprintOf(in.Vendor, in.Version)
	if err == nil {
		secrets = secretKeys(bp)
		cats = consentCategories(bp, rev.Config)
	}
	cfg := maskConfig(rev.Config, secrets, err == nil)
	return integrationView{
		ID: in.ID, Vendor: in.Vendor, Version: in.Version, Name: in.Name, Variant: in.Variant, Enabled: in.Enabled,
		Config: cfg, DeliveryMode: in.DeliveryMode, ConsentCategories: cats, SourceIDs: nonNil(in.SourceIDs),
		Revision:  revisionView{RevisionNumber: rev.Number, Name: rev.Name, Variant: rev.Variant, Config: cfg, DeliveryMode: rev.DeliveryMode, ChangeSummary: rev.ChangeSummary, CreatedAt: rev.CreatedAt},
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}, nil
}

// bindConfig checks a variant and config the way Bind does: a refused one
// is 422 naming every key at fault (the variant as "variant").
func (s *Service) bindConfig(bp *engine.Blueprint, variant string, config map[string]any) (*runtime.Integration, error) {
	in, err := runtime.Bind(bp, variant, config, s.bindOptions()...)
	var ce *runtime.ConfigError
	switch {
	case err == nil:
		return in, nil
	case errors.As(err, &ce):
		return nil, &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_CONFIG", Message: ce.Error(), Fields: ce.Keys}
	case errors.Is(err, runtime.ErrUnknownVariant):
		return nil, &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_VARIANT", Message: err.Error(), Fields: []string{"variant"}}
	}
	return nil, errorf(http.StatusUnprocessableEntity, "INVALID_CONFIG", "%s", err.Error())
}

// bindOptions are Bind's options for this service: a url config value may
// be a private IP literal when the sender allows private receivers.
func (s *Service) bindOptions() []runtime.Option {
	return []runtime.Option{runtime.WithAllowPrivateAddresses(s.cfg.Delivery.Sender.AllowPrivateAddresses)}
}

// rebind binds every enabled integration's current revision and hands the
// set to the pipeline at once: an event is evaluated against the old set
// or the new one, never half of each.
func (s *Service) rebind() error {
	all, err := s.st.ListIntegrations()
	if err != nil {
		return err
	}
	var bs []delivery.Binding
	for _, it := range all {
		if !it.Enabled {
			continue
		}
		rev, err := s.st.GetRevision(it.ID, it.Revision)
		if err != nil {
			s.log.Error("integration has no readable revision; not delivering", "integration", it.ID, "error", err.Error())
			continue
		}
		bp, err := s.blueprintOf(it.Vendor, it.Version)
		if err != nil {
			s.log.Error("integration's blueprint does not compile; not delivering", "integration", it.ID, "blueprint", it.Vendor+"@"+it.Version, "error", err.Error())
			continue
		}
		in, err := runtime.Bind(bp, rev.Variant, rev.Config, s.bindOptions()...)
		if err != nil {
			s.log.Error("integration's config is refused; not delivering", "integration", it.ID, "error", err.Error())
			continue
		}
		bs = append(bs, delivery.Binding{Name: it.ID, Ref: it.Vendor + "@" + it.Version, Integration: in, Sources: it.SourceIDs})
	}
	s.setBound(bs)
	if s.kafka != nil {
		s.kafka.set(bs) // the local pipeline delivers nothing in Kafka mode
		// The processes of roles process and deliver learn it from the
		// integrations topic, before the change is answered.
		return s.publishIntegrations(all)
	}
	return s.pipe.SetBindings(bs...)
}

// setBound makes bs the bound integrations (s.bound).
func (s *Service) setBound(bs []delivery.Binding) {
	keep := make(map[string]bool, len(bs))
	for _, b := range bs {
		s.bound.Store(b.Name, b.Integration)
		keep[b.Name] = true
	}
	s.bound.Range(func(k, _ any) bool {
		if !keep[k.(string)] {
			s.bound.Delete(k)
		}
		return true
	})
}

// catalogList answers GET /v1/admin/integration-catalog: the newest
// version of every blueprint, as Catalog Vendor Objects, paged by
// ?cursor= and ?limit= like every list (DESIGN §6).
func (s *Service) catalogList(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := paging(r)
	if err != nil {
		return err
	}
	out := []docgen.VendorObject{}
	for _, k := range s.cfg.Catalog.Keys() {
		bp, err := s.latest(k)
		if err != nil {
			continue
		}
		out = append(out, docgen.Vendor(bp))
	}
	p, err := pageOf(out, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// latest compiles the newest version of a catalog key.
func (s *Service) latest(key string) (*engine.Blueprint, error) {
	es := s.cfg.Catalog.Entries(key)
	if len(es) == 0 {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "the catalog has no blueprint %q", key)
	}
	bp, _, err := s.cfg.Catalog.Compile(es[len(es)-1].Ref())
	if err != nil {
		return nil, errorf(http.StatusInternalServerError, "INTERNAL", "blueprint %s does not compile", key)
	}
	return bp, nil
}

func (s *Service) catalogGet(w http.ResponseWriter, r *http.Request) error {
	bp, err := s.latest(strings.ToLower(r.PathValue("key")))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, docgen.Vendor(bp))
	return nil
}

type installBody struct {
	Name         string         `json:"name"`
	Variant      string         `json:"variant"`
	Config       map[string]any `json:"config"`
	DeliveryMode string         `json:"delivery_mode"`
	SourceIDs    []string       `json:"source_ids"`
}

// install answers POST /v1/admin/integration-catalog/{key}/install.
func (s *Service) install(w http.ResponseWriter, r *http.Request) error {
	bp, err := s.latest(strings.ToLower(r.PathValue("key")))
	if err != nil {
		return err
	}
	var body installBody
	if err := decode(r, &body); err != nil {
		return err
	}
	if strings.TrimSpace(body.Name) == "" {
		body.Name = bp.Name()
	}
	if body.DeliveryMode == "" {
		body.DeliveryMode = "server_side"
	}
	if body.DeliveryMode != "server_side" {
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_DELIVERY_MODE", Message: "delivery_mode must be server_side (the engine delivers server to server)", Fields: []string{"delivery_mode"}}
	}
	if body.Config == nil {
		body.Config = map[string]any{}
	}
	in, err := s.bindConfig(bp, body.Variant, body.Config)
	if err != nil {
		return err
	}
	if err := s.checkSources(body.SourceIDs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().UTC()
	it := &store.Integration{Vendor: bp.Key(), Version: bp.Version(), Name: body.Name, Variant: in.Variant(), DeliveryMode: body.DeliveryMode,
		Enabled: true, SourceIDs: body.SourceIDs, CreatedAt: now, UpdatedAt: now}
	rev := &store.Revision{Variant: in.Variant(), DeliveryMode: body.DeliveryMode, Config: body.Config, ChangeSummary: "installed", CreatedAt: now}
	if err := s.st.CreateIntegration(it, rev, secretKeys(bp)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "NAME_TAKEN", "an integration named %q exists", body.Name)
		}
		return err
	}
	if err := s.rebind(); err != nil {
		return err
	}
	s.log.Info("integration installed", "integration", it.ID, "blueprint", bp.Ref(), "variant", it.Variant)
	v, err := s.view(it)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Service) getIntegration(id string) (*store.Integration, error) {
	it, err := s.st.GetIntegration(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, "NOT_FOUND", "no integration %q", id)
	}
	return it, err
}

func (s *Service) integrationsList(w http.ResponseWriter, r *http.Request) error {
	cursor, limit, err := paging(r)
	if err != nil {
		return err
	}
	all, err := s.st.ListIntegrations()
	if err != nil {
		return err
	}
	p, err := pageOf(all, cursor, limit)
	if err != nil {
		return err
	}
	out := page[integrationView]{Data: []integrationView{}, NextCursor: p.NextCursor, HasMore: p.HasMore}
	for _, it := range p.Data {
		v, err := s.view(it)
		if err != nil {
			return err
		}
		out.Data = append(out.Data, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) integrationGet(w http.ResponseWriter, r *http.Request) error {
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.view(it)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

type patchBody struct {
	Name          *string        `json:"name"`
	Variant       *string        `json:"variant"`
	Config        map[string]any `json:"config"`
	Enabled       *bool          `json:"enabled"`
	SourceIDs     *[]string      `json:"source_ids"`
	ChangeSummary string         `json:"change_summary"`
}

// integrationPatch answers PATCH /v1/admin/integrations/{id}: enabled and
// source_ids change the integration; config, variant and name (DESIGN §6)
// make a new immutable revision. Config keys given replace the stored ones, null removes one,
// and "***" keeps a stored secret (so a client may send back what it
// read). The new config is checked as install checks it, and the bound
// integration is swapped at once.
func (s *Service) integrationPatch(w http.ResponseWriter, r *http.Request) error {
	var body patchBody
	if err := decode(r, &body); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	cur, err := s.st.GetRevision(it.ID, it.Revision)
	if err != nil {
		return err
	}
	bp, err := s.blueprintOf(it.Vendor, it.Version)
	if err != nil {
		return errorf(http.StatusConflict, "BLUEPRINT_UNAVAILABLE", "blueprint %s@%s is no longer in the catalog", it.Vendor, it.Version)
	}
	var rev *store.Revision
	if body.Config != nil || body.Variant != nil {
		cfg := make(map[string]any, len(cur.Config))
		for k, v := range cur.Config {
			cfg[k] = v
		}
		for k, v := range body.Config {
			switch {
			case v == nil:
				delete(cfg, k)
			case v == masked && slices.Contains(secretKeys(bp), k):
				// keep the stored secret
			default:
				cfg[k] = v
			}
		}
		variant := cur.Variant
		if body.Variant != nil {
			variant = *body.Variant
		}
		in, err := s.bindConfig(bp, variant, cfg)
		if err != nil {
			return err
		}
		summary := body.ChangeSummary
		if summary == "" {
			summary = "updated"
		}
		rev = &store.Revision{Variant: in.Variant(), DeliveryMode: cur.DeliveryMode, Config: cfg, ChangeSummary: summary, CreatedAt: s.cfg.Now().UTC()}
		it.Variant = in.Variant()
	}
	if body.Name != nil {
		if strings.TrimSpace(*body.Name) == "" {
			return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_NAME", Message: "name must not be empty", Fields: []string{"name"}}
		}
		if *body.Name != it.Name && rev == nil {
			// DESIGN §6: a PATCH of config, variant or name makes a new
			// immutable revision; a rename keeps the config as it is.
			summary := body.ChangeSummary
			if summary == "" {
				summary = "renamed"
			}
			rev = &store.Revision{Variant: cur.Variant, DeliveryMode: cur.DeliveryMode, Config: maps.Clone(cur.Config), ChangeSummary: summary, CreatedAt: s.cfg.Now().UTC()}
		}
		it.Name = *body.Name
	}
	if body.Enabled != nil {
		it.Enabled = *body.Enabled
	}
	if body.SourceIDs != nil {
		if err := s.checkSources(*body.SourceIDs); err != nil {
			return err
		}
		it.SourceIDs = *body.SourceIDs
	}
	it.UpdatedAt = s.cfg.Now().UTC()
	if err := s.st.UpdateIntegration(it, rev, secretKeys(bp)); err != nil {
		if errors.Is(err, store.ErrStale) {
			return errorf(http.StatusConflict, "CONFLICT", "the integration changed meanwhile: read it again")
		}
		if errors.Is(err, store.ErrConflict) {
			return errorf(http.StatusConflict, "NAME_TAKEN", "an integration named %q exists", it.Name)
		}
		return err
	}
	if err := s.rebind(); err != nil {
		return err
	}
	s.log.Info("integration updated", "integration", it.ID, "revision", it.Revision, "enabled", it.Enabled)
	v, err := s.view(it)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Service) integrationDelete(w http.ResponseWriter, r *http.Request) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	// Requests still in the outbox would be stranded (never sent, never a
	// dead letter anyone can see): refuse, unless told to drop them.
	var queued []string
	for _, st := range []outbox.State{outbox.Pending, outbox.Dead} {
		items, err := s.itemsOf(r.Context(), it.ID, st)
		if err != nil {
			return err
		}
		for _, x := range items {
			queued = append(queued, x.ID)
		}
	}
	if len(queued) > 0 && r.URL.Query().Get("force") != "true" {
		return errorf(http.StatusConflict, "INTEGRATION_HAS_QUEUED", "integration %s has %d requests waiting or dead in the outbox: disable it and replay or wait, or delete with ?force=true to drop them", it.ID, len(queued))
	}
	if s.kafka != nil {
		// Its dead deliveries (dlq-events) would no longer be listed.
		if n, err := s.kafka.deadDeliveries(it.ID); err != nil {
			return err
		} else if n > 0 && r.URL.Query().Get("force") != "true" {
			return errorf(http.StatusConflict, "INTEGRATION_HAS_QUEUED", "integration %s has %d dead requests (%s): replay them, or delete with ?force=true to drop them from the dead-letter view", it.ID, n, kafka.DLQEvents)
		} else if n > 0 {
			s.log.Warn("integration deleted with dead letters dropped from the view", "integration", it.ID, "dropped", n)
		}
	}
	if len(queued) > 0 {
		if _, err := s.box.Remove(r.Context(), queued...); err != nil {
			return err
		}
		s.log.Warn("integration deleted with queued requests dropped", "integration", it.ID, "dropped", len(queued))
	}
	if err := s.st.DeleteIntegration(it.ID); err != nil {
		return err
	}
	if s.kafka != nil {
		if err := s.kafka.dlq.Forget(it.ID); err != nil {
			s.log.Error("deleted integration's dead letters not dropped from the index", "integration", it.ID, "error", err.Error())
		}
	}
	if err := s.rebind(); err != nil {
		return err
	}
	s.log.Info("integration deleted", "integration", it.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) revisionsList(w http.ResponseWriter, r *http.Request) error {
	it, err := s.getIntegration(r.PathValue("id"))
	if err != nil {
		return err
	}
	cursor, limit, err := paging(r)
	if err != nil {
		return err
	}
	revs, err := s.st.Revisions(it.ID)
	if err != nil {
		return err
	}
	var secrets []string
	bp, bperr := s.blueprintOf(it.Vendor, it.Version)
	if bperr == nil {
		secrets = secretKeys(bp)
	}
	views := make([]revisionView, len(revs))
	for i, rv := range revs {
		views[len(revs)-1-i] = revisionView{RevisionNumber: rv.Number, Name: rv.Name, Variant: rv.Variant, Config: maskConfig(rv.Config, secrets, bperr == nil),
			DeliveryMode: rv.DeliveryMode, ChangeSummary: rv.ChangeSummary, CreatedAt: rv.CreatedAt} // newest first
	}
	p, err := pageOf(views, cursor, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

// checkSources refuses source IDs that name no source (422 source_ids).
func (s *Service) checkSources(ids []string) error {
	for _, id := range ids {
		if _, err := s.st.SourceByID(id); err != nil {
			return &apiError{Status: http.StatusUnprocessableEntity, Code: "INVALID_SOURCE", Message: "source_ids names " + id + ", which is not a source", Fields: []string{"source_ids"}}
		}
	}
	return nil
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}
