// Command serveload puts `blueprint serve` under signed load and says what
// it sustained: it starts a fake Button (in this process) and serve (the
// binary given by -blueprint) on loopback, logs in, installs Button with
// the integration page's seed body, creates a source, and posts signed
// orders, each with its own order_id and messageId, at -rate events/s from
// -workers clients for -duration. Halfway (-kill), it kills serve with
// SIGKILL and starts it again on the same state; clients retry what was not
// acknowledged, with the same messageId.
//
// It reports the ingest rate (events answered 200), the delivery rate
// (orders created at the fake Button, which only a delivered request
// makes) over the load and until the outbox has drained, the ingest
// latency (p50, p99, max: from sending a request to its answer), serve's
// peak RSS (VmHWM of /proc/PID/status) and CPU time, and checks that every
// order acknowledged with 200 reached Button (exit 1 otherwise).
//
// Usage: see bench/serve-load.sh.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

const (
	adminEmail = "admin@example.com"
	adminPass  = "change-me-now"
)

type config struct {
	blueprint   string
	rate        float64
	workers     int
	duration    time.Duration
	batch       int
	kill        bool
	concurrency int
	latency     time.Duration
	state       string
	verbose     bool
	kafkaMode   // -kafka and its flags (kafka.go)
}

func main() {
	// The load generator and the fake Button share the machine with serve:
	// the less CPU they spend collecting garbage, the more serve gets.
	debug.SetGCPercent(400)
	var c config
	flag.StringVar(&c.blueprint, "blueprint", "bin/blueprint", "the blueprint `binary` to run serve with")
	flag.Float64Var(&c.rate, "rate", 500, "target events per second, all workers together (0: as fast as they can)")
	flag.IntVar(&c.workers, "workers", 16, "concurrent clients")
	flag.DurationVar(&c.duration, "duration", 60*time.Second, "how long to post")
	flag.IntVar(&c.batch, "batch", 1, "events per request (1: POST /v1/events; more: POST /v1/batch)")
	flag.BoolVar(&c.kill, "kill", true, "kill serve with SIGKILL halfway, restart it on the same state, and check that nothing acknowledged is lost")
	flag.IntVar(&c.concurrency, "concurrency", 16, "serve's --concurrency (requests in flight to Button)")
	flag.DurationVar(&c.latency, "latency", 0, "the fake Button's latency per request")
	flag.StringVar(&c.state, "state", "", "serve's state directory (default: a new temporary one, removed at the end)")
	flag.BoolVar(&c.verbose, "v", false, "show serve's standard error")
	c.kafkaMode.register()
	flag.Parse()
	if c.workers < 1 || c.batch < 1 || c.batch > 500 || c.duration <= 0 || c.rate < 0 {
		fmt.Fprintln(os.Stderr, "serveload: -workers and -batch (≤ 500) must be at least 1, -duration positive, -rate not negative")
		os.Exit(2)
	}
	run := run
	if c.kafka {
		run = runKafka
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "serveload:", err)
		os.Exit(1)
	}
}

// serve is a running `blueprint serve`.
type serve struct {
	cmd   *exec.Cmd
	done  chan struct{}
	err   error
	admin string
}

var servingRE = regexp.MustCompile(`^serving: admin (http://\S+), ingest (http://\S+), state `)

func startServe(c config, state, adminAddr, ingestAddr, vendorURL string) (*serve, error) {
	cmd := exec.Command(c.blueprint, "serve", "--state", state, "--admin-listen", adminAddr, "--ingest-listen", ingestAddr,
		"--vendor-url", vendorURL, "--retry-base", "50ms", "--retry-cap", "1s", "--concurrency", strconv.Itoa(c.concurrency))
	cmd.Env = append(os.Environ(), "BLUEPRINT_ADMIN_EMAIL="+adminEmail, "BLUEPRINT_ADMIN_PASSWORD="+adminPass)
	if c.verbose {
		cmd.Stderr = os.Stderr
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &serve{cmd: cmd, done: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case first <- sc.Text():
			default:
			}
		}
		close(first)
	}()
	go func() { s.err = cmd.Wait(); close(s.done) }()
	select {
	case line := <-first:
		m := servingRE.FindStringSubmatch(line)
		if m == nil {
			cmd.Process.Kill()
			return nil, fmt.Errorf("serve did not start (%q); run with -v to see why", line)
		}
		s.admin = m[1]
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		return nil, errors.New("serve did not start within 30 s")
	}
	return s, nil
}

// procMem reads a process's resident anonymous memory and resident
// file-mapped pages (RssAnon, RssFile of /proc/PID/status, bytes).
func procMem(pid int) (anon, file int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n << 10
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
			anon = kb(v)
		} else if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			file = kb(v)
		}
	}
	return anon, file
}

// procStatus reads peak RSS (VmHWM, bytes) and CPU time of a process.
func procStatus(pid int) (hwm int64, cpu time.Duration) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				hwm = kb << 10
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the command (which may hold spaces): state is the
		// 3rd field, utime and stime the 14th and 15th, in clock ticks.
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			if len(f) > 12 {
				u, _ := strconv.ParseInt(f[11], 10, 64)
				s, _ := strconv.ParseInt(f[12], 10, 64)
				cpu = time.Duration(u+s) * 10 * time.Millisecond // USER_HZ is 100 on Linux
			}
		}
	}
	return hwm, cpu
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func call(method, url, token string, body any) (int, map[string]any, error) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, url, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// pace hands out a token every 1/perSecond s (0: as fast as they are
// taken) until ctx is done, then closes tokens; a token the workers are
// too busy to take is counted in missed, not queued.
func pace(ctx context.Context, perSecond float64, tokens chan<- struct{}, missed *atomic.Int64) {
	defer close(tokens)
	if perSecond == 0 {
		for ctx.Err() == nil {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
			}
		}
		return
	}
	interval := time.Duration(float64(time.Second) / perSecond)
	next := time.Now()
	for {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		select {
		case tokens <- struct{}{}:
		default:
			missed.Add(1)
		}
	}
}

// signedPost posts body to ingest's /v1/events (or /v1/batch) signed with
// the source's keys, and returns the status.
func signedPost(client *http.Client, ingest, pipelineKey, secretKey string, batch bool, body []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().UnixMilli(), 10)
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte(ts + "."))
	m.Write(body)
	path := "/v1/events"
	if batch {
		path = "/v1/batch"
	}
	req, _ := http.NewRequest("POST", ingest+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+pipelineKey)
	req.Header.Set("X-Timestamp", ts)
	req.Header.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// orders makes n order events with order IDs prefix-NNNNNNNN from seq: one
// event's body, or a batch of n.
func orders(prefix string, n int, seq *atomic.Int64) ([]string, []byte) {
	ids := make([]string, n)
	parts := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%08d", prefix, seq.Add(1))
		parts[i] = orderEvent(ids[i])
	}
	if n == 1 {
		return ids, []byte(parts[0])
	}
	return ids, []byte(`{"batch":[` + strings.Join(parts, ",") + `]}`)
}

func orderEvent(id string) string {
	return `{"type":"track","event":"Order Completed","messageId":"m-` + id + `","timestamp":"2026-02-25T14:30:00Z","context":{"consent":{"advertising":true},"ip":"203.0.113.7"},"properties":{"order_id":"` + id + `","total":25.5,"currency":"USD","products":[{"sku":"S-1","name":"Tee","price":12.75,"quantity":2}]}}`
}

// metric sums the samples of one series of serve's /metrics.
func metric(admin, name string) float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	sum, seen := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+" ") && !strings.HasPrefix(l, name+"{") {
			continue
		}
		if f, err := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64); err == nil {
			sum, seen = sum+f, true
		}
	}
	if !seen {
		return math.NaN()
	}
	return sum
}

func run(c config) error {
	state := c.state
	if state == "" {
		dir, err := os.MkdirTemp("", "serveload-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		state = filepath.Join(dir, "state")
	}
	fake := fakebutton.New(fakebutton.Options{Latency: c.latency})
	vendorURL, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer fake.Close()
	adminAddr, err := freeAddr()
	if err != nil {
		return err
	}
	ingestAddr, err := freeAddr()
	if err != nil {
		return err
	}
	ingest := "http://" + ingestAddr
	srv, err := startServe(c, state, adminAddr, ingestAddr, vendorURL)
	if err != nil {
		return err
	}
	defer func() {
		select {
		case <-srv.done:
		default:
			srv.cmd.Process.Kill()
			<-srv.done
		}
	}()

	st, out, err := call("POST", srv.admin+"/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	if err != nil || st != 200 {
		return fmt.Errorf("login: %d %v %v", st, out, err)
	}
	tok, _ := out["access_token"].(string)
	st, out, err = call("POST", srv.admin+"/v1/admin/integration-catalog/button/install", tok, map[string]any{
		"name": "Button", "variant": "default", "delivery_mode": "server_side",
		"config": map[string]string{"application_id": "app-abc123", "api_key": fakebutton.DefaultAPIKey}})
	if err != nil || st != 201 {
		return fmt.Errorf("install: %d %v %v", st, out, err)
	}
	st, out, err = call("POST", srv.admin+"/v1/admin/sources", tok, map[string]string{"name": "load"})
	if err != nil || st != 201 {
		return fmt.Errorf("source: %d %v %v", st, out, err)
	}
	pk, _ := out["pipeline_key"].(string)
	sk, _ := out["secret_key"].(string)

	// The pacer hands out one token per request on schedule; a worker
	// takes one, builds the next events and posts them until they are
	// answered 200 (a network error or a 503 while serve is down or busy:
	// the same events again).
	ctx, stopLoad := context.WithTimeout(context.Background(), c.duration)
	defer stopLoad()
	post := func(client *http.Client, body []byte) (int, error) {
		return signedPost(client, ingest, pk, sk, c.batch > 1, body)
	}
	start := time.Now()
	var restarting sync.RWMutex // held while serve is killed and started again
	ld := startLoad(ctx, c, "ld", post, 0, func() {
		restarting.RLock() // serve is restarting: wait for it
		restarting.RUnlock()
	})

	// Sample the fake's orders each second; kill and restart halfway.
	type sample struct {
		at      time.Duration
		created int64
	}
	samples := []sample{{0, 0}}
	var hwm1 int64
	var cpu1 time.Duration
	var downtime time.Duration
	killDone := false
	tick := time.NewTicker(time.Second)
	var peakAnon, peakFile int64 // sampled each second, both processes
	killAt := start.Add(c.duration / 2)
	for loadDone := false; !loadDone; {
		select {
		case <-ctx.Done():
			loadDone = true
		case now := <-tick.C:
			samples = append(samples, sample{now.Sub(start), fake.Stats().Created})
			restarting.Lock()
			anon, file := procMem(srv.cmd.Process.Pid)
			restarting.Unlock()
			peakAnon, peakFile = max(peakAnon, anon), max(peakFile, file)
			if c.kill && !killDone && now.After(killAt) {
				killDone = true
				restarting.Lock()
				hwm1, cpu1 = procStatus(srv.cmd.Process.Pid)
				t0 := time.Now()
				srv.cmd.Process.Signal(syscall.SIGKILL)
				<-srv.done
				ld.mu.Lock()
				ackedAtKill := len(ld.acked)
				ld.mu.Unlock()
				srv, err = startServe(c, state, adminAddr, ingestAddr, vendorURL)
				downtime = time.Since(t0)
				restarting.Unlock()
				if err != nil {
					stopLoad()
					ld.wg.Wait()
					return fmt.Errorf("restart after kill -9: %w", err)
				}
				fmt.Printf("kill -9 at %.1f s (%d events acknowledged), serving again after %s\n",
					now.Sub(start).Seconds(), ackedAtKill, downtime.Round(time.Millisecond))
			}
		}
	}
	tick.Stop()
	ld.wg.Wait()
	acked, latencies, statuses := ld.acked, ld.latencies, ld.statuses
	loadEnd := time.Since(start)
	createdAtEnd := fake.Stats().Created

	// Drain: every acknowledged order at Button, the outbox empty.
	missing := func() int {
		orders := fake.Orders()
		n := 0
		for id := range acked {
			if _, ok := orders[id]; !ok {
				n++
			}
		}
		return n
	}
	drainStart := time.Now()
	deadline := drainStart.Add(2 * time.Minute)
	for missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	for metric(srv.admin, "blueprint_outbox_pending") != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	total := time.Since(start)
	hwm2, cpu2 := procStatus(srv.cmd.Process.Pid)
	dead := metric(srv.admin, "blueprint_dead_letters")
	finals := metric(srv.admin, "blueprint_requests_final_total")
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.done:
	case <-time.After(20 * time.Second):
		srv.cmd.Process.Kill()
		<-srv.done
	}
	stats := fake.Stats()

	q := ld.quantile
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
	secs := loadEnd.Seconds()
	// The steady delivery rate: orders created between the first and the
	// last whole-second sample of the load, leaving out the start.
	steady := math.NaN()
	if n := len(samples); n >= 3 {
		a, b := samples[1], samples[n-1]
		steady = float64(b.created-a.created) / (b.at - a.at).Seconds()
	}
	fmt.Printf("load:      %d workers, target %.0f events/s, %d per request, %.1f s", c.workers, c.rate, c.batch, secs)
	if c.kill {
		fmt.Printf(", one kill -9 + restart (down %s)", downtime.Round(time.Millisecond))
	}
	fmt.Println()
	fmt.Printf("ingest:    %d events acknowledged (%.0f events/s); %d requests answered 200; retried or refused: %v; pacer tokens missed: %d\n",
		len(acked), float64(len(acked))/secs, len(latencies), statuses, ld.missed.Load())
	fmt.Printf("latency:   p50 %s, p99 %s, max %s (ingest request to 200 answer)\n", ms(q(0.50)), ms(q(0.99)), ms(q(1)))
	fmt.Printf("delivered: %d orders at Button during the load (%.0f/s; steady %.0f/s), %d in all after %.2f s of drain; end to end %.0f events/s\n",
		createdAtEnd, float64(createdAtEnd)/secs, steady, stats.Created, drained.Seconds(), float64(stats.Created)/total.Seconds())
	fmt.Printf("button:    %d requests, %d orders created, %d retried creates answered 409, %d other errors\n",
		stats.Requests, stats.Created, stats.Duplicates, stats.Unauthorized+stats.BadRequests+stats.NotFound+stats.MethodNotAllowed)
	fmt.Printf("memory:    peak anonymous RSS %s (heap, stacks), peak file-mapped RSS %s (the outbox file's pages, reclaimable), sampled each second\n", mb(peakAnon), mb(peakFile))
	if c.kill {
		fmt.Printf("serve:     peak RSS %s before the kill, %s after the restart; CPU %.1f s + %.1f s; outbox dead letters %v; final requests (restarted process) %v\n",
			mb(hwm1), mb(hwm2), cpu1.Seconds(), cpu2.Seconds(), dead, finals)
	} else {
		fmt.Printf("serve:     peak RSS %s; CPU %.1f s; outbox dead letters %v; final requests %v\n", mb(hwm2), cpu2.Seconds(), dead, finals)
	}
	if n := missing(); n > 0 {
		return fmt.Errorf("LOST: %d of %d acknowledged orders never reached Button", n, len(acked))
	}
	fmt.Printf("zero loss: all %d acknowledged orders reached Button exactly once\n", len(acked))
	return nil
}

// load is the posting side of a run: a pacer hands out one token per
// request on schedule; a worker takes one, builds the next events and posts
// them until they are answered 200 (a network error or a 503 or 429 while
// serve is down or busy: the same events again, after pause), or refused
// for good (counted, not retried).
type load struct {
	mu        sync.Mutex // guards acked, latencies and statuses during the load
	acked     map[string]bool
	latencies []time.Duration
	statuses  map[string]int // refusals and network errors, by status
	missed    atomic.Int64   // tokens the workers were too busy to take
	wg        sync.WaitGroup // the workers: done once ctx is
}

// startLoad starts c.workers workers posting orders (ids prefixed with
// prefix) with post until ctx is done. maxAttempts bounds the attempts
// per request (0: until answered); pause, when set, is called before each
// retry.
func startLoad(ctx context.Context, c config, prefix string, post func(*http.Client, []byte) (int, error), maxAttempts int, pause func()) *load {
	ld := &load{acked: make(map[string]bool, 1<<16), latencies: make([]time.Duration, 0, 1<<16), statuses: map[string]int{}}
	tokens := make(chan struct{}, c.workers*4)
	go pace(ctx, c.rate/float64(c.batch), tokens, &ld.missed)
	var seq atomic.Int64
	for range c.workers {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			for range tokens {
				ids, body := orders(prefix, c.batch, &seq)
				for attempt := 1; ; attempt++ {
					t0 := time.Now()
					status, err := post(client, body)
					lat := time.Since(t0)
					ld.mu.Lock()
					switch {
					case err != nil:
						ld.statuses["network error"]++
					case status == 200:
						for _, id := range ids {
							ld.acked[id] = true
						}
						ld.latencies = append(ld.latencies, lat)
					default:
						ld.statuses[strconv.Itoa(status)]++
					}
					ld.mu.Unlock()
					if err == nil && (status == 200 || status != 503 && status != 429) || maxAttempts > 0 && attempt >= maxAttempts {
						break
					}
					if pause != nil {
						pause()
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	return ld
}

// quantile is the p-quantile of the latencies of the requests answered 200
// (0 when none was); call it once the workers are done.
func (ld *load) quantile(p float64) time.Duration {
	if !slices.IsSorted(ld.latencies) {
		slices.Sort(ld.latencies)
	}
	if len(ld.latencies) == 0 {
		return 0
	}
	return ld.latencies[min(len(ld.latencies)-1, int(math.Ceil(p*float64(len(ld.latencies))))-1)]
}
