package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tidwall/gjson"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/internal/kafka"
)

// TestServeKafkaKill9 runs the Kafka roles as separate `blueprint serve`
// processes on a broker in its own process (`blueprint fake-kafka`, in
// memory: the broker is not the one killed): one of role ingest (it owns
// the state: admin API, sources, integrations, which it publishes on the
// integrations topic), one of role process and, first, one of role
// deliver (no state: integrations from the topic, the key file copied
// from the owner's). Button is installed through the API and 20,000
// signed events are posted in batches from several clients: orders
// (delivered), orders the fake answers 400 (dead letters on dlq-events),
// events without an order_id (rejects on dlq-events) and events without
// advertising consent (skipped). A quarter of the way, a second deliverer
// joins (the partitions are reassigned from one deliverer to two); half
// of the way, the processor and the first deliverer are killed with
// SIGKILL and restarted with their --kafka-instance-id (they take their
// partitions back at once). Once everything has drained, it prints
// "N delivered, N skipped, N rejected, N dead-lettered, 0 lost" and fails
// on any acknowledged event whose fate is not the one it must have, on an
// order created twice (the fake's creates are counted per order_id: a
// re-sent create must be answered 409), and on an order never posted.
func TestServeKafkaKill9(t *testing.T) {
	total := 20000 // events posted; -short posts fewer
	if testing.Short() {
		total = 600
	}
	start := time.Now()
	bin := buildBlueprint(t)
	t.Logf("built the CLI in %s", time.Since(start).Round(time.Millisecond))

	brokers := startFakeKafka(t, bin)

	v := newCountingVendor(t)
	state := t.TempDir()
	common := []string{"--kafka-brokers", brokers, "--vendor-url", v.url, "--retry-base", "50ms", "--retry-cap", "200ms", "--concurrency", "8"}
	owner := startKafkaServe(t, bin, "ingest-1", append([]string{"--state", state, "--role", "ingest", "--admin-listen", "127.0.0.1:0", "--ingest-listen", "127.0.0.1:0"}, common...)...)
	st, out := owner.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": killAdminEmail, "password": killAdminPass})
	if st != 200 {
		t.Fatalf("login: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	if st, out = owner.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{
		"name": "Button", "variant": "default", "delivery_mode": "server_side",
		"config": map[string]string{"application_id": "app-abc123", "api_key": fakebutton.DefaultAPIKey},
	}); st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	if st, out = owner.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"}); st != 201 {
		t.Fatalf("source: %d %v", st, out)
	}
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)

	// The deployment's key, copied next to the followers (mode 0600).
	key := filepath.Join(t.TempDir(), "secret.key")
	raw, err := os.ReadFile(filepath.Join(state, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	follower := func(role, id string) *serveProc {
		return startKafkaServe(t, bin, id, append([]string{"--role", role, "--secret-key-file", key, "--admin-listen", "127.0.0.1:0"}, common...)...)
	}
	proc := follower("process", "process-1")
	del1 := follower("deliver", "deliver-1")
	t.Logf("three processes up at %s", time.Since(start).Round(time.Millisecond))

	// Clients post batches of events, rate events a second together, until
	// total are acknowledged; a quarter of the way a second deliverer
	// joins, half of the way the processor and deliver-1 are killed and
	// restarted, and the load goes on meanwhile and after.
	const clients, rate, perBatch = 8, 2000, 25
	var (
		mu      sync.Mutex
		acked   = map[string]string{} // event id -> kind, answered 200
		posted  = map[string]bool{}
		refused = map[int]int{}
		next    int
		wg      sync.WaitGroup
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 15 * time.Second}
			tick := time.NewTicker(time.Second * clients * perBatch / rate)
			defer tick.Stop()
			for ; ; <-tick.C {
				mu.Lock()
				if next >= total {
					mu.Unlock()
					return
				}
				var ids, kinds []string
				var bodies [][]byte
				for ; next < total && len(ids) < perBatch; next++ {
					id, kind, body := killEvent(next + 1)
					posted[id] = true
					ids, kinds, bodies = append(ids, id), append(kinds, kind), append(bodies, body)
				}
				mu.Unlock()
				status, accepted, err := postBatch(hc, owner.ingest, pk, sk, bodies)
				mu.Lock()
				switch {
				case err != nil:
					refused[0] += len(ids)
				case status == 200 && accepted == len(ids):
					for i, id := range ids {
						acked[id] = kinds[i]
					}
				default:
					refused[status] += len(ids)
				}
				mu.Unlock()
			}
		}()
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	poll(t, 60*time.Second, fmt.Sprintf("%d events acknowledged", total/4), func() bool { return ackedCount() >= total/4 })
	del2 := follower("deliver", "deliver-2")
	t.Logf("a second deliverer joined with %d events acknowledged, %d orders at Button (%s)", ackedCount(), len(v.fb.Orders()), time.Since(start).Round(time.Millisecond))
	poll(t, 60*time.Second, fmt.Sprintf("%d events acknowledged", total/2), func() bool { return ackedCount() >= total/2 })
	before := len(v.fb.Orders())
	for _, p := range []*serveProc{proc, del1} {
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p.done
	}
	t.Logf("killed the processor and deliver-1 with %d events acknowledged, %d orders at Button (%s)", ackedCount(), before, time.Since(start).Round(time.Millisecond))
	proc = follower("process", "process-1")
	del1 = follower("deliver", "deliver-1")
	t.Logf("restarted them with %d events acknowledged (%s)", ackedCount(), time.Since(start).Round(time.Millisecond))
	wg.Wait()
	if len(refused) > 0 {
		t.Fatalf("events not acknowledged (status: count; 0 = no answer): %v", refused)
	}
	t.Logf("%d events acknowledged at %s", len(acked), time.Since(start).Round(time.Millisecond))

	// Drain: every acknowledged event reaches the fate it must have.
	dlq := readDLQ(t, strings.Split(brokers, ","))
	var delivered, skipped, rejected, dead int
	var lost []string
	fates := func() {
		orders := v.fb.Orders()
		dl := dlq.snapshot()
		delivered, skipped, rejected, dead, lost = 0, 0, 0, 0, nil
		for id, kind := range acked {
			_, atButton := orders[id]
			rec, inDLQ := dl[id]
			switch {
			case kind == "order" && atButton && !inDLQ:
				delivered++
			case kind == "bad" && !atButton && inDLQ && rec == "delivery/"+kafka.ErrorDeliveryFailed:
				dead++
			case kind == "reject" && !atButton && inDLQ && rec == "reject/missing_required_field":
				rejected++
			case kind == "skip" && !atButton && !inDLQ:
				skipped++ // only final once the rest has drained
			default:
				lost = append(lost, fmt.Sprintf("%s (%s; at Button %v, dlq %q)", id, kind, atButton, rec))
			}
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for fates(); len(lost) > 0 && time.Now().Before(deadline); fates() {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a late duplicate or a skip delivered after all would show now
	fates()
	t.Logf("drained at %s", time.Since(start).Round(time.Millisecond))
	line := fmt.Sprintf("%d delivered, %d skipped, %d rejected, %d dead-lettered, %d lost", delivered, skipped, rejected, dead, len(lost))
	t.Log(line)
	if len(lost) > 0 {
		if len(lost) > 10 {
			lost = lost[:10]
		}
		t.Fatalf("%s: e.g. %s", line, strings.Join(lost, ", "))
	}
	if delivered+skipped+rejected+dead != total || delivered == 0 || skipped == 0 || rejected == 0 || dead == 0 {
		t.Errorf("%s: want %d events, each kind at least once", line, total)
	}

	// Exactly once at Button: one create per order_id; every re-sent
	// create (after a kill, the same item ID) answered 409.
	creates, conflicts := v.counts()
	dups := 0
	for id, n := range creates {
		if n != 1 {
			t.Errorf("order %s created %d times", id, n)
		}
		if !posted[id] {
			t.Errorf("Button holds order %s, never posted", id)
		}
	}
	for _, n := range conflicts {
		dups += n
	}
	if st := v.fb.Stats(); st.Created != int64(len(creates)) || st.Duplicates != int64(dups) {
		t.Errorf("fake stats %+v; counted %d creates, %d 409s", st, len(creates), dups)
	}
	t.Logf("duplicates explained: %d re-sent creates answered 409 (%d orders)", dups, len(conflicts))
	// At least once on dlq-events too: work a killed process had not
	// committed is done again, and its dead letters produced again (each
	// is still the same event, counted once above). Said, not hidden.
	rej, dd := dlq.repeated()
	t.Logf("dead letters recorded again on dlq-events (uncommitted work redone after the kill): %d rejects, %d dead deliveries", rej, dd)

	// A clean stop of every process.
	for _, p := range []*serveProc{owner, proc, del1, del2} {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range []*serveProc{owner, proc, del1, del2} {
		select {
		case <-p.done:
			t.Logf("%s stopped at %s", p.cmd.Args[3], time.Since(start).Round(time.Millisecond))
			if p.err != nil {
				t.Errorf("serve after SIGTERM: %v\nstderr:\n%s", p.err, p.logs())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("serve did not stop within 15 s of SIGTERM")
		}
	}
	t.Logf("stopped at %s", time.Since(start).Round(time.Millisecond))
}

// killEvent is the i-th event posted and the fate it must have: orders
// delivered, some refused 400 by the fake (dead letters), some without
// order_id (rejects), some without advertising consent (skipped).
func killEvent(i int) (id, kind string, body []byte) {
	consent := "true"
	props := `"total":25.5,"currency":"USD","products":[{"sku":"S-1","name":"Tee","price":12.75,"quantity":2}]`
	switch {
	case i%31 == 0:
		id, kind = fmt.Sprintf("reject-%05d", i), "reject"
	case i%23 == 0:
		id, kind = fmt.Sprintf("skip-%05d", i), "skip"
		consent = "false"
		props = `"order_id":"` + id + `",` + props
	case i%17 == 0:
		id, kind = fmt.Sprintf("bad-%05d", i), "bad"
		props = `"order_id":"` + id + `",` + props
	default:
		id, kind = fmt.Sprintf("k9k-%05d", i), "order"
		props = `"order_id":"` + id + `",` + props
	}
	body = []byte(`{"type":"track","event":"Order Completed","messageId":"` + id + `","anonymousId":"a-` + strconv.Itoa(i%40) + `","timestamp":"2026-02-25T14:30:00Z","context":{"consent":{"advertising":` + consent + `}},"properties":{` + props + `}}`)
	return id, kind, body
}

// postBatch posts events signed as one batch, and returns the status and
// how many events the answer says were accepted.
func postBatch(c *http.Client, ingest, pipelineKey, secret string, events [][]byte) (status, accepted int, err error) {
	body := append(append([]byte(`{"batch":[`), bytes.Join(events, []byte(","))...), "]}"...)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	req, _ := http.NewRequest("POST", ingest+"/v1/batch", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+pipelineKey)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, int(gjson.GetBytes(out, "accepted").Int()), nil
}

// startFakeKafka runs `blueprint fake-kafka` on a free loopback port, in
// its own process, and returns its address; it is stopped at cleanup.
func startFakeKafka(t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "fake-kafka", "--listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(l, "kafka: listening on ")
		if !ok {
			t.Fatalf("fake-kafka said %q", l)
		}
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("fake-kafka did not start within 30 s")
	}
	return ""
}

// countingVendor is the fake Button (5 ms of latency, so that requests
// are in flight at the kill) behind a layer that answers 400 to order_ids
// starting "bad-" and counts, per order_id, the creates and the 409s.
type countingVendor struct {
	fb        *fakebutton.Server
	url       string
	mu        sync.Mutex
	creates   map[string]int
	conflicts map[string]int
}

func newCountingVendor(t *testing.T) *countingVendor {
	v := &countingVendor{fb: fakebutton.New(fakebutton.Options{Latency: 5 * time.Millisecond}), creates: map[string]int{}, conflicts: map[string]int{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		oid := gjson.GetBytes(body, "order_id").String()
		if strings.HasPrefix(oid, "bad-") {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"meta":{"status":"error"},"error":{"message":"order refused"}}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w}
		v.fb.ServeHTTP(rec, r)
		v.mu.Lock()
		switch {
		case rec.status/100 == 2:
			v.creates[oid]++
		case rec.status == http.StatusConflict:
			v.conflicts[oid]++
		}
		v.mu.Unlock()
	}))
	t.Cleanup(hs.Close)
	v.url = hs.URL
	return v
}

func (v *countingVendor) counts() (creates, conflicts map[string]int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	creates, conflicts = map[string]int{}, map[string]int{}
	for k, n := range v.creates {
		creates[k] = n
	}
	for k, n := range v.conflicts {
		conflicts[k] = n
	}
	return creates, conflicts
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// dlqReader reads dlq-events from the start as records come, keeping for
// each event id (its messageId) what the record says: "reject/<error>" or
// "delivery/<error>".
type dlqReader struct {
	mu    sync.Mutex
	seen  map[string]string
	count map[string]int // records per event id: more than one is work redone after a kill
}

func readDLQ(t *testing.T, brokers []string) *dlqReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(kafka.DLQEvents),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	d := &dlqReader{seen: map[string]string{}, count: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var rec struct {
					Error         string          `json:"error"`
					Kind          string          `json:"kind"`
					OriginalEvent json.RawMessage `json:"original_event"`
				}
				if json.Unmarshal(r.Value, &rec) != nil {
					return
				}
				kind := "reject"
				if rec.Kind != "" {
					kind = rec.Kind
				}
				d.mu.Lock()
				id := gjson.GetBytes(rec.OriginalEvent, "messageId").String()
				d.seen[id] = kind + "/" + rec.Error
				d.count[id]++
				d.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return d
}

// repeated counts the records of dead letters recorded more than once on
// dlq-events (the same event: a killed processor's rejects produced again,
// a killed deliverer's dead deliveries produced again), by kind.
func (d *dlqReader) repeated() (rejects, deliveries int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, n := range d.count {
		if n > 1 && strings.HasPrefix(d.seen[id], "reject/") {
			rejects += n - 1
		} else if n > 1 {
			deliveries += n - 1
		}
	}
	return rejects, deliveries
}

func (d *dlqReader) snapshot() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.seen))
	for k, v := range d.seen {
		out[k] = v
	}
	return out
}

var kafkaServingRE = regexp.MustCompile(`^serving: admin (http://[^\s,]+)(?:, ingest (http://[^\s,]+))?`)

// startKafkaServe starts `blueprint serve` with args and
// --kafka-instance-id id, and waits for the line that names its
// listeners (an ingest listener only for roles that ingest). It is
// killed at cleanup if still running.
func startKafkaServe(t *testing.T, bin, id string, args ...string) *serveProc {
	t.Helper()
	return launchServe(t, bin, "serve "+id, append([]string{"serve", "--kafka-instance-id", id}, args...), kafkaServingRE, 30*time.Second)
}
