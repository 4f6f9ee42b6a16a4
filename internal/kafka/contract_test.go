package kafka

import (
	"context"
	"testing"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/delivery/deliverytest"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// The delivery contract (package deliverytest) on the Kafka path: an
// ingester, a processor and a deliverer on kfake. Where it differs from
// the outbox (Traits): the same event ingested twice is two records on
// raw-events, so its request is sent twice with the same item ID.
func TestDeliveryContract(t *testing.T) {
	deliverytest.Run(t, func(t *testing.T, s deliverytest.Setup) deliverytest.System {
		cfg, _ := fakeCluster(t, 1, deliverytest.Integration)
		ing, err := NewIngester(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ing.Close)
		reg := NewRegistry(s.Bindings...)
		run(t, NewProcessor(ProcessorOptions{Config: cfg, Registry: reg}).Run)
		run(t, NewDeliverer(DelivererOptions{Config: cfg, Registry: reg, IntegrationID: deliverytest.Integration,
			Sender: send.New(send.Options{VendorURL: s.VendorURL, Metrics: s.Metrics}), Policy: s.Policy, Metrics: s.Metrics}).Run)
		return kafkaSystem{ing, reg}
	}, deliverytest.Traits{RefeedSendsAgain: true})
}

type kafkaSystem struct {
	ing *Ingester
	reg *StaticRegistry
}

func (s kafkaSystem) Feed(ctx context.Context, events ...[]byte) error {
	return s.ing.Ingest(ctx, events...)
}

func (s kafkaSystem) Rebind(bs ...delivery.Binding) error {
	s.reg.Set(bs...)
	return nil
}
