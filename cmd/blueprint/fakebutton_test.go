package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The fake-button verb prints its address, serves a real order, and prints
// its summary once its context is cancelled (as by SIGINT).
func TestFakeButtonCommand(t *testing.T) {
	const key = "sk-cli-test-77"
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: pw, stderr: &errb}
	cmd := a.fakeButtonCmd()
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--api-key", key, "--seed", "3", "--latency", "1ms"})
	cmd.SetOut(&errb)
	cmd.SetErr(&errb)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := cmd.ExecuteContext(ctx)
		pw.Close()
		errc <- err
	}()

	br := bufio.NewReader(pr)
	linec := make(chan string, 1)
	go func() {
		l, _ := br.ReadString('\n')
		linec <- l
	}()
	var line string
	select {
	case line = <-linec:
	case err := <-errc:
		t.Fatalf("command ended before listening: %v\n%s", err, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("no listening line")
	}
	m := regexp.MustCompile(`^listening on (http://127\.0\.0\.1:([0-9]+))\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line %q", line)
	}
	url := m[1]

	tr := &http.Transport{}
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("POST", url+"/v1/order", strings.NewReader(
		`{"order_id":"o-1","total":2550,"currency":"USD","purchase_date":"2026-11-24T10:15:30Z"}`))
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(key+":")))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"order_id":"o-1"`) {
		t.Fatalf("order: %d %s", resp.StatusCode, body)
	}
	tr.CloseIdleConnections()

	// Read the rest while the command shuts down.
	restc := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(br)
		restc <- string(b)
	}()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not stop")
	}
	summary := <-restc
	for _, want := range []string{"fake Button: 1 requests", "orders created:", "1\n"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
	if strings.Contains(summary, key) || strings.Contains(errb.String(), key) {
		t.Errorf("API key printed:\n%s%s", summary, errb.String())
	}
	if strings.Contains(summary, "listening on") {
		t.Errorf("listening line printed twice:\n%s", summary)
	}

	// The port is closed, and no server or client goroutine is left.
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still listening", url)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		stacks := goroutines()
		leak := ""
		for _, g := range stacks[1:] { // [0] is this goroutine
			if strings.Contains(g, "internal/fakebutton.") || strings.Contains(g, "net/http.(*conn).serve") ||
				strings.Contains(g, "net/http.(*persistConn)") || strings.Contains(g, "net/http.(*Server).Serve") {
				leak = g
			}
		}
		if leak == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutine left:\n%s", leak)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func goroutines() []string {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Split(string(buf[:n]), "\n\n")
}

func TestFakeButtonUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--error-rate", "1.5"}, "--error-rate"},
		{[]string{"--throttle-rate", "-0.1"}, "--throttle-rate"},
		{[]string{"--drop-before-rate", "0.6", "--drop-after-rate", "0.6"}, "at most 1"},
		{[]string{"--latency", "-1s"}, "--latency"},
		{[]string{"--retry-after", "-1s"}, "--retry-after"},
		{[]string{"--listen", "8787"}, "--listen"},
		{[]string{"--api-key", ""}, "--api-key"},
		{[]string{"--api-key", "sk-se:cret"}, "--api-key"},
		{[]string{"--error-rate", "lots"}, "error-rate"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			cmd := (&app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}).fakeButtonCmd()
			cmd.SetArgs(tt.args)
			cmd.SetOut(&errb)
			cmd.SetErr(&errb)
			cmd.SilenceUsage, cmd.SilenceErrors = true, true
			err := cmd.Execute()
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != 2 {
				t.Fatalf("err %v, want a usage error", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "se:cret") {
				t.Errorf("error echoes the key: %v", err)
			}
			if out.Len() != 0 {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}

func TestFakeButtonHelp(t *testing.T) {
	var out bytes.Buffer
	cmd := (&app{stdin: strings.NewReader(""), stdout: &out, stderr: &out}).fakeButtonCmd()
	cmd.SetArgs([]string{"--help"})
	cmd.SetOut(&out)
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sk-test-123", "127.0.0.1:8787", "Examples:", "--drop-after-rate", "listening on http://HOST:PORT"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

// A real SIGINT stops the verb, which then prints its summary and exits 0.
func TestFakeButtonSignal(t *testing.T) {
	self, err := os.FindProcess(os.Getpid())
	if err != nil {
		t.Skip(err)
	}
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	cmd := (&app{stdin: strings.NewReader(""), stdout: pw, stderr: &errb}).fakeButtonCmd()
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0"})
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
	if err != nil || !strings.HasPrefix(line, "listening on http://127.0.0.1:") {
		t.Fatalf("first line %q, %v\n%s", line, err, errb.String())
	}
	// The signal handler is in place before the line is printed.
	if err := self.Signal(os.Interrupt); err != nil {
		cancel()
		io.Copy(io.Discard, br)
		<-errc
		t.Skipf("cannot signal self: %v", err)
	}
	rest, _ := io.ReadAll(br)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGINT did not stop the command")
	}
	if !strings.Contains(string(rest), "fake Button: 0 requests") {
		t.Errorf("summary:\n%s", rest)
	}
}
