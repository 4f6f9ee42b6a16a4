package main

// Kafka mode (-kafka): `blueprint fake-kafka` as the broker, and serve with
// --kafka-brokers, either as one process of role all or split into one
// ingest process, one process process and -deliverers deliver processes.
// The load sets up one state (login, install Button, a source) with a
// serve of role ingest, stops it, and starts the owner (role all or
// ingest) on a copy of that state; roles process and deliver keep no
// state: they take only the copy's key file and learn the integration
// from the integrations topic.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

// kafkaMode are the flags of Kafka mode.
type kafkaMode struct {
	kafka      bool
	roles      string
	deliverers int
	partitions int
	cpuprofile string
	watch      bool
}

func (k *kafkaMode) register() {
	flag.BoolVar(&k.kafka, "kafka", false, "run serve on Kafka: `blueprint fake-kafka` as the broker and serve --kafka-brokers (no kill -9: -kill and -state are ignored)")
	flag.StringVar(&k.roles, "roles", "all", "with -kafka: `all` (one serve --role all) or split (one --role ingest, one --role process, -deliverers --role deliver)")
	flag.IntVar(&k.deliverers, "deliverers", 1, "with -kafka -roles split: how many --role deliver processes")
	flag.IntVar(&k.partitions, "partitions", 6, "with -kafka: serve's --kafka-partitions (and fake-kafka's --partitions)")
	flag.BoolVar(&k.watch, "watch", false, "with -kafka: keep a live stream (GET /v1/admin/live) open on the owner during the load, read as fast as it comes; with -roles split the process and deliver roles then copy their steps to live-events")
	flag.StringVar(&k.cpuprofile, "cpuprofile", "", "with -kafka: write a CPU profile of each process (fake-kafka, every serve) into `DIR` (BLUEPRINT_CPUPROFILE)")
}

// proc is a blueprint process started by the Kafka mode.
type proc struct {
	name   string
	cmd    *exec.Cmd
	done   chan struct{}
	stderr string // its file, unless -v
	admin  string
	ingest string
}

var fakeKafkaRE = regexp.MustCompile(`^kafka: listening on (\S+)$`)

// startProc starts the blueprint binary with args and waits for its first
// line of standard output, which must match re.
func startProc(c config, dir, name string, args []string, re *regexp.Regexp) (*proc, []string, error) {
	cmd := exec.Command(c.blueprint, args...)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "BLUEPRINT_CPUPROFILE=") })
	env = append(env, "BLUEPRINT_ADMIN_EMAIL="+adminEmail, "BLUEPRINT_ADMIN_PASSWORD="+adminPass)
	if c.cpuprofile != "" {
		env = append(env, "BLUEPRINT_CPUPROFILE="+filepath.Join(c.cpuprofile, name+".pprof"))
	}
	cmd.Env = env
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	if c.verbose {
		cmd.Stderr = os.Stderr
	} else {
		f, err := os.Create(filepath.Join(dir, name+".stderr"))
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		cmd.Stderr, p.stderr = f, f.Name()
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
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
	go func() { cmd.Wait(); close(p.done) }()
	select {
	case line := <-first:
		if m := re.FindStringSubmatch(line); m != nil {
			return p, m, nil
		}
		p.kill()
		return nil, nil, fmt.Errorf("%s did not start (%q): %s", name, line, p.tail())
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, nil, fmt.Errorf("%s did not start within 60 s: %s", name, p.tail())
	}
}

func (p *proc) tail() string {
	if p.stderr == "" {
		return "see its standard error above"
	}
	b, _ := os.ReadFile(p.stderr)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}

func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// stop sends SIGTERM (a CPU profile is written on the way out) and waits.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

// kafkaServingRE is serve's first line in Kafka mode: roles process and
// deliver name no ingest listener.
var kafkaServingRE = regexp.MustCompile(`^serving: admin (http://[^\s,]+)(?:, ingest (http://[^\s,]+))?`)

// startKafkaServe starts serve with role. The owner of the state (roles
// all and ingest) runs on state; roles process and deliver keep no state
// and take the key file in state (the owner's, copied), with which the
// integrations topic's secrets are sealed.
func startKafkaServe(c config, dir, name, state, brokers, role, vendorURL string) (*proc, error) {
	args := []string{"serve", "--state", state, "--ingest-listen", "127.0.0.1:0"}
	if role == "process" || role == "deliver" {
		args = []string{"serve", "--secret-key-file", filepath.Join(state, "secret.key"), "--kafka-instance-id", name}
	}
	p, m, err := startProc(c, dir, name, append(args, "--admin-listen", "127.0.0.1:0",
		"--vendor-url", vendorURL, "--retry-base", "50ms", "--retry-cap", "1s", "--concurrency", strconv.Itoa(c.concurrency),
		"--kafka-brokers", brokers, "--role", role, "--kafka-partitions", strconv.Itoa(c.partitions)), kafkaServingRE)
	if err != nil {
		return nil, err
	}
	p.admin, p.ingest = m[1], m[2]
	return p, nil
}

// copyState copies a stopped serve's state: its users, sources and
// integrations (service.db) and the key that decrypts their secrets (roles
// process and deliver read only the key).
func copyState(from, to string) error {
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for _, f := range []string{"service.db", "secret.key"} {
		b, err := os.ReadFile(filepath.Join(from, f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// lagSums reads blueprint_kafka_consumer_lag_sum by "group topic".
func lagSums(admin string) map[string]float64 {
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	re := regexp.MustCompile(`^blueprint_kafka_consumer_lag_sum\{group="([^"]+)",topic="([^"]+)"\} (\S+)$`)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			v, _ := strconv.ParseFloat(m[3], 64)
			out[m[1]+" "+m[2]] = v
		}
	}
	return out
}

func total(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func fmtLag(m map[string]float64) string {
	if m == nil {
		return "unreadable"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 || !strings.Contains(k, "retry") {
			parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

func runKafka(c config) error {
	if c.roles != "all" && c.roles != "split" {
		return fmt.Errorf("-roles %q: want all or split", c.roles)
	}
	if c.deliverers < 1 || (c.roles == "all" && c.deliverers != 1) {
		return errors.New("-deliverers: at least 1, and more only with -roles split")
	}
	if c.partitions < 1 {
		return errors.New("-partitions: at least 1")
	}
	dir, err := os.MkdirTemp("", "kafkaload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if c.cpuprofile != "" {
		if err := os.MkdirAll(c.cpuprofile, 0o755); err != nil {
			return err
		}
	}
	fake := fakebutton.New(fakebutton.Options{Latency: c.latency})
	vendorURL, err := fake.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer fake.Close()

	fk, m, err := startProc(c, dir, "fake-kafka", []string{"fake-kafka", "--listen", "127.0.0.1:0", "--partitions", strconv.Itoa(c.partitions)}, fakeKafkaRE)
	if err != nil {
		return err
	}
	defer fk.stop()
	brokers := m[1]

	// One state, set up through the API, then copied for each process.
	base := filepath.Join(dir, "setup")
	setup, err := startKafkaServe(c, dir, "setup", base, brokers, "ingest", vendorURL)
	if err != nil {
		return err
	}
	st, out, err := call("POST", setup.admin+"/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	if err != nil || st != 200 {
		setup.stop()
		return fmt.Errorf("login: %d %v %v", st, out, err)
	}
	tok, _ := out["access_token"].(string)
	st, out, err = call("POST", setup.admin+"/v1/admin/integration-catalog/button/install", tok, map[string]any{
		"name": "Button", "variant": "default", "delivery_mode": "server_side",
		"config": map[string]string{"application_id": "app-abc123", "api_key": fakebutton.DefaultAPIKey}})
	if err != nil || st != 201 {
		setup.stop()
		return fmt.Errorf("install: %d %v %v", st, out, err)
	}
	st, out, err = call("POST", setup.admin+"/v1/admin/sources", tok, map[string]string{"name": "load"})
	if err != nil || st != 201 {
		setup.stop()
		return fmt.Errorf("source: %d %v %v", st, out, err)
	}
	pk, _ := out["pipeline_key"].(string)
	sk, _ := out["secret_key"].(string)
	setup.stop()

	roles := []string{"all"}
	if c.roles == "split" {
		roles = []string{"ingest", "process"}
		for range c.deliverers {
			roles = append(roles, "deliver")
		}
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	nd := 0
	for _, role := range roles {
		name := role
		if role == "deliver" {
			nd++
			name = fmt.Sprintf("deliver-%d", nd)
		}
		state := filepath.Join(dir, name)
		if err := copyState(base, state); err != nil {
			return err
		}
		p, err := startKafkaServe(c, dir, name, state, brokers, role, vendorURL)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	ingest, admin := procs[0].ingest, procs[0].admin

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	post := func(client *http.Client, body []byte) (int, error) {
		return signedPost(client, ingest, pk, sk, c.batch > 1, body)
	}

	// Warm up: one order through every role, so that the consumer groups
	// have joined before the clock starts.
	warm := []byte(orderEvent("warm-up"))
	if c.batch > 1 {
		warm = []byte(`{"batch":[` + string(warm) + `]}`)
	}
	t0 := time.Now()
	for {
		if st, err := post(client, warm); err == nil && st == 200 {
			break
		}
		if time.Since(t0) > time.Minute {
			return errors.New("ingest did not accept the warm-up order within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for {
		if _, ok := fake.Orders()["warm-up"]; ok {
			break
		}
		if time.Since(t0) > 2*time.Minute {
			return fmt.Errorf("the warm-up order did not reach Button within 2 minutes: %s", procs[len(procs)-1].tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Printf("warm-up:   one order through fake-kafka and %s in %.1f s (consumer groups joined)\n", strings.Join(roles, ", "), time.Since(t0).Seconds())
	var watched *liveCount
	if c.watch {
		if watched, err = watchLive(admin); err != nil {
			return err
		}
		defer watched.stop()
		time.Sleep(time.Second) // the followers start copying within a second
	}
	base0 := fake.Stats().Created
	cpu0 := map[string]time.Duration{}
	for _, p := range append([]*proc{fk}, procs...) {
		_, cpu0[p.name] = procStatus(p.cmd.Process.Pid)
	}
	_, selfCPU0 := procStatus(os.Getpid())

	// The load, as in the embedded mode (startLoad); a request is given up
	// after 102 attempts.
	ctx, stopLoad := context.WithTimeout(context.Background(), c.duration)
	defer stopLoad()
	start := time.Now()
	ld := startLoad(ctx, c, "kl", post, 102, nil)

	type sample struct {
		at      time.Duration
		created int64
		lag     float64
	}
	samples := []sample{{0, 0, 0}}
	peakLag := 0.0
	tick := time.NewTicker(time.Second)
	for loadDone := false; !loadDone; {
		select {
		case <-ctx.Done():
			loadDone = true
		case now := <-tick.C:
			lag := total(lagSums(admin))
			peakLag = max(peakLag, lag)
			samples = append(samples, sample{now.Sub(start), fake.Stats().Created - base0, lag})
		}
	}
	tick.Stop()
	ld.wg.Wait()
	acked, latencies, statuses := ld.acked, ld.latencies, ld.statuses
	loadEnd := time.Since(start)
	createdAtEnd := fake.Stats().Created - base0
	lagAtEnd := lagSums(admin)

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
	deadline := drainStart.Add(3 * time.Minute)
	for missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	lastAt := time.Since(start)
	var lagAfter map[string]float64
	for {
		lagAfter = lagSums(admin)
		if (lagAfter != nil && total(lagAfter) == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	settled := time.Since(start)
	cpu := map[string]time.Duration{}
	rss := map[string]int64{}
	for _, p := range append([]*proc{fk}, procs...) {
		var used time.Duration
		rss[p.name], used = procStatus(p.cmd.Process.Pid)
		cpu[p.name] = used - cpu0[p.name]
	}
	_, selfCPU := procStatus(os.Getpid())
	var finals, latSum, latCount float64
	for _, p := range procs {
		if v := metric(p.admin, "blueprint_requests_final_total"); !math.IsNaN(v) {
			finals += v
		}
		if v := metric(p.admin, "blueprint_vendor_latency_seconds_sum"); !math.IsNaN(v) {
			latSum += v
		}
		if v := metric(p.admin, "blueprint_vendor_latency_seconds_count"); !math.IsNaN(v) {
			latCount += v
		}
	}
	stats := fake.Stats()

	q := ld.quantile
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
	secs := loadEnd.Seconds()
	steady := math.NaN()
	if n := len(samples); n >= 3 {
		a, b := samples[1], samples[n-1]
		steady = float64(b.created-a.created) / (b.at - a.at).Seconds()
	}
	delivered := stats.Created - base0
	fmt.Printf("kafka:     fake-kafka (in memory), %d partitions; serve %s\n", c.partitions, strings.Join(roles, " + "))
	fmt.Printf("load:      %d workers, target %.0f events/s, %d per request, %.1f s\n", c.workers, c.rate, c.batch, secs)
	fmt.Printf("ingest:    %d events acknowledged (%.0f events/s); %d requests answered 200; retried or refused: %v; pacer tokens missed: %d\n",
		len(acked), float64(len(acked))/secs, len(latencies), statuses, ld.missed.Load())
	fmt.Printf("latency:   p50 %s, p99 %s, max %s (ingest request to 200 answer: the events are on raw-events, acks=all)\n", ms(q(0.50)), ms(q(0.99)), ms(q(1)))
	fmt.Printf("delivered: %d orders at Button during the load (%.0f/s; steady %.0f/s), %d in all, the last %.2f s after the load; end to end %.0f events/s\n",
		createdAtEnd, float64(createdAtEnd)/secs, steady, delivered, drained.Seconds(), float64(delivered)/lastAt.Seconds())
	fmt.Printf("lag:       peak %.0f records (all groups, sampled each second); when the load stopped: %s; 0 everywhere %.2f s after the load: %s\n",
		peakLag, fmtLag(lagAtEnd), (settled - loadEnd).Seconds(), fmtLag(lagAfter))
	fmt.Printf("vendor:    mean answer time seen by the deliverers %.1f ms (the fake Button's own latency: %s), %d in flight at most per deliverer\n",
		1000*latSum/max(latCount, 1), c.latency, c.concurrency)
	fmt.Printf("button:    %d requests, %d orders created, %d creates answered 409, %d other errors; final requests counted by the deliverers %.0f\n",
		stats.Requests, stats.Created, stats.Duplicates, stats.Unauthorized+stats.BadRequests+stats.NotFound+stats.MethodNotAllowed, finals)
	var cpus []string
	var sum time.Duration
	for _, p := range append([]*proc{fk}, procs...) {
		cpus = append(cpus, fmt.Sprintf("%s %.1f s (peak RSS %.0f MB)", p.name, cpu[p.name].Seconds(), float64(rss[p.name])/(1<<20)))
		sum += cpu[p.name]
	}
	cpus = append(cpus, fmt.Sprintf("load generator + fake Button %.1f s", (selfCPU-selfCPU0).Seconds()))
	sum += selfCPU - selfCPU0
	fmt.Printf("cpu:       over %.1f s of load and drain: %s; %.2f cores in all\n", lastAt.Seconds(), strings.Join(cpus, ", "), sum.Seconds()/lastAt.Seconds())
	if watched != nil {
		steps, dropped := watched.counts()
		fmt.Printf("live:      %d steps read on the owner's live stream (%d lost by the stream, as the hub's dropped notices say)\n", steps, dropped)
	}
	if c.cpuprofile != "" {
		fmt.Printf("profiles:  %s/{%s}.pprof once the processes stop (go tool pprof -top bin/blueprint FILE)\n", c.cpuprofile, strings.Join(append([]string{"fake-kafka"}, procNames(procs)...), ","))
	}
	if n := missing(); n > 0 {
		return fmt.Errorf("LOST: %d of %d acknowledged orders never reached Button", n, len(acked))
	}
	fmt.Printf("zero loss: all %d acknowledged orders reached Button\n", len(acked))
	return nil
}

func procNames(ps []*proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.name)
	}
	return out
}

// liveCount reads the owner's live stream and counts its steps.
type liveCount struct {
	mu             sync.Mutex
	steps, dropped int
	c              *websocket.Conn
	done           chan struct{}
}

var droppedRE = regexp.MustCompile(`^(\d+) messages dropped`)

// watchLive logs in to the owner and opens its live stream.
func watchLive(admin string) (*liveCount, error) {
	st, out, err := call("POST", admin+"/v1/admin/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass})
	if err != nil || st != 200 {
		return nil, fmt.Errorf("login for the live stream: %d %v %v", st, out, err)
	}
	tok, _ := out["access_token"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(admin, "http")+"/v1/admin/live",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
	if err != nil {
		return nil, fmt.Errorf("live stream: %w", err)
	}
	c.SetReadLimit(1 << 20)
	l := &liveCount{c: c, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			_, raw, err := c.Read(context.Background())
			if err != nil {
				return
			}
			var m struct{ Type, Message string }
			_ = json.Unmarshal(raw, &m)
			l.mu.Lock()
			if m.Type == "dropped" {
				if g := droppedRE.FindStringSubmatch(m.Message); g != nil {
					n, _ := strconv.Atoi(g[1])
					l.dropped += n
				}
			} else {
				l.steps++
			}
			l.mu.Unlock()
		}
	}()
	return l, nil
}

func (l *liveCount) counts() (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.steps, l.dropped
}

func (l *liveCount) stop() {
	l.c.Close(websocket.StatusNormalClosure, "")
	<-l.done
}
