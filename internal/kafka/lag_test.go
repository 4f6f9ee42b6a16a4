package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAdminLag: the lag of a group is the end offset minus its commit on
// each partition, everything when it has never committed, and topics
// that do not exist yet are left out without an error.
func TestAdminLag(t *testing.T) {
	cfg, _ := fakeCluster(t, 2, "int_a")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := cfg.client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 10 {
		r := &kgo.Record{Topic: RawEvents, Partition: int32(i % 2), Value: []byte(fmt.Sprint(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// blueprint-process committed 4 records of partition 0, none of 1.
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: RawEvents, Partition: 0, At: 4, LeaderEpoch: -1})
	if _, err := kadm.NewClient(cl).CommitOffsets(ctx, ProcessGroup, offs); err != nil {
		t.Fatal(err)
	}
	adm, err := NewAdmin(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	lags, err := adm.Lag(ctx, GroupTopics("int_a", "int_not_yet"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, l := range lags {
		got[fmt.Sprintf("%s %s/%d", l.Group, l.Topic, l.Partition)] = l.Lag
	}
	want := map[string]int64{
		"blueprint-process raw-events/0":                 1, // 5 records, 4 committed
		"blueprint-process raw-events/1":                 5, // never committed
		"blueprint-deliver-int_a delivery-int_a/0":       0,
		"blueprint-deliver-int_a delivery-int_a/1":       0,
		"blueprint-deliver-int_a delivery-retry-int_a/0": 0,
		"blueprint-deliver-int_a delivery-retry-int_a/1": 0,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lag:\n got %v\nwant %v", got, want)
	}
}
