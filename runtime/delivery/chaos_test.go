package delivery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// TestMain lets the test binary run a pipeline as its own process, so that
// the crash test can kill it with SIGKILL: with DELIVERY_TEST_CHILD set to
// "STATE EVENTS VENDOR-URL API-KEY", it runs the events through an outbox
// in STATE and prints the summary.
func TestMain(m *testing.M) {
	if spec := os.Getenv("DELIVERY_TEST_CHILD"); spec != "" {
		os.Exit(child(strings.Fields(spec)))
	}
	os.Exit(m.Run())
}

func child(args []string) int {
	state, events, vendor, key := args[0], args[1], args[2], args[3]
	q, err := outbox.OpenBolt(filepath.Join(state, "outbox.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer q.Close()
	in, err := os.Open(events)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer in.Close()
	b, err := bindButton("retail", key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	u, err := url.Parse(vendor)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	p, err := delivery.New(q, fastOptions(u), b)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sum, err := p.Run(context.Background(), in)
	out, _ := json.Marshal(sum)
	fmt.Println(string(out))
	if err != nil || sum.Pending > 0 {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func distinctEventUUIDs(srv *fakebutton.Server) map[string]bool {
	ids := map[string]bool{}
	for _, e := range srv.Events() {
		var body struct{ UUID string }
		json.Unmarshal(e.Body, &body)
		ids[body.UUID] = true
	}
	return ids
}

// The chaos test of the delivery issue (moved here from the CLI): 10 000
// events through a pipeline on a Bolt outbox to a fake Button answering 20 %
// 5xx, 5 % 429 with Retry-After: 1, and dropping 2 % of connections before
// and 2 % after recording the order. Every order arrives, each is created
// once (retries meet 409, counted as delivered), none is lost, and the
// summary matches what the fake got.
func TestChaos(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1500
	}
	input, orders, carts := events(n)
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-chaos-key", ErrorRate: 0.20, ThrottleRate: 0.05, RetryAfter: time.Second,
		DropBeforeRate: 0.02, DropAfterRate: 0.02, Seed: 7})
	q, err := outbox.OpenBolt(filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	opts := delivery.Options{
		Sender:      send.Options{VendorURL: vendor},
		Policy:      send.Policy{MaxAttempts: 20, Base: 5 * time.Millisecond, Cap: 50 * time.Millisecond},
		Concurrency: 32,
	}
	p, err := delivery.New(q, opts, bind(t, "retail", "sk-chaos-key"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, err := p.Run(context.Background(), bytes.NewReader(input))
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("after %v: %v", elapsed, err)
	}
	if want := (delivery.Summary{Events: int64(n), Delivered: int64(n)}); sum != want {
		t.Errorf("summary %+v, want %+v", sum, want)
	}
	st := srv.Stats()
	got := srv.Orders()
	if len(got) != orders || int(st.Created) != orders {
		t.Errorf("the fake has %d orders (%d creates), want %d", len(got), st.Created, orders)
	}
	for i := range n {
		if i%3 != 2 {
			if _, ok := got[fmt.Sprintf("ord-%d", i)]; !ok {
				t.Fatalf("order ord-%d never arrived", i)
			}
		}
	}
	if ids := distinctEventUUIDs(srv); len(ids) != carts {
		t.Errorf("the fake has %d distinct add_to_cart events, want %d", len(ids), carts)
	}
	if st.ServerErrors == 0 || st.Throttled == 0 || st.DroppedBefore == 0 || st.DroppedAfter == 0 || st.Duplicates == 0 {
		t.Errorf("faults were not exercised: %+v", st)
	}
	if counts, _ := q.Counts(context.Background()); counts[outbox.Delivered] != n || counts[outbox.Pending] != 0 {
		t.Errorf("outbox %v", counts)
	}
	t.Logf("%d events in %v: %s", n, elapsed, strings.ReplaceAll(srv.Summary(), "\n", "; "))
}

// The crash test (moved here from the CLI): a process running a pipeline
// is killed with SIGKILL half-way through and started again on the same
// outbox; in the end every event is delivered or dead-lettered, none lost,
// and no order is created twice. What the first process finished, the
// second counts as already final.
func TestSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	n := 3000
	path, orders, carts := eventsFile(t, n)
	srv, vendor := fake(t, fakebutton.Options{APIKey: "sk-crash-key", ErrorRate: 0.1, DropAfterRate: 0.02, Latency: 2 * time.Millisecond, Seed: 3})
	state := t.TempDir()
	env := append(os.Environ(), "DELIVERY_TEST_CHILD="+strings.Join([]string{state, path, vendor.String(), "sk-crash-key"}, " "))
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = env
	var first bytes.Buffer
	cmd.Stdout = &first
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for srv.Stats().Requests < int64(n/3) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := srv.Stats().Requests
	if before >= int64(n) {
		t.Fatalf("the first run finished before it was killed (%d requests)", before)
	}
	t.Logf("killed after %d requests; first run printed %q", before, first.String())

	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	var sum delivery.Summary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if sum.Delivered+sum.Dead+sum.AlreadyDelivered+sum.AlreadyDead != int64(n) || sum.AlreadyDelivered == 0 || sum.Pending != 0 {
		t.Errorf("second run %+v: want all %d events final, some of them by the first run", sum, n)
	}
	if len(srv.Orders()) != orders || int(srv.Stats().Created) != orders {
		t.Errorf("the fake has %d orders (%d creates), want %d each created once", len(srv.Orders()), srv.Stats().Created, orders)
	}
	if ids := distinctEventUUIDs(srv); len(ids) != carts {
		t.Errorf("%d distinct add_to_carts, want %d", len(ids), carts)
	}
}
