package outbox_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/outbox/queuetest"
)

// The contract every queue keeps (package queuetest), on both
// implementations.

func TestBoltContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) outbox.Queue {
		q, err := outbox.OpenBolt(filepath.Join(t.TempDir(), "data", "outbox.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		return q
	}, queuetest.Reopen(func(t *testing.T, q outbox.Queue) outbox.Queue {
		path := q.(*outbox.Bolt).Path()
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
		q2, err := outbox.OpenBolt(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q2.Close() })
		return q2
	}))
}

func TestMemoryContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) outbox.Queue {
		q := outbox.NewMemory()
		t.Cleanup(func() { _ = q.Close() })
		return q
	})
}

// queueOnly hides every method but Queue's, as a log-based queue would
// have them: the Queue tests must pass without Get, List or Counts.
type queueOnly struct{ q outbox.Queue }

func (w queueOnly) Enqueue(ctx context.Context, items []*outbox.Item) ([]*outbox.Item, error) {
	return w.q.Enqueue(ctx, items)
}
func (w queueOnly) Claim(ctx context.Context, now time.Time, max int) ([]*outbox.Item, error) {
	return w.q.Claim(ctx, now, max)
}
func (w queueOnly) Update(ctx context.Context, it *outbox.Item) error { return w.q.Update(ctx, it) }
func (w queueOnly) Release(ctx context.Context, ids ...string) error  { return w.q.Release(ctx, ids...) }
func (w queueOnly) Purge(ctx context.Context, before time.Time, s ...outbox.State) (int, error) {
	return w.q.Purge(ctx, before, s...)
}
func (w queueOnly) Close() error { return w.q.Close() }

func TestQueueOnlyContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) outbox.Queue {
		q := outbox.NewMemory()
		t.Cleanup(func() { _ = q.Close() })
		return queueOnly{q}
	})
}
