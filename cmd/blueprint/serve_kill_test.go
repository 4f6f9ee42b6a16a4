package main

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

const (
	killAdminEmail = "admin@example.com"
	killAdminPass  = "change-me-now"
)

// buildBlueprint builds the CLI, without the race detector (a bcrypt
// login of cost 12 takes seconds under it), into a temporary directory.
func buildBlueprint(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the CLI")
	}
	bin := filepath.Join(t.TempDir(), "blueprint")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "GOFLAGS=") // not -race, whatever the caller's flags
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// serveProc is a `blueprint serve` process.
type serveProc struct {
	t             *testing.T
	cmd           *exec.Cmd
	admin, ingest string
	stderr        *os.File
	done          chan struct{} // closed when the process has exited
	err           error         // its exit, once done
}

var servingRE = regexp.MustCompile(`^serving: admin (http://\S+), ingest (http://\S+), state `)

// startServe starts serve on state with free loopback ports and waits for
// the line that names them.
func startServe(t *testing.T, bin, state, vendorURL string, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve", "--state", state, "--admin-listen", "127.0.0.1:0", "--ingest-listen", "127.0.0.1:0",
		"--vendor-url", vendorURL, "--retry-base", "50ms", "--retry-cap", "200ms"}, extra...)
	return launchServe(t, bin, "serve", args, servingRE, 20*time.Second)
}

// launchServe runs bin with args (a serve command named name in messages),
// its standard error in a file, and waits up to wait for the first line
// of its standard output, which re must match with the admin URL and the
// ingest URL (possibly empty) as its groups. It is killed at cleanup if
// still running.
func launchServe(t *testing.T, bin, name string, args []string, re *regexp.Regexp, wait time.Duration) *serveProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "BLUEPRINT_ADMIN_EMAIL="+killAdminEmail, "BLUEPRINT_ADMIN_PASSWORD="+killAdminPass)
	stderr, err := os.CreateTemp(t.TempDir(), name+"-stderr-*")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{t: t, cmd: cmd, stderr: stderr, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case line, ok := <-lines:
		m := re.FindStringSubmatch(line)
		if !ok || m == nil {
			cmd.Process.Kill()
			<-p.done
			t.Fatalf("%s did not say where it listens (%q)\nstderr:\n%s", name, line, p.logs())
		}
		p.admin, p.ingest = m[1], m[2]
	case <-time.After(wait):
		t.Fatalf("%s did not start within %s\nstderr:\n%s", name, wait, p.logs())
	}
	return p
}

func (p *serveProc) logs() string {
	b, _ := os.ReadFile(p.stderr.Name())
	return tail(string(b), 20)
}

// call makes a management request and decodes the JSON answer.
func (p *serveProc) call(method, path, token string, body any) (int, map[string]any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, p.admin+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// metric reads one unlabelled series of /metrics (-1: absent).
func (p *serveProc) metric(name string) float64 {
	resp, err := http.Get(p.admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// signedOrder posts one order, signed, to the ingest listener.
func signedOrder(c *http.Client, ingest, pipelineKey, secret, id string) (int, error) {
	body := []byte(`{"type":"track","event":"Order Completed","messageId":"m-` + id + `","timestamp":"2026-02-25T14:30:00Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"` + id + `","total":25.5,"currency":"USD","products":[{"sku":"S-1","name":"Tee","price":12.75,"quantity":2}]}}`)
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	req, _ := http.NewRequest("POST", ingest+"/v1/events", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+pipelineKey)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// poll waits until cond is true, failing the test after d.
func poll(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeKill9 kills a real `blueprint serve` process with SIGKILL while
// signed orders pour in from several clients, restarts it on the same
// state, and checks that every order acknowledged with 200 reached the fake
// Button exactly once (a retried create that meets 409 counts as
// delivered: the fake keeps the first) and that nothing acknowledged is
// lost.
func TestServeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and spawns processes")
	}
	bin := buildBlueprint(t)
	// Some latency at the vendor, so that requests are in flight and
	// pending when the process dies.
	button, vendorURL := fake(t, fakebutton.Options{Latency: 5 * time.Millisecond})
	state := t.TempDir()
	const concurrency = 8
	p := startServe(t, bin, state, vendorURL, "--concurrency", strconv.Itoa(concurrency))

	st, out := p.call("POST", "/v1/admin/auth/login", "", map[string]string{"email": killAdminEmail, "password": killAdminPass})
	if st != 200 {
		t.Fatalf("login: %d %v", st, out)
	}
	tok := out["access_token"].(string)
	if st, out = p.call("POST", "/v1/admin/integration-catalog/button/install", tok, map[string]any{
		"name": "Button", "variant": "default", "delivery_mode": "server_side",
		"config": map[string]string{"application_id": "app-abc123", "api_key": fakebutton.DefaultAPIKey},
	}); st != 201 {
		t.Fatalf("install: %d %v", st, out)
	}
	if st, out = p.call("POST", "/v1/admin/sources", tok, map[string]string{"name": "web"}); st != 201 {
		t.Fatalf("source: %d %v", st, out)
	}
	pk, sk := out["pipeline_key"].(string), out["secret_key"].(string)

	// Clients post distinct orders until the process dies under them.
	const clients = 6
	var (
		mu      sync.Mutex
		acked   = map[string]bool{} // answered 200
		posted  = map[string]bool{} // sent, whatever the answer
		refused = map[int]int{}     // other statuses
		next    atomic.Int64
		wg      sync.WaitGroup
		stop    = make(chan struct{})
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 15 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("k9-%05d", next.Add(1))
				mu.Lock()
				posted[id] = true
				mu.Unlock()
				status, err := signedOrder(c, p.ingest, pk, sk, id)
				if err != nil {
					return // the process is gone
				}
				mu.Lock()
				if status == 200 {
					acked[id] = true
				} else {
					refused[status]++
				}
				mu.Unlock()
			}
		}()
	}
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	poll(t, 15*time.Second, "300 orders acknowledged", func() bool { return ackedCount() >= 300 })
	delivered := len(button.Orders())
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	close(stop)
	wg.Wait()
	mu.Lock()
	ackedAtKill, postedAtKill := len(acked), len(posted)
	mu.Unlock()
	if len(refused) > 0 {
		t.Errorf("answers other than 200 before the kill: %v", refused)
	}
	t.Logf("at the kill: %d orders posted, %d acknowledged, %d at Button shortly before", postedAtKill, ackedAtKill, delivered)

	// The same state again: it drains what the dead process left.
	p2 := startServe(t, bin, state, vendorURL, "--concurrency", strconv.Itoa(concurrency))
	missing := func() []string {
		orders := button.Orders()
		var m []string
		for id := range acked {
			if _, ok := orders[id]; !ok {
				m = append(m, id)
			}
		}
		return m
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(missing()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if m := missing(); len(m) > 0 {
		t.Fatalf("%d of %d acknowledged orders never reached Button (e.g. %s)\nstderr:\n%s", len(m), len(acked), m[0], p2.logs())
	}
	poll(t, 20*time.Second, "an empty outbox", func() bool { return p2.metric("blueprint_outbox_pending") == 0 })
	if d := p2.metric("blueprint_dead_letters"); d != 0 {
		t.Errorf("%v dead letters after the restart", d)
	}

	// Exactly once: the fake records an order_id once and answers 409 to
	// a second create; every order it holds was posted, and is the order
	// posted.
	orders := button.Orders()
	for id, o := range orders {
		if !posted[id] {
			t.Errorf("Button holds order %s, never posted", id)
		}
		if o.Total != 2550 || o.Currency != "USD" {
			t.Errorf("order %s: total %d %s, want 2550 USD", id, o.Total, o.Currency)
		}
	}
	stats := button.Stats()
	if stats.Created != int64(len(orders)) {
		t.Errorf("Button created %d orders, holds %d", stats.Created, len(orders))
	}
	// A create answered 409 is one the dead process had sent without
	// storing the answer: at most the requests in flight at the kill.
	if stats.Duplicates > concurrency {
		t.Errorf("%d creates answered 409, more than the %d requests that can be in flight", stats.Duplicates, concurrency)
	}
	t.Logf("after the restart: %d orders at Button (%d acknowledged, %d posted and never answered), %d retried creates answered 409",
		len(orders), len(acked), postedAtKill-ackedAtKill, stats.Duplicates)

	// A clean stop after all.
	p2.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p2.done:
		if p2.err != nil {
			t.Errorf("serve after SIGTERM: %v\nstderr:\n%s", p2.err, p2.logs())
		}
	case <-time.After(15 * time.Second):
		t.Errorf("serve did not stop within 15 s of SIGTERM")
	}
}
