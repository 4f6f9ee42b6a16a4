package delivery_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/delivery/deliverytest"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// The delivery contract (package deliverytest) on the embedded path: a
// pipeline over a bbolt outbox.
func TestDeliveryContract(t *testing.T) {
	deliverytest.Run(t, func(t *testing.T, s deliverytest.Setup) deliverytest.System {
		q, err := outbox.OpenBolt(filepath.Join(t.TempDir(), "outbox.db"))
		if err != nil {
			t.Fatal(err)
		}
		p, err := delivery.New(q, delivery.Options{
			Sender:  send.Options{VendorURL: s.VendorURL},
			Policy:  s.Policy,
			Metrics: s.Metrics,
			Poll:    2 * time.Millisecond,
		}, s.Bindings...)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = p.Close()
			_ = q.Close()
		})
		return pipelineSystem{p}
	}, deliverytest.Traits{})
}

type pipelineSystem struct{ p *delivery.Pipeline }

func (s pipelineSystem) Feed(ctx context.Context, events ...[]byte) error {
	return s.p.Feed(ctx, events...)
}

func (s pipelineSystem) Rebind(bs ...delivery.Binding) error { return s.p.SetBindings(bs...) }
