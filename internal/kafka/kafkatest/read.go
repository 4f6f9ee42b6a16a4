package kafkatest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ReadAll reads every record of every topic of the cluster at brokers, as
// it is when called, by topic (a topic without records maps to nil).
// Internal topics ("__...") are read only when internal is true. opts are
// more client options (TLS, SASL).
func ReadAll(t testing.TB, brokers []string, internal bool, opts ...kgo.Opt) map[string][]*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[int32]kgo.Offset{}
	total := int64(0)
	ends.Each(func(o kadm.ListedOffset) {
		if !internal && strings.HasPrefix(o.Topic, "__") {
			return
		}
		if want[o.Topic] == nil {
			want[o.Topic] = map[int32]kgo.Offset{}
		}
		want[o.Topic][o.Partition] = kgo.NewOffset().AtStart()
		total += o.Offset
	})
	// A short fetch wait: kfake now and then holds a first fetch for the
	// whole wait (kgo's default 5 s) although the partitions hold records;
	// the next fetch returns them.
	rd, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ConsumePartitions(want), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	out := make(map[string][]*kgo.Record, len(want))
	for topic := range want {
		out[topic] = nil
	}
	for n := int64(0); n < total; {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", n, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[r.Topic] = append(out[r.Topic], r)
			n++
		})
	}
	return out
}
