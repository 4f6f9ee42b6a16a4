package service_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
	"github.com/blueprint-engine/blueprint/internal/service"
)

// scrape reads /metrics.
func (h *harness) scrape() string {
	h.t.Helper()
	resp, err := http.Get(h.admin + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sample is the value of the series name{labels} (labels as Prometheus
// writes them, sorted), or -1 when absent.
func sample(metrics, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(metrics)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestServeKafkaTLSSCRAM runs serve in Kafka mode on a kfake broker that
// listens with TLS and requires SCRAM-SHA-512: an order is delivered to
// the fake Button; /metrics shows the records produced by topic, the
// consumer lag of the processors' and the deliverer's groups by partition
// (0 once delivered) and no produce error; the password appears nowhere
// in /metrics.
func TestServeKafkaTLSSCRAM(t *testing.T) {
	const pass = "kafka-Pa55-word"
	pki := kafkatest.NewPKI(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(pki.ServerTLS(false)), kfake.EnableSASL(),
		kfake.Superuser(kafka.SASLScramSHA512, "blueprint", pass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	tc, err := kafka.TLSFiles{CA: pki.CA}.Config()
	if err != nil {
		t.Fatal(err)
	}
	sasl, err := kafka.NewSASL("scram-sha-512", "blueprint", pass)
	if err != nil {
		t.Fatal(err)
	}
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "all", Partitions: 2,
		Security: &kafka.Security{TLS: tc, SASL: sasl}}})
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "app"})
	id := installButton(t, h, tok, "Button", apiKey)
	if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order("k-tls"), time.Now().UnixMilli()); st != 200 {
		t.Fatalf("ingest: %d %v", st, out)
	}
	deadline := time.Now().Add(30 * time.Second) // group joins on kfake take a few seconds
	for {
		if _, ok := h.fake.Order("k-tls"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the order at the fake Button")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The deliverer commits just after the vendor's answer: wait for its
	// lag to fall to 0.
	var m string
	for deadline := time.Now().Add(15 * time.Second); ; {
		m = h.scrape()
		if sample(m, `blueprint_kafka_consumer_lag_sum{group="blueprint-deliver-`+id+`",topic="delivery-`+id+`"}`) == 0 &&
			sample(m, `blueprint_kafka_consumer_lag_sum{group="blueprint-process",topic="raw-events"}`) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag not 0 after the delivery:\n%s", grepLines(m, "blueprint_kafka"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for series, want := range map[string]float64{
		`blueprint_kafka_records_produced_total{topic="raw-events"}`:                                                         1,
		`blueprint_kafka_records_produced_total{topic="delivery-` + id + `"}`:                                                1,
		`blueprint_kafka_consumer_lag{group="blueprint-process",partition="0",topic="raw-events"}`:                           0,
		`blueprint_kafka_consumer_lag{group="blueprint-process",partition="1",topic="raw-events"}`:                           0,
		`blueprint_kafka_consumer_lag{group="blueprint-deliver-` + id + `",partition="1",topic="delivery-retry-` + id + `"}`: 0,
		`blueprint_kafka_lag_errors_total`:                                                                                   0,
	} {
		if got := sample(m, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(m, "blueprint_kafka_produce_errors_total{") {
		t.Errorf("produce errors:\n%s", grepLines(m, "produce_errors"))
	}
	if strings.Contains(m, pass) {
		t.Error("the SASL password is in /metrics")
	}
}

// TestServeKafkaLagIngestOnly: a process of role ingest reports the lag
// of the processors' group, which no process runs: every event ingested
// and not yet processed (the group has never committed).
func TestServeKafkaLagIngestOnly(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "ingest", Partitions: 3}})
	tok := h.login()
	_, src, _ := h.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "app"})
	for i := range 5 {
		if st, out := h.post("/v1/events", src["pipeline_key"].(string), src["secret_key"].(string), order("lag-"+strconv.Itoa(i)), time.Now().UnixMilli()); st != 200 {
			t.Fatalf("ingest: %d %v", st, out)
		}
	}
	m := h.scrape()
	if got := sample(m, `blueprint_kafka_consumer_lag_sum{group="blueprint-process",topic="raw-events"}`); got != 5 {
		t.Errorf("lag of blueprint-process = %v, want 5\n%s", got, grepLines(m, "blueprint_kafka"))
	}
	if got := sample(m, `blueprint_kafka_records_produced_total{topic="raw-events"}`); got != 5 {
		t.Errorf("records produced to raw-events = %v, want 5", got)
	}
	var parts float64
	for p := range 3 {
		if v := sample(m, `blueprint_kafka_consumer_lag{group="blueprint-process",partition="`+strconv.Itoa(p)+`",topic="raw-events"}`); v >= 0 {
			parts += v
		} else {
			t.Errorf("no lag series for partition %d", p)
		}
	}
	if parts != 5 {
		t.Errorf("lag by partition sums to %v", parts)
	}
}

func grepLines(s, sub string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			b.WriteString(l)
		}
	}
	return b.String()
}
