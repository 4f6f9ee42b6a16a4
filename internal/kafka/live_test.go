package kafka

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLiveTopics: EnsureLiveTopics creates live-events with the given
// partitions and live-watch with one, both deleting after an hour, and
// leaves them alone the second time; a LiveProducer's records reach a Tail
// started before them (from the end: what came before is not read), and
// TryProduce never blocks.
func TestLiveTopics(t *testing.T) {
	cfg, _ := fakeCluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		if err := EnsureLiveTopics(ctx, cfg, 3); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := cfg.client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, LiveEventsTopic, LiveWatchTopic)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tds[LiveEventsTopic].Partitions); n != 3 {
		t.Errorf("%s has %d partitions, want 3", LiveEventsTopic, n)
	}
	if n := len(tds[LiveWatchTopic].Partitions); n != 1 {
		t.Errorf("%s has %d partitions, want 1", LiveWatchTopic, n)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, LiveEventsTopic, LiveWatchTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		if got["cleanup.policy"] != "delete" || got["retention.ms"] != "3600000" {
			t.Errorf("%s: cleanup.policy=%s retention.ms=%s, want delete and 3600000", rc.Name, got["cleanup.policy"], got["retention.ms"])
		}
	}

	p, err := NewLiveProducer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctx, LiveEventsTopic, []byte("k"), []byte("before")); err != nil {
		t.Fatal(err)
	}
	tail, err := NewTail(cfg, LiveEventsTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	var mu sync.Mutex
	var got []string
	tctx, tcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- tail.Run(tctx, func(r *kgo.Record) {
			mu.Lock()
			got = append(got, string(r.Value))
			mu.Unlock()
		})
	}()
	// The tail positions itself at the end once it has the topic's
	// metadata; records produced after that are read.
	time.Sleep(500 * time.Millisecond)
	var wg sync.WaitGroup
	var perr error
	for i := range 10 {
		wg.Add(1)
		start := time.Now()
		p.TryProduce(LiveEventsTopic, []byte{byte('a' + i%3)}, []byte("after"), func(err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				perr = errors.Join(perr, err)
				mu.Unlock()
			}
		})
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("TryProduce took %v", d)
		}
	}
	wg.Wait()
	if perr != nil {
		t.Fatal(perr)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n, s := len(got), strings.Join(got, ",")
		mu.Unlock()
		if n >= 10 {
			if strings.Contains(s, "before") || n != 10 {
				t.Errorf("the tail read %s; want the 10 records produced after it started", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the tail read %d records: %s", n, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tcancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
