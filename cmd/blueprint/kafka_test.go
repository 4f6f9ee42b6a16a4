package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/crypto/bcrypt"

	"github.com/blueprint-engine/blueprint/internal/kafka"
	"github.com/blueprint-engine/blueprint/internal/kafka/kafkatest"
	"github.com/blueprint-engine/blueprint/internal/service/store"
)

// TestFakeKafkaCommand: fake-kafka prints its address, is a broker a kgo
// client produces to and consumes from (a topic created on first use with
// --partitions partitions), and stops when its context ends (as by
// SIGINT), closing its port.
func TestFakeKafkaCommand(t *testing.T) {
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: pw, stderr: &lockedWriter{w: &errb}}
	cmd := a.fakeKafkaCmd()
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--partitions", "2"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := cmd.ExecuteContext(ctx)
		pw.Close()
		errc <- err
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	m := regexp.MustCompile(`^kafka: listening on (127\.0\.0\.1:[0-9]+)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line %q", line)
	}
	addr := m[1]

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation(), kgo.ConsumeTopics("demo"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Topic: "demo", Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	fs := cl.PollFetches(pctx)
	var got []string
	fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	if len(got) != 1 || got[0] != "hello" {
		t.Fatalf("consumed %q (%v)", got, fs.Errors())
	}
	td, err := kadm.NewClient(cl).ListTopics(pctx, "demo")
	if err != nil || len(td["demo"].Partitions) != 2 {
		t.Fatalf("topic demo: %v partitions, %v", len(td["demo"].Partitions), err)
	}
	cl.Close()

	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(br); rest <- string(b) }()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fake-kafka did not stop")
	}
	if r := <-rest; !strings.HasPrefix(r, "kafka: stopped") {
		t.Errorf("after the stop: %q", r)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still listening", addr)
	}
}

func TestFakeKafkaUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "9092"}, "HOST:PORT"},
		{[]string{"--listen", ":9092"}, "give a host"},
		{[]string{"--listen", "0.0.0.0:9092"}, "wildcard"},
		{[]string{"--listen", "[::]:9092"}, "wildcard"},
		{[]string{"--partitions", "0"}, "--partitions 0"},
		{[]string{"--partitions", "many"}, "partitions"},
		{[]string{"extra"}, "unknown command"},
	} {
		_, errOut, code := cli(t, "", append([]string{"fake-kafka"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	// A port taken: exit 1.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, errOut, code := cli(t, "", "fake-kafka", "--listen", ln.Addr().String()); code != 1 || !strings.Contains(errOut, "address already in use") {
		t.Errorf("busy port: exit %d, %q", code, errOut)
	}
	out, _, code := cli(t, "", "fake-kafka", "--help")
	for _, want := range []string{"in memory", "demos", "tests", "kafka: listening on HOST:PORT", "127.0.0.1:9092", "Examples:"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("help lacks %q (exit %d)", want, code)
		}
	}
}

// securityOf runs serve's Kafka flag checks on args, without serving.
func securityOf(t *testing.T, env map[string]string, args ...string) (*kafka.Security, int32, []string, error) {
	t.Helper()
	var kf kafkaFlags
	var brokers []string
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cmd.Flags().StringSliceVar(&brokers, "kafka-brokers", nil, "")
	kf.register(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	return kf.security(cmd, len(brokers) > 0, func(k string) string { return env[k] })
}

// TestServeKafkaSecurityFlags: the TLS config built from the flags, the
// SASL credentials from a file or the environment, the warnings, and
// every refused combination a usage error (exit 2) that never holds the
// password.
func TestServeKafkaSecurityFlags(t *testing.T) {
	p := kafkatest.NewPKI(t)
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(pwFile, []byte("file-Pa55\n"), 0o600)
	loose := filepath.Join(dir, "pw-loose")
	os.WriteFile(loose, []byte("loose-Pa55\r\n"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	b := "--kafka-brokers=127.0.0.1:1"

	sec, parts, warns, err := securityOf(t, nil, b, "--kafka-tls-ca", p.CA, "--kafka-tls-cert", p.Cert, "--kafka-tls-key", p.Key,
		"--kafka-tls-server-name", "b-1.example", "--kafka-sasl-mechanism", "SCRAM-SHA-512", "--kafka-sasl-user", "bp",
		"--kafka-sasl-password-file", pwFile, "--kafka-partitions", "6")
	if err != nil || sec.TLS == nil || sec.TLS.RootCAs == nil || len(sec.TLS.Certificates) != 1 || sec.TLS.ServerName != "b-1.example" ||
		sec.SASL == nil || sec.SASL.Mechanism() != "SCRAM-SHA-512" || sec.SASL.User() != "bp" || parts != 6 || len(warns) != 0 {
		t.Fatalf("mTLS + SCRAM: %+v %d %v %v", sec, parts, warns, err)
	}
	if sec, parts, _, err := securityOf(t, nil, b, "--kafka-tls"); err != nil || sec.TLS == nil || sec.TLS.RootCAs != nil || sec.SASL != nil || parts != 3 {
		t.Errorf("--kafka-tls: %+v %d %v", sec, parts, err)
	}
	if sec, _, _, err := securityOf(t, nil, b); err != nil || sec.TLS != nil || sec.SASL != nil {
		t.Errorf("plaintext: %+v %v", sec, err)
	}
	// The environment's password; PLAIN without TLS is allowed, with a
	// warning.
	sec, _, warns, err = securityOf(t, map[string]string{kafkaPasswordEnv: "env-Pa55"}, b, "--kafka-sasl-mechanism", "plain", "--kafka-sasl-user", "bp")
	if err != nil || sec.SASL == nil || sec.SASL.Mechanism() != "PLAIN" || len(warns) != 1 || !strings.Contains(warns[0], "clear text") {
		t.Errorf("PLAIN: %+v %v %v", sec, warns, err)
	}
	// A password file others can read: a warning.
	_, _, warns, err = securityOf(t, nil, b, "--kafka-tls", "--kafka-sasl-mechanism", "plain", "--kafka-sasl-user", "bp", "--kafka-sasl-password-file", loose)
	if err != nil || len(warns) != 1 || !strings.Contains(warns[0], "chmod 600") {
		t.Errorf("loose file: %v %v", warns, err)
	}

	scram := []string{b, "--kafka-sasl-mechanism", "scram-sha-256", "--kafka-sasl-user", "bp"}
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"--kafka-tls"}, "--kafka-tls needs --kafka-brokers"},
		{"", []string{"--kafka-partitions", "6"}, "--kafka-partitions needs --kafka-brokers"},
		{"", []string{"--kafka-sasl-user", "bp"}, "--kafka-sasl-user needs --kafka-brokers"},
		{"", []string{"--kafka-sasl-password", "flag-Pa55"}, "never a flag value"},
		{"", []string{b, "--kafka-sasl-password=flag-Pa55"}, "never a flag value"},
		{"", []string{b, "--kafka-partitions", "0"}, "--kafka-partitions 0: out of range"},
		{"", []string{b, "--kafka-tls-cert", p.Cert}, "--kafka-tls-cert needs --kafka-tls-key"},
		{"", []string{b, "--kafka-tls-key", p.Key}, "--kafka-tls-key needs --kafka-tls-cert"},
		{"", []string{b, "--kafka-tls=false", "--kafka-tls-ca", p.CA}, "turn TLS on"},
		{"", []string{b, "--kafka-tls-ca", filepath.Join(dir, "absent.pem")}, "absent.pem"},
		{"", []string{b, "--kafka-tls-ca", pwFile}, "no PEM certificate"},
		{"", []string{b, "--kafka-tls-cert", p.Cert, "--kafka-tls-key", p.CA}, "client certificate"},
		{"", []string{b, "--kafka-sasl-mechanism", "gssapi", "--kafka-sasl-user", "bp"}, `"gssapi": want plain, scram-sha-256 or scram-sha-512`},
		{"", []string{b, "--kafka-sasl-mechanism", "plain"}, "needs --kafka-sasl-user"},
		{"", []string{b, "--kafka-sasl-user", "bp"}, "--kafka-sasl-user needs --kafka-sasl-mechanism"},
		{"", []string{b, "--kafka-sasl-password-file", pwFile}, "needs --kafka-sasl-mechanism"},
		{"", scram, "needs a password"},
		{"env-Pa55", append(scram, "--kafka-sasl-password-file", pwFile), "given twice"},
		{"", append(scram, "--kafka-sasl-password-file", filepath.Join(dir, "absent")), "absent"},
		{"", append(scram, "--kafka-sasl-password-file", empty), "is empty"},
	} {
		if tc.env != "" {
			t.Setenv(kafkaPasswordEnv, tc.env)
		} else {
			os.Unsetenv(kafkaPasswordEnv)
		}
		out, errOut, code := cli(t, "", append([]string{"serve", "--state", t.TempDir()}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
		if strings.Contains(out+errOut, "Pa55") {
			t.Errorf("%v: the password is printed: %s%s", tc.args, out, errOut)
		}
	}
}

// seedServeOwner creates serve's first user in state with a cheap hash
// (a cost-12 bcrypt takes seconds under -race).
func seedServeOwner(t *testing.T, state string) {
	t.Helper()
	key, err := store.LoadOrCreateKey(filepath.Join(state, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(state, "service.db"), key)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte(killAdminPass), bcrypt.MinCost)
	if err := st.CreateUser(&store.User{Email: killAdminEmail, PasswordHash: string(hash), Role: "owner"}); err != nil {
		t.Fatal(err)
	}
}

// TestServeKafkaSCRAM runs `blueprint serve --kafka-brokers` with the
// SASL flags against a kfake broker that requires SCRAM-SHA-256: with a
// wrong password (from a file) serve exits 1 within seconds, saying the
// broker refused the user's SCRAM authentication and never printing the
// password; with the right one (from the environment) it starts, creates
// its topics, serves /metrics with the Kafka series, and stops on SIGINT.
func TestServeKafkaSCRAM(t *testing.T) {
	const pass = "right-Pa55"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(kafka.SASLScramSHA256, "blueprint", pass))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	state := t.TempDir()
	seedServeOwner(t, state)
	wrong := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(wrong, []byte("wrong-Pa55\n"), 0o600)
	args := []string{"serve", "--state", state, "--admin-listen", "127.0.0.1:0", "--ingest-listen", "127.0.0.1:0",
		"--kafka-brokers", c.ListenAddrs()[0], "--kafka-partitions", "1", "--kafka-sasl-mechanism", "scram-sha-256", "--kafka-sasl-user", "blueprint"}

	os.Unsetenv(kafkaPasswordEnv)
	t0 := time.Now()
	out, errOut, code := cli(t, "", append(args, "--kafka-sasl-password-file", wrong)...)
	if code != 1 || !strings.Contains(errOut, `refused SASL SCRAM-SHA-256 authentication as user "blueprint"`) || !strings.Contains(errOut, c.ListenAddrs()[0]) {
		t.Fatalf("wrong password: exit %d\n%s%s", code, out, errOut)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	if strings.Contains(out+errOut, "Pa55") {
		t.Errorf("the password is printed:\n%s%s", out, errOut)
	}

	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Skip(err)
	}
	t.Setenv(kafkaPasswordEnv, pass)
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := run(append(args, "--log-level", "debug"), strings.NewReader(""), pw, &errb)
		pw.Close()
		done <- code
	}()
	br := bufio.NewReader(pr)
	line, _ := br.ReadString('\n')
	m := regexp.MustCompile(`^serving: admin (http://\S+), ingest`).FindStringSubmatch(line)
	if m == nil {
		<-done
		t.Fatalf("serve did not start: %q\n%s", line, errb.String())
	}
	go io.Copy(io.Discard, br)
	resp, err := http.Get(m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `blueprint_kafka_consumer_lag{group="blueprint-process",partition="0",topic="raw-events"} 0`) {
		t.Errorf("/metrics lacks the processors' lag:\n%s", metrics)
	}
	if err := self.Signal(os.Interrupt); err != nil {
		t.Skipf("cannot signal self: %v", err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit %d:\n%s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop on SIGINT")
	}
	if strings.Contains(errb.String()+string(metrics), pass) {
		t.Error("the password is in the logs or /metrics")
	}
}

// TestServeKafkaAnotherOwner: serve on a cluster whose integrations topic
// another state publishes exits 1 with ANOTHER_OWNER, naming that state
// and --kafka-take-over, and publishes nothing.
func TestServeKafkaAnotherOwner(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg := kafka.Config{Brokers: c.ListenAddrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := kafka.EnsureIntegrationsTopic(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	pub, err := kafka.NewConfigPublisher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Owner = "own_the_other_state"
	if _, err := pub.Publish(ctx, nil, []string{"int_other"}); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	seedServeOwner(t, state)
	out, errOut, code := cli(t, "", "serve", "--state", state, "--admin-listen", "127.0.0.1:0", "--ingest-listen", "127.0.0.1:0",
		"--kafka-brokers", c.ListenAddrs()[0], "--kafka-partitions", "1")
	if code != 1 || !strings.Contains(errOut, "ANOTHER_OWNER") || !strings.Contains(errOut, "own_the_other_state") || !strings.Contains(errOut, "--kafka-take-over") {
		t.Fatalf("exit %d, want 1 with ANOTHER_OWNER naming the other state and --kafka-take-over\n%s%s", code, out, errOut)
	}
	if n := len(kafkatest.ReadAll(t, c.ListenAddrs(), false)[kafka.IntegrationsTopic]); n != 1 {
		t.Errorf("the integrations topic holds %d records, want the other state's only", n)
	}
}
