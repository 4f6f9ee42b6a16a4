package service

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka"
)

// kafkaMetrics are the Kafka mode's series: records produced and produce
// errors by topic (every client of the process, through a kgo hook), and
// consumer lag read from the brokers at each scrape.
type kafkaMetrics struct {
	produced  *prometheus.CounterVec
	failed    *prometheus.CounterVec
	lagErrors prometheus.Counter
	lag       *prometheus.Desc
	lagSum    *prometheus.Desc

	k     *kafkaMode
	adm   *kafka.Admin
	close func() // disconnects adm, once
}

// lagTimeout bounds the brokers' answers to one scrape.
const lagTimeout = 3 * time.Second

func newKafkaMetrics(reg *prometheus.Registry) *kafkaMetrics {
	m := &kafkaMetrics{
		produced: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_kafka_records_produced_total",
			Help: "Records the brokers acknowledged, by topic (ingested events, requests, retries, dead letters)."}, []string{"topic"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "blueprint_kafka_produce_errors_total",
			Help: "Records that could not be produced, by topic (the event is answered 503, or the role retries)."}, []string{"topic"}),
		lagErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "blueprint_kafka_lag_errors_total",
			Help: "Scrapes whose consumer lag could not be read in full from the brokers (the series read are still reported)."}),
		lag: prometheus.NewDesc("blueprint_kafka_consumer_lag",
			"Records not yet committed by a consumer group, by group, topic and partition (blueprint-process on raw-events; blueprint-deliver-{id} on delivery-{id} and delivery-retry-{id}), read from the brokers at each scrape.",
			[]string{"group", "topic", "partition"}, nil),
		lagSum: prometheus.NewDesc("blueprint_kafka_consumer_lag_sum",
			"blueprint_kafka_consumer_lag summed over the partitions, by group and topic.", []string{"group", "topic"}, nil),
	}
	m.close = func() {}
	reg.MustRegister(m.produced, m.failed, m.lagErrors, m)
	return m
}

// OnProduceRecordUnbuffered implements kgo.HookProduceRecordUnbuffered:
// every record of every client, once acknowledged or failed.
func (m *kafkaMetrics) OnProduceRecordUnbuffered(r *kgo.Record, err error) {
	if err != nil {
		m.failed.WithLabelValues(r.Topic).Inc()
		return
	}
	m.produced.WithLabelValues(r.Topic).Inc()
}

func (m *kafkaMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.lag; ch <- m.lagSum }

// Collect reads the lag of the processors' group and of the deliverers'
// group of every bound integration, whatever roles this process runs.
func (m *kafkaMetrics) Collect(ch chan<- prometheus.Metric) {
	if m.adm == nil || m.k == nil {
		return
	}
	var ids []string
	for _, b := range m.k.reg.Bindings() {
		ids = append(ids, b.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	lags, err := m.adm.Lag(ctx, kafka.GroupTopics(ids...))
	if err != nil {
		m.lagErrors.Inc()
		m.k.log.Debug("kafka: consumer lag not read in full", "error", err.Error())
	}
	type gt struct{ group, topic string }
	sums := map[gt]int64{}
	var order []gt
	for _, l := range lags {
		ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, float64(l.Lag), l.Group, l.Topic, strconv.Itoa(int(l.Partition)))
		k := gt{l.Group, l.Topic}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += l.Lag
	}
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(m.lagSum, prometheus.GaugeValue, float64(sums[k]), k.group, k.topic)
	}
}

// watch starts reading lag with its own admin client.
func (m *kafkaMetrics) watch(k *kafkaMode) error {
	adm, err := kafka.NewAdmin(k.cfg)
	if err != nil {
		return err
	}
	m.k, m.adm, m.close = k, adm, sync.OnceFunc(adm.Close)
	return nil
}
