package service

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// The integrations topic in serve (docs/kafka.md, "Integration config
// distribution"). The process that owns the state (role all or ingest)
// publishes each integration's current state after every change, before
// the change is answered; a process with role process or deliver holds
// no state and binds what it reads there. Secret config values are sealed
// with the deployment's shared key (--secret-key-file) under their own
// HKDF subkey, bound to the integration, revision and key.

// StartError is a refused start of serve: Code is stable (UPPER_SNAKE),
// Message says what to do.
type StartError struct {
	Code, Message string
}

func (e *StartError) Error() string { return "serve: " + e.Code + ": " + e.Message }

// topicSealInfo is the HKDF info of the integrations topic's subkey: a
// value sealed for the topic does not open as one of the state file's,
// nor the other way round.
const topicSealInfo = "blueprint-integrations-topic-v1"

func topicAAD(id string, revision int, key string) string {
	return "integrations/" + id + "/" + strconv.Itoa(revision) + "/" + key
}

// codeNotPublished is the error code of a change saved in the state but
// not published to the integrations topic.
const codeNotPublished = "CONFIG_NOT_PUBLISHED"

// codeAnotherOwner is the error code of a state whose integrations topic
// another state publishes (at start: a refused start; while running: a
// change saved but not published, and /readyz).
const codeAnotherOwner = "ANOTHER_OWNER"

// republishEvery is how often a failed publish is tried again.
const republishEvery = 5 * time.Second

// topicConfig is a Kafka-mode process's side of the integrations topic.
type topicConfig struct {
	sealer *store.Sealer

	// The process that owns the state: pub publishes; published is what
	// the topic holds of each integration (nil: a record it cannot read),
	// guarded by Service.mu like every change; dirty says the last
	// publish failed (retried every republishEvery).
	pub       *kafka.ConfigPublisher
	published map[string]*kafka.IntegrationRecord
	dirty     atomic.Bool
	// at is the topic's end as last published (owner).
	at atomic.Int64
	// owner is the state's owner ID, stamped on every record (owner);
	// takeOver says the next publish takes the topic over (its records
	// stamped so); watch follows the topic while the owner runs, and
	// other, once set, says why this owner stopped publishing: another
	// owner's record appeared.
	owner    string
	instance string // this process's start (kafka.InstanceHeader)
	takeOver atomic.Bool
	// takingOver: this owner took the topic over at start and has not
	// read its take-over records back yet; until then the ownership read
	// is the previous one's, not a conflict.
	takingOver atomic.Bool
	watch      *kafka.ConfigReader
	other      atomic.Pointer[string]
	// follows is a follower's reader, for its ownership (kept when
	// close clears reader: /readyz may still be answering).
	follows *kafka.ConfigReader

	// A process that follows the topic: reader reads it; bound caches
	// each integration's bound form by revision (guarded by mu).
	reader *kafka.ConfigReader
	mu     sync.Mutex
	bound  map[string]boundRecord
}

type boundRecord struct {
	vendor, version, variant string
	revision                 int
	in                       *runtime.Integration
}

// openConfig prepares the integrations topic's side of the role. The
// owner of the state reads what the topic holds (to publish only what
// differs from the state, and tombstones for integrations it no longer
// has) and stamps ingested events with the topic's end; a follower keeps
// a reader, caught up by newFollower before it serves.
func (k *kafkaMode) openConfig(key []byte) error {
	sealer, err := store.NewSealer(key, topicSealInfo)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	k.config.sealer = sealer
	k.s.metrics.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "blueprint_integrations_bound",
			Help: "Integrations bound in this process (enabled, their config readable): those its processor evaluates and its deliverers send for."},
			func() float64 { return float64(len(k.reg.Bindings())) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "blueprint_integrations_topic_offset",
			Help: "The integrations topic's offset this process is at: published up to (the process that owns the state), or applied up to (roles process and deliver)."},
			func() float64 {
				if _, at, _ := k.reg.ConfigState(); follows(k.role) {
					return float64(at)
				}
				return float64(k.config.at.Load())
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "blueprint_integrations_topic_other_owner",
			Help: "1 when another state than the topic's owner published to the integrations topic: the owner stopped publishing (the process that owns the state), or that state's records are not applied (roles process and deliver)."},
			func() float64 {
				if k.config.otherOwner() != "" {
					return 1
				}
				return 0
			}))
	rd, err := kafka.NewConfigReader(k.cfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if follows(k.role) {
		rd.OnRefused = func(_ string, err error) { k.s.log.Error("integrations topic: record refused", "error", err.Error()) }
		rd.OnOtherOwner = func(o kafka.Ownership) {
			k.s.log.Error("integrations topic: another state publishes it; its records are not applied, the first owner's are", "owner", o.Owner, "other_owner", o.Other, "offset", o.OtherOffset)
		}
		k.config.reader, k.config.follows, k.config.bound = rd, rd, map[string]boundRecord{}
		return nil
	}
	ok := false
	defer func() {
		if !ok {
			rd.Close()
		}
	}()
	owner, err := k.s.st.OwnerID()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	k.config.owner = owner
	// An old revision produced again is not applied by the followers
	// that read the newer one, but it is now the integration's newest
	// record: compacted, it is all a follower started later would read.
	// Published again at the first publish.
	rolledBack := map[string]bool{}
	rd.OnRefused = func(id string, err error) {
		rolledBack[id] = true
		k.s.log.Error("integrations topic: record refused; the integration is published again", "error", err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, at, err := rd.CatchUp(ctx)
	if err != nil {
		return &StartError{Code: "INTEGRATIONS_UNREADABLE", Message: err.Error()}
	}
	rd.OnRefused = func(_ string, err error) { k.s.log.Error("integrations topic: record refused", "error", err.Error()) }
	o := rd.Ownership()
	other, since := "", time.Time{}
	switch {
	case o.Owner != "" && o.Owner != owner:
		other, since = o.Owner, o.Since
	case o.Other != "" && o.Other != owner:
		other, since = o.Other, o.OtherSince
	}
	if other != "" && !k.takeOver {
		return &StartError{Code: codeAnotherOwner, Message: fmt.Sprintf(
			"the %s topic is published by another state (owner %s, since %s); this state is owner %s. One state owns a deployment: run only the process that owns the state of this deployment (roles process and deliver for more processes), or give this state its own Kafka cluster. To make this state the owner instead (its integrations replace the topic's; the other state's are deleted from the topic), stop the other state's process and start this one once with --kafka-take-over",
			kafka.IntegrationsTopic, other, since.UTC().Format(time.RFC3339), owner)}
	}
	k.config.published = make(map[string]*kafka.IntegrationRecord, len(entries))
	for id, e := range entries {
		if e.Err != nil || rolledBack[id] {
			k.config.published[id] = nil // replaced by the state's at the first publish
			continue
		}
		if len(e.Record.Secrets) > 0 {
			if !opensWith(k.config.sealer, &e.Record) {
				// Sealed with another key (the state was rekeyed with
				// 'blueprint serve rekey'): published again, sealed
				// with this key, at the first publish.
				k.config.published[id] = nil
				continue
			}
		}
		k.config.published[id] = &e.Record
	}
	switch {
	case other != "":
		// Taken over: every integration of the state is published again
		// and every other key of the topic tombstoned, each record
		// stamped as a take-over, so that the followers switch to this
		// owner and the other's records are gone from the topic.
		k.s.log.Warn("taking the integrations topic over from another state (--kafka-take-over): its integrations are replaced by this state's", "topic", kafka.IntegrationsTopic, "previous_owner", other, "owner", owner)
		for _, id := range rd.Keys() {
			k.config.published[id] = nil
		}
		k.config.takeOver.Store(true)
		k.config.takingOver.Store(true)
	case o.Owner == "" && len(entries) > 0:
		// Records of an earlier release, without the owner header: this
		// state's history. Published again, stamped, at the first
		// publish, so that another state started later is refused.
		for id := range k.config.published {
			k.config.published[id] = nil
		}
	}
	if k.takeOver && other == "" {
		k.s.log.Warn("--kafka-take-over: no other state publishes the integrations topic; nothing taken over (leave the flag out from now on)", "owner", owner)
	}
	// From now on, a record of this owner stamped by another instance
	// is another process running a copy of this state.
	k.config.instance = "inst_" + randomHex(8)
	rd.OnStamped = func(o, inst string, offset int64) {
		if o != owner || inst == "" || inst == k.config.instance {
			return
		}
		msg := fmt.Sprintf("another process runs a copy of this state (owner %s, instance %s; this process is instance %s) and published to the %s topic at offset %d: this process stopped publishing integration changes (they are saved in its state only). One process runs a state: stop one of the two; a copy of a state is not a second owner (give a new state its own directory from scratch)",
			owner, inst, k.config.instance, kafka.IntegrationsTopic, offset)
		if k.config.other.CompareAndSwap(nil, &msg) {
			k.s.log.Error("integrations topic: a copy of this state publishes it; not publishing any more", "owner", owner, "instance", k.config.instance, "other_instance", inst)
		}
	}
	k.config.watch = rd
	ok = true
	if k.config.pub, err = kafka.NewConfigPublisher(k.cfg); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	k.config.pub.Owner, k.config.pub.Instance = owner, k.config.instance
	k.config.at.Store(at)
	if k.ing != nil {
		k.ing.SetConfigOffset(at)
	}
	return nil
}

// startConfig runs, with the roles, the republishing of a failed publish
// (owner) or the following of the topic (follower). k.mu is held.
func (k *kafkaMode) startConfig() {
	s := k.s
	switch {
	case k.config.pub != nil:
		k.supervise(k.ctx, "publish integrations", func(ctx context.Context) error {
			t := time.NewTicker(republishEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				if !k.config.dirty.Load() || k.config.other.Load() != nil {
					continue
				}
				s.mu.Lock()
				all, err := s.st.ListIntegrations()
				if err == nil {
					err = s.publishIntegrations(all)
				}
				s.mu.Unlock()
				if err == nil {
					s.log.Info("integrations published after an earlier failure")
				}
			}
		})
		if w := k.config.watch; w != nil {
			// Reads its own records and any other state's: one stops
			// this owner's publishing (never fight over the topic).
			k.supervise(k.ctx, "watch integrations owner", func(ctx context.Context) error {
				return w.Follow(ctx, func(map[string]kafka.ConfigEntry, int64) { k.config.checkOwner(s.log) })
			})
		}
	case k.config.reader != nil:
		k.supervise(k.ctx, "follow integrations", func(ctx context.Context) error {
			return k.config.reader.Follow(ctx, func(es map[string]kafka.ConfigEntry, at int64) {
				s.applyIntegrations(es, at)
			})
		})
	}
}

// checkOwner stops the owner's publishing once the topic holds a record
// of another state published after this owner's (a second owner started
// on an empty topic, or one taking it over): logged at error once, shown
// by /readyz and blueprint_integrations_topic_other_owner.
func (tc *topicConfig) checkOwner(log interface{ Error(string, ...any) }) {
	if tc.other.Load() != nil {
		return
	}
	o := tc.watch.Ownership()
	if tc.takingOver.Load() {
		if o.Owner != tc.owner || o.Other != "" {
			return // its take-over records not read back yet
		}
		tc.takingOver.Store(false)
	}
	other := ""
	switch {
	case o.Owner != "" && o.Owner != tc.owner:
		other = o.Owner
	case o.Other != "" && o.Other != tc.owner:
		other = o.Other
	}
	if other == "" {
		return
	}
	msg := fmt.Sprintf("another state (owner %s) published to the %s topic while this one (owner %s) owns it: this process stopped publishing integration changes (they are saved in the state only) and never deletes the other's. One state owns a deployment: stop one of the two; to make this state the owner, stop the other and restart this one with --kafka-take-over",
		other, kafka.IntegrationsTopic, tc.owner)
	if tc.other.CompareAndSwap(nil, &msg) {
		log.Error("integrations topic: another owner; not publishing any more", "owner", tc.owner, "other_owner", other)
	}
}

// otherOwner says why integrations are not published (owner) or not all
// applied (follower) because another state publishes the topic; "" when
// none does.
func (tc *topicConfig) otherOwner() string {
	if m := tc.other.Load(); m != nil {
		return *m
	}
	if tc.follows != nil {
		if o := tc.follows.Ownership(); o.Other != "" {
			return fmt.Sprintf("another state (owner %s) published to the %s topic (from offset %d, %s) while owner %s publishes it: its records are not applied here, the first owner's are. One state owns a deployment: stop one of the two (restarting the right one with --kafka-take-over if it is not the first)",
				o.Other, kafka.IntegrationsTopic, o.OtherOffset, o.OtherSince.UTC().Format(time.RFC3339), o.Owner)
		}
	}
	return ""
}

func (tc *topicConfig) close() {
	if tc.pub != nil {
		tc.pub.Close()
		tc.pub = nil
	}
	if tc.reader != nil {
		tc.reader.Close()
		tc.reader = nil
	}
	if tc.watch != nil {
		tc.watch.Close()
	}
}

// publishIntegrations publishes to the integrations topic the state of
// every integration of all (the state's, s.mu held) that differs from
// what the topic holds, and a tombstone for each integration the topic
// holds that all lacks; it returns once the brokers acknowledged them
// (acks=all), and stamps the events ingested from then on with the
// topic's new end. A failure is a 503 CONFIG_NOT_PUBLISHED (the change is
// saved; it is published again every republishEvery and at the next
// change). Nothing to do without a publisher (not Kafka mode's owner).
func (s *Service) publishIntegrations(all []*store.Integration) error {
	if s.kafka == nil || s.kafka.config.pub == nil {
		return nil
	}
	tc := &s.kafka.config
	if m := tc.other.Load(); m != nil {
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeAnotherOwner, Message: "the change is saved in the state, but not published: " + *m}
	}
	var recs []kafka.IntegrationRecord
	keep := make(map[string]bool, len(all))
	for _, it := range all {
		keep[it.ID] = true
		want := kafka.IntegrationRecord{ID: it.ID, Vendor: it.Vendor, Version: it.Version, Name: it.Name, Variant: it.Variant,
			DeliveryMode: it.DeliveryMode, Revision: it.Revision, Enabled: it.Enabled, SourceIDs: nonNil(it.SourceIDs), UpdatedAt: it.UpdatedAt}
		if cur := tc.published[it.ID]; cur != nil && cur.SameState(&want) {
			continue
		}
		if err := s.sealRecord(&want); err != nil {
			tc.dirty.Store(true)
			s.log.Error("integration not published: its record could not be made", "integration", it.ID, "error", err.Error())
			return errorf(http.StatusServiceUnavailable, codeNotPublished,
				"integration %s is saved in the state, but its record for the %s topic could not be made (%v): the processes with role process or deliver do not have it", it.ID, kafka.IntegrationsTopic, err)
		}
		recs = append(recs, want)
	}
	var gone []string
	for id := range tc.published {
		if !keep[id] {
			gone = append(gone, id)
		}
	}
	slices.Sort(gone)
	if len(recs) == 0 && len(gone) == 0 {
		tc.dirty.Store(false)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next, err := tc.pub.PublishAs(ctx, recs, gone, tc.takeOver.Load())
	if err != nil {
		tc.dirty.Store(true)
		s.log.Error("integrations not published; retried every 5 s and at the next change", "integrations", len(recs), "deleted", len(gone), "error", err.Error())
		return &apiError{Status: http.StatusServiceUnavailable, Code: codeNotPublished, RetryAfter: republishEvery,
			Message: fmt.Sprintf("the change is saved in the state, but could not be published to the %s topic for the processes with role process or deliver (%v); a running service publishes it again every %s and at the next change", kafka.IntegrationsTopic, err, republishEvery)}
	}
	for i := range recs {
		r := recs[i]
		r.Secrets = nil // what the topic holds is compared by state, not by sealed bytes
		tc.published[r.ID] = &r
	}
	for _, id := range gone {
		delete(tc.published, id)
	}
	if tc.takeOver.Swap(false) {
		s.log.Warn("integrations topic taken over: this state's integrations published, the other state's deleted", "owner", tc.owner, "integrations", len(recs), "deleted", len(gone))
	}
	tc.at.Store(next)
	if s.kafka.ing != nil {
		s.kafka.ing.SetConfigOffset(next)
	}
	tc.dirty.Store(false)
	s.log.Info("integrations published", "integrations", len(recs), "deleted", len(gone), "topic", kafka.IntegrationsTopic, "end_offset", next)
	return nil
}

// sealRecord fills r's config from the integration's current revision:
// the non-secret values in clear, each secret value (every value when the
// blueprint is no longer in the catalog: which are secret is not known)
// sealed with the topic's subkey, bound to the integration, the revision
// and the key.
func (s *Service) sealRecord(r *kafka.IntegrationRecord) error {
	rev, err := s.st.GetRevision(r.ID, r.Revision)
	if err != nil {
		return err
	}
	var secrets []string
	bp, bperr := s.blueprintOf(r.Vendor, r.Version)
	if bperr == nil {
		secrets = secretKeys(bp)
	}
	plain := map[string]any{}
	for k, v := range rev.Config {
		if bperr == nil && !slices.Contains(secrets, k) {
			plain[k] = v
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("config key %s: %w", k, err)
		}
		sealed, err := s.kafka.config.sealer.Seal(topicAAD(r.ID, r.Revision, k), raw)
		if err != nil {
			return fmt.Errorf("config key %s: %w", k, err)
		}
		if r.Secrets == nil {
			r.Secrets = map[string][]byte{}
		}
		r.Secrets[k] = sealed
	}
	if r.Config, err = json.Marshal(plain); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// applyIntegrations binds the enabled integrations of the topic read up
// to offset at (a follower) and hands them to the roles at once. An
// integration that cannot be bound here (an unreadable record, a
// blueprint this binary lacks, a secret the key does not open) is
// logged, and blocks the processor (kafka.StaticRegistry.SetAt) until a
// later record fixes it: evaluating without it would drop its events.
// It returns those problems.
func (s *Service) applyIntegrations(entries map[string]kafka.ConfigEntry, at int64) []error {
	var bs []delivery.Binding
	var problems []error
	for _, id := range slices.Sorted(maps.Keys(entries)) {
		e := entries[id]
		if e.Err != nil {
			problems = append(problems, fmt.Errorf("integration %s: %w", id, e.Err))
			continue
		}
		r := e.Record
		if !r.Enabled {
			continue
		}
		in, err := s.bindRecord(&r)
		if err != nil {
			problems = append(problems, fmt.Errorf("integration %s: %w", id, err))
			continue
		}
		bs = append(bs, delivery.Binding{Name: r.ID, Ref: r.Vendor + "@" + r.Version, Integration: in, Sources: r.SourceIDs})
	}
	tc := &s.kafka.config
	tc.mu.Lock()
	for id := range tc.bound {
		if _, ok := entries[id]; !ok {
			delete(tc.bound, id)
		}
	}
	tc.mu.Unlock()
	for _, p := range problems {
		s.log.Error("integration not bound here; the processor holds events until it is", "error", p.Error())
	}
	s.setBound(bs)
	s.kafka.setAt(at, errors.Join(problems...), bs)
	s.log.Info("integrations applied", "topic", kafka.IntegrationsTopic, "offset", at, "bound", len(bs), "problems", len(problems))
	return problems
}

// bindRecord binds an integration record, reusing the bound form of the
// same revision.
func (s *Service) bindRecord(r *kafka.IntegrationRecord) (*runtime.Integration, error) {
	tc := &s.kafka.config
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if b, ok := tc.bound[r.ID]; ok && b.vendor == r.Vendor && b.version == r.Version && b.variant == r.Variant && b.revision == r.Revision {
		return b.in, nil
	}
	bp, err := s.blueprintOf(r.Vendor, r.Version)
	if err != nil {
		return nil, fmt.Errorf("blueprint %s@%s is not in this binary's catalog: run the blueprint release of the process that owns the state", r.Vendor, r.Version)
	}
	cfg, err := s.openRecord(r)
	if err != nil {
		return nil, err
	}
	in, err := runtime.Bind(bp, r.Variant, cfg, s.bindOptions()...)
	if err != nil {
		return nil, fmt.Errorf("blueprint %s@%s refuses its config here: %w", r.Vendor, r.Version, err)
	}
	tc.bound[r.ID] = boundRecord{vendor: r.Vendor, version: r.Version, variant: r.Variant, revision: r.Revision, in: in}
	return in, nil
}

// openRecord is a record's config, its secret values opened.
func (s *Service) openRecord(r *kafka.IntegrationRecord) (map[string]any, error) {
	v, err := store.DecodeValue(r.Config)
	cfg, ok := v.(map[string]any)
	if err != nil || !ok {
		return nil, fmt.Errorf("revision %d: its config is not a JSON object", r.Revision)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Secrets)) {
		raw, err := s.kafka.config.sealer.Open(topicAAD(r.ID, r.Revision, k), r.Secrets[k])
		if err != nil {
			return nil, fmt.Errorf("revision %d: secret config key %s cannot be decrypted with --secret-key-file (every process of a deployment must use the key file of the process that owns the state): %w", r.Revision, k, err)
		}
		if cfg[k], err = store.DecodeValue(raw); err != nil {
			return nil, fmt.Errorf("revision %d: secret config key %s: not JSON", r.Revision, k)
		}
	}
	return cfg, nil
}

// opensWith reports whether every secret value of r opens with sealer.
func opensWith(sealer *store.Sealer, r *kafka.IntegrationRecord) bool {
	for k, v := range r.Secrets {
		if _, err := sealer.Open(topicAAD(r.ID, r.Revision, k), v); err != nil {
			return false
		}
	}
	return true
}

// randomHex is n random bytes in hexadecimal.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand does not fail on supported platforms
	return hex.EncodeToString(b)
}
