package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// PartitionLag is how far one consumer group is behind on one partition:
// the records after its committed offset (after the log start when it has
// committed nothing).
type PartitionLag struct {
	Group     string
	Topic     string
	Partition int32
	Lag       int64
}

// Admin reads the cluster's state for metrics with one long-lived client.
// It is safe for concurrent use.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin connects an admin client (no request is made until used).
func NewAdmin(cfg Config) (*Admin, error) {
	cl, err := cfg.client()
	if err != nil {
		return nil, fmt.Errorf("kafka: admin: %w", err)
	}
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Close disconnects.
func (a *Admin) Close() { a.cl.Close() }

// GroupTopics are the groups whose lag the roles of a process have: the
// processors' group on raw-events and, for each integration, its
// deliverers' group on its delivery and retry topics.
func GroupTopics(integrationIDs ...string) map[string][]string {
	m := map[string][]string{ProcessGroup: {RawEvents}}
	for _, id := range integrationIDs {
		m[DeliverGroup(id)] = []string{DeliveryTopic(id), RetryTopic(id)}
	}
	return m
}

// Lag is the lag of each group on every partition of its topics, whether
// or not a member consumes it now (a group with no member, or no commit
// yet, lags by everything it has not committed): end offset minus
// committed offset. Three requests whatever the number of groups: list
// start and end offsets, fetch the groups' commits. Partitions or groups
// that could not be read are left out and their errors returned together
// with what could be read.
func (a *Admin) Lag(ctx context.Context, groups map[string][]string) ([]PartitionLag, error) {
	var topics []string
	for _, ts := range groups {
		for _, t := range ts {
			if !slices.Contains(topics, t) {
				topics = append(topics, t)
			}
		}
	}
	if len(topics) == 0 {
		return nil, nil
	}
	slices.Sort(topics)
	ends, err := a.adm.ListEndOffsets(ctx, topics...)
	if err != nil && len(ends) == 0 {
		return nil, fmt.Errorf("kafka: lag: end offsets: %w", err)
	}
	errs := []error{err}
	starts, err := a.adm.ListStartOffsets(ctx, topics...)
	errs = append(errs, err)
	names := slices.Sorted(maps.Keys(groups))
	commits := a.adm.FetchManyOffsets(ctx, names...)
	var out []PartitionLag
	for _, g := range names {
		fr, ok := commits[g]
		switch {
		case !ok:
			continue
		case errors.Is(fr.Err, kerr.GroupIDNotFound):
			// Never committed (some brokers say so): lags by everything.
		case fr.Err != nil:
			errs = append(errs, fmt.Errorf("group %s: %w", g, fr.Err))
			continue
		}
		for _, t := range groups[g] {
			ps := ends[t]
			for _, p := range slices.Sorted(maps.Keys(ps)) {
				end := ps[p]
				if p < 0 || end.Err != nil {
					continue // the topic does not exist (yet), or its leader is away
				}
				from := int64(0)
				if st, ok := starts.Lookup(t, p); ok && st.Err == nil {
					from = st.Offset
				}
				if c, ok := fr.Fetched.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
					// A commit below the log start (records deleted by
					// retention since) lags only by what is left.
					from = max(from, c.At)
				}
				out = append(out, PartitionLag{Group: g, Topic: t, Partition: p, Lag: max(end.Offset-from, 0)})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, fmt.Errorf("kafka: lag: %w", err)
	}
	return out, nil
}
