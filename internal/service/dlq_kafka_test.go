package service_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/service"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
)

// secretForms are a key and its base64 forms (Basic auth is base64 of
// "key:").
func secretForms(keys ...string) []string {
	var out []string
	for _, k := range keys {
		out = append(out, k)
		for _, s := range []string{k, k + ":"} {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
				out = append(out, enc.EncodeToString([]byte(s)))
			}
		}
	}
	return out
}

// TestServeKafkaDLQ walks the README's repair on Kafka (role all): a
// wrong api_key makes the fake Button answer 401, the orders are dead
// letters in the DLQ API (list and show, status and reason, the key
// nowhere), an event without order_id is a reject; every error code of
// the endpoints is the embedded mode's; the key is PATCHed and
// everything replayed: the orders reach the fake once each with the new
// key and leave the list, the reject is answered again. No API answer
// and no file of the state directory holds either key.
func TestServeKafkaDLQ(t *testing.T) {
	const wrong = "sk-wrong-999"
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "all", Partitions: 2}})
	tok := h.login()
	var answers [][]byte
	call := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		st, out, _ := h.call(method, path, tok, body)
		raw, _ := json.Marshal(out)
		answers = append(answers, raw)
		return st, out
	}
	_, src := call("POST", "/v1/admin/sources", map[string]string{"name": "web"})
	st, out := call("POST", "/v1/admin/integration-catalog/button/install", map[string]any{"name": "Button", "variant": "default",
		"config": map[string]any{"application_id": "app-abc123", "api_key": wrong}})
	if st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	id := out["id"].(string)
	base := "/v1/admin/integrations/" + id + "/dlq"
	pk, sk := src["pipeline_key"].(string), src["secret_key"].(string)
	now := time.Now().UnixMilli()
	// No order_id, and the key in a property: a reject, scrubbed.
	noID := []byte(`{"type":"track","event":"Order Completed","messageId":"m-noid","userId":"u-1","context":{"consent":{"advertising":true}},"properties":{"note":"` + wrong + `","total":1,"currency":"USD"}}`)
	for _, ev := range [][]byte{order("kd-1"), order("kd-2"), noID} {
		if st, out := h.post("/v1/events", pk, sk, ev, now); st != 200 {
			t.Fatalf("ingest: %d %v", st, out)
		}
	}

	var list map[string]any
	deadline := time.Now().Add(30 * time.Second) // group joins on kfake take a few seconds
	for {
		_, list = call("GET", base, nil)
		if d, _ := list["data"].([]any); len(d) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for 3 dead letters: %v", list)
		}
		time.Sleep(50 * time.Millisecond)
	}
	data := list["data"].([]any)
	var deadIDs []string
	for _, x := range data[:2] {
		d := x.(map[string]any)
		ev, _ := d["original_event"].(map[string]any) // each entry in the dlq-events shape, with its event
		if d["kind"] != "delivery" || d["status"] != float64(401) || d["attempts"] != float64(1) || d["error"] != kafka.ErrorDeliveryFailed ||
			d["method"] != "POST" || !strings.HasSuffix(d["url"].(string), "/v1/order") || !strings.HasPrefix(d["message_id"].(string), "m-kd-") ||
			d["integration_id"] != id || ev["messageId"] != d["message_id"] || d["details"] == "" {
			t.Fatalf("dead delivery: %v", d)
		}
		deadIDs = append(deadIDs, d["id"].(string))
	}
	if got := sample(h.scrape(), "blueprint_dead_letters"); got != 2 {
		t.Errorf("blueprint_dead_letters = %v with 2 dead deliveries listed", got)
	}
	rej := data[2].(map[string]any)
	if rej["kind"] != "reject" || rej["error"] != "missing_required_field" || !strings.Contains(strings.Join(anyStrings(rej["fields"]), ","), "order_id") {
		t.Fatalf("reject: %v", rej)
	}
	rejID := rej["id"].(string)
	if st, out = call("GET", base+"?kind=reject", nil); st != 200 || len(out["data"].([]any)) != 1 {
		t.Fatalf("kind=reject: %d %v", st, out)
	}
	if st, out = call("GET", base+"?kind=delivery&limit=1", nil); st != 200 || len(out["data"].([]any)) != 1 || out["has_more"] != true || out["next_cursor"] == nil {
		t.Fatalf("first page: %d %v", st, out)
	}
	if st, out = call("GET", base+"?kind=delivery&limit=1&cursor="+out["next_cursor"].(string), nil); st != 200 || len(out["data"].([]any)) != 1 || out["has_more"] != false || out["next_cursor"] != nil {
		t.Fatalf("second page: %d %v", st, out)
	}
	if st, out = call("GET", base+"/"+deadIDs[0], nil); st != 200 || out["status"] != float64(401) || out["original_event"].(map[string]any)["messageId"] == nil {
		t.Fatalf("show a dead delivery: %d %v", st, out)
	}
	if st, out = call("GET", base+"/"+rejID, nil); st != 200 || out["original_event"].(map[string]any)["properties"].(map[string]any)["note"] != "***" {
		t.Fatalf("show the reject: %d %v", st, out)
	}

	// The embedded mode's codes.
	for _, c := range []struct {
		method, path string
		body         any
		status       int
		code         string
	}{
		{"GET", "/v1/admin/integrations/int_nope/dlq", nil, 404, "NOT_FOUND"},
		{"GET", "/v1/admin/integrations/int_nope/dlq/" + deadIDs[0], nil, 404, "NOT_FOUND"},
		{"POST", "/v1/admin/integrations/int_nope/dlq/replay", map[string]any{"all": true}, 404, "NOT_FOUND"},
		{"GET", base + "/nope", nil, 404, "NOT_FOUND"},
		{"GET", base + "/rej_9_9", nil, 404, "NOT_FOUND"},
		{"GET", base + "?kind=other", nil, 400, "INVALID_PARAMETER"},
		{"GET", base + "?limit=101", nil, 200, ""}, // served as 100
		{"GET", base + "?limit=0", nil, 400, "INVALID_PARAMETER"},
		{"GET", base + "?cursor=x", nil, 400, "INVALID_PARAMETER"},
		{"POST", base + "/replay", `{"ids":`, 400, "INVALID_JSON"},
		{"POST", base + "/replay", `{"ids":"x"}`, 400, "INVALID_JSON"},
		{"POST", base + "/replay", `{"every":true}`, 400, "UNKNOWN_FIELD"},
		{"POST", base + "/replay", `{}`, 422, "INVALID_REPLAY"},
		{"POST", base + "/replay", map[string]any{"ids": []string{deadIDs[0]}, "all": true}, 422, "INVALID_REPLAY"},
		{"POST", base + "/replay", map[string]any{"ids": []string{deadIDs[0], "nope"}}, 404, "NOT_FOUND"},
		{"DELETE", "/v1/admin/integrations/" + id, nil, 409, "INTEGRATION_HAS_QUEUED"},
	} {
		if st, out := call(c.method, c.path, c.body); st != c.status || errCode(out) != c.code {
			t.Errorf("%s %s %v: %d %v, want %d %s", c.method, c.path, c.body, st, out, c.status, c.code)
		}
	}
	// A reject that is not listed is 404 naming it, as in embedded mode.
	if st, out = call("POST", base+"/replay", map[string]any{"ids": []string{"rej_9_9"}}); st != 404 || errCode(out) != "NOT_FOUND" ||
		fmt.Sprint(out["error"].(map[string]any)["ids"]) != "[rej_9_9]" {
		t.Fatalf("replay of an unknown reject: %d %v", st, out)
	}
	if n := len(h.fake.Orders()); n != 0 {
		t.Fatalf("%d orders at the fake before the key is fixed", n)
	}

	// The key fixed, everything replayed.
	if st, out = call("PATCH", "/v1/admin/integrations/"+id, map[string]any{"config": map[string]any{"api_key": apiKey}, "change_summary": "fix the key"}); st != 200 {
		t.Fatalf("patch: %d %v", st, out)
	}
	if st, out = call("POST", base+"/replay", map[string]bool{"all": true}); st != 200 || out["replayed"] != float64(3) {
		t.Fatalf("replay: %d %v", st, out)
	}
	// The reject is answered again (listed at once, under the same ID:
	// the same event rejected by the same integration is one dead letter);
	// the dead deliveries left the list.
	if _, out = call("GET", base, nil); len(out["data"].([]any)) != 1 {
		t.Fatalf("after replay: %v", out)
	}
	again := out["data"].([]any)[0].(map[string]any)
	if again["kind"] != "reject" || again["id"] != rejID || again["error"] != "missing_required_field" {
		t.Fatalf("the reject replayed: %v", again)
	}
	waitFor(t, "both orders at the fake", func() bool { return len(h.fake.Orders()) == 2 })
	time.Sleep(300 * time.Millisecond)
	if st := h.fake.Stats(); st.Created != 2 || st.Duplicates != 0 || len(h.fake.Orders()) != 2 {
		t.Fatalf("fake Button: %+v", st)
	}
	for _, o := range []string{"kd-1", "kd-2"} {
		if _, ok := h.fake.Order(o); !ok {
			t.Errorf("order %s not at the fake", o)
		}
	}
	if st, out = call("GET", base+"/"+deadIDs[0], nil); st != 404 || errCode(out) != "NOT_FOUND" {
		t.Fatalf("a replayed dead letter shown: %d %v", st, out)
	}
	if st, out = call("POST", base+"/replay", map[string]any{"ids": deadIDs}); st != 200 || out["replayed"] != float64(0) {
		t.Fatalf("replayed twice: %d %v", st, out)
	}
	// The replayed reject, answered again, is listed under its ID (a
	// replay naming it evaluates it again); a reject ID not listed is 404.
	if st, out = call("POST", base+"/replay", map[string]any{"ids": append(slices.Clone(deadIDs), "rej_0_0")}); st != 404 ||
		fmt.Sprint(out["error"].(map[string]any)["ids"]) != "[rej_0_0]" {
		t.Fatalf("replay naming an unknown reject: %d %v", st, out)
	}
	if st, out = call("PATCH", "/v1/admin/integrations/"+id, map[string]any{"enabled": false}); st != 200 {
		t.Fatalf("disable: %d %v", st, out)
	}
	if st, out = call("POST", base+"/replay", map[string]bool{"all": true}); st != 409 || errCode(out) != "INTEGRATION_DISABLED" {
		t.Fatalf("replay while disabled: %d %v", st, out)
	}

	h.stop()
	forms := secretForms(apiKey, wrong)
	for _, a := range answers {
		for _, f := range forms {
			if bytes.Contains(a, []byte(f)) {
				t.Errorf("an answer holds a secret (%q): %s", f, a)
			}
		}
	}
	n := 0
	filepath.WalkDir(h.state, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if filepath.Base(p) == kafka.DLQIndexFile {
			n++
		}
		b, _ := os.ReadFile(p)
		for _, f := range forms {
			if bytes.Contains(b, []byte(f)) {
				t.Errorf("%s holds a secret (%q)", p, f)
			}
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("no %s in the state directory", kafka.DLQIndexFile)
	}
}

// TestServeKafkaDLQSplitRoles: a process that only ingests (the admin
// side of split roles) lists the dead letters other processes put on
// dlq-events, and replays a dead delivery by producing it again to
// delivery-{id} with attempts 0 and the same item ID.
func TestServeKafkaDLQSplitRoles(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "ingest", Partitions: 1}})
	tok := h.login()
	id := installButton(t, h, tok, "Button", apiKey)
	base := "/v1/admin/integrations/" + id + "/dlq"

	// A deliverer elsewhere gave up on an order.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ev := order("split-1")
	dead, _ := json.Marshal(kafka.DeadRecord{RejectRecord: delivery.RejectRecord{Error: kafka.ErrorAttemptsExhausted, Details: "gave up after 5 attempts: 503",
		Fields: []string{}, IntegrationID: id, OriginalEvent: ev}, Kind: kafka.KindDelivery, ItemID: "0123456789abcdef0123456789abcdef", Status: 503, Attempts: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.DLQEvents, Key: []byte("u-1"), Value: dead},
		&kgo.Record{Topic: kafka.DLQEvents, Value: []byte(`{"integration_id":"` + id + `","error":`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var data []any
	waitFor(t, "two dead letters", func() bool {
		_, out, _ := h.call("GET", base, tok, nil)
		data, _ = out["data"].([]any)
		return len(data) == 2
	})
	byID := map[string]map[string]any{}
	for _, x := range data {
		byID[x.(map[string]any)["id"].(string)] = x.(map[string]any)
	}
	d := byID["0123456789abcdef0123456789abcdef"]
	if d == nil || d["status"] != float64(503) || d["attempts"] != float64(5) || d["error"] != kafka.ErrorAttemptsExhausted {
		t.Fatalf("dead delivery: %v", data)
	}
	bad := byID["rej_0_1"]
	if bad == nil || bad["error"] != kafka.ErrorUnreadable || !strings.Contains(bad["details"].(string), "could not be read") {
		t.Fatalf("unreadable record: %v", data)
	}
	if st, out, _ := h.call("POST", base+"/replay", tok, map[string]bool{"all": true}); st != 200 || out["replayed"] != float64(1) {
		t.Fatalf("replay: %d %v", st, out)
	}
	// The unreadable one stays listed.
	if _, out, _ := h.call("GET", base, tok, nil); len(out["data"].([]any)) != 1 || out["data"].([]any)[0].(map[string]any)["id"] != "rej_0_1" {
		t.Fatalf("after replay: %v", out)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(kafka.DeliveryTopic(id)))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	fs := rd.PollFetches(ctx)
	var recs []*kgo.Record
	fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	if len(recs) != 1 {
		t.Fatalf("%s: %d records (%v)", kafka.DeliveryTopic(id), len(recs), fs.Err())
	}
	var rec kafka.DeliveryRecord
	if err := json.Unmarshal(recs[0].Value, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.ID != "0123456789abcdef0123456789abcdef" || rec.Attempts != 0 || rec.IntegrationID != id || rec.MessageID != "m-split-1" || string(recs[0].Key) != "u-1" || !bytes.Equal(rec.Event, ev) {
		t.Fatalf("replayed record: %s", recs[0].Value)
	}
}

// TestServeKafkaDLQUnavailable: with Kafka gone, the dead letters are
// still listed (from the index), and a replay is 503 UNAVAILABLE with
// Retry-After, nothing marked replayed.
func TestServeKafkaDLQUnavailable(t *testing.T) {
	defer service.SetReplayTimeout(500 * time.Millisecond)()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := startWith(t, options{fastOwner: true, kafka: &service.KafkaConfig{Brokers: c.ListenAddrs(), Role: "ingest", Partitions: 1}})
	tok := h.login()
	id := installButton(t, h, tok, "Button", apiKey)
	base := "/v1/admin/integrations/" + id + "/dlq"
	dead, _ := json.Marshal(kafka.DeadRecord{RejectRecord: delivery.RejectRecord{Error: kafka.ErrorDeliveryFailed, Fields: []string{}, IntegrationID: id,
		OriginalEvent: order("gone-1")}, Kind: kafka.KindDelivery, ItemID: "00112233445566778899aabbccddeeff", Status: 401, Attempts: 1})
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.DLQEvents, Value: dead}).FirstErr()
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the dead letter", func() bool {
		_, out, _ := h.call("GET", base, tok, nil)
		d, _ := out["data"].([]any)
		return len(d) == 1
	})
	c.Close()
	st, out, hdr := h.call("POST", base+"/replay", tok, map[string]bool{"all": true})
	if st != 503 || errCode(out) != "UNAVAILABLE" || hdr.Get("Retry-After") == "" {
		t.Fatalf("replay with Kafka gone: %d %v %v", st, out, hdr)
	}
	if st, out, _ := h.call("GET", base+"/00112233445566778899aabbccddeeff", tok, nil); st != 200 || out["status"] != float64(401) {
		t.Fatalf("the dead letter after a failed replay: %d %v", st, out)
	}
}
