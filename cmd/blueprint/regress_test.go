package main

// Regression tests of issues #10 and #11, written against the CLI so that
// they run (and fail) on the code before the fixes too.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

var alreadyRE = regexp.MustCompile(`^already final from an earlier run \(not sent again\): (\d+) delivered, (\d+) skipped, (\d+) dead-lettered$`)

// already reads the line before the summary, which counts the requests
// final from an earlier run; none when it is absent.
func already(t *testing.T, out string) (delivered, skipped, dead int) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		return 0, 0, 0
	}
	m := alreadyRE.FindStringSubmatch(lines[len(lines)-2])
	if m == nil {
		if strings.HasPrefix(lines[len(lines)-2], "already") {
			t.Fatalf("line %q", lines[len(lines)-2])
		}
		return 0, 0, 0
	}
	return atoi(m[1]), atoi(m[2]), atoi(m[3])
}

// Issue #11 finding 1: a byte order mark, or a truncated or invalid first
// line, made send read the rest of the file as one event: "0 delivered, 0
// skipped, 1 rejected", exit 0, for 100 valid events. Every valid line is
// delivered, the bad line rejected; the mark is ignored (eval too).
func TestSendBadStartOfInputLosesNothing(t *testing.T) {
	path, _, _ := events(t, 100)
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	for _, tt := range []struct {
		name, prefix, want string
	}{
		{"byte order mark", "\xEF\xBB\xBF", "100 delivered, 0 skipped, 0 rejected, 0 dead-lettered"},
		{"truncated first line", `{"type":"track","event":"Order Compl` + "\n", "100 delivered, 0 skipped, 1 rejected, 0 dead-lettered"},
		{"invalid first line", "order,total\n", "100 delivered, 0 skipped, 1 rejected, 0 dead-lettered"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "events.ndjson")
			if err := os.WriteFile(file, append([]byte(tt.prefix), body...), 0o600); err != nil {
				t.Fatal(err)
			}
			out, errs, code := cli(t, "", "send", "--blueprint", "button", "--variant", "retail",
				"--config", "application_id=app-abc123", "--config", "api_key=sk-key",
				"--state", t.TempDir(), "--vendor-url", url, "--progress", "none", file)
			if code != 0 || lastLine(out) != tt.want {
				t.Errorf("exit %d, last line %q, want %q\n%s", code, lastLine(out), tt.want, tail(errs, 5))
			}
			// eval reads the same way, from a file and from standard input.
			args := []string{"eval", "--blueprint", "button", "--variant", "retail", "--config", "application_id=app-abc123",
				"--config", "api_key=sk-key", "--format", "json"}
			for _, src := range []struct{ stdin, arg string }{{"", file}, {tt.prefix + string(body), "-"}} {
				out, errs, code := cli(t, src.stdin, append(args, src.arg)...)
				results := strings.Split(strings.TrimSpace(out), "\n")
				want := 100 + strings.Count(tt.prefix, "\n")
				if code != 0 || len(results) != want || strings.Count(out, `"outcome":"deliver"`) != 100 {
					t.Errorf("eval %s: exit %d, %d results (want %d), %d delivered\n%s", src.arg, code, len(results), want, strings.Count(out, `"outcome":"deliver"`), errs)
				}
			}
		})
	}
	// A pretty-printed event behind a mark is still one event.
	pretty := "\xEF\xBB\xBF{\n  \"type\": \"track\",\n  \"event\": \"Product Added\",\n  \"timestamp\": \"2026-11-24T10:15:30Z\",\n  \"context\": {\"consent\": {\"advertising\": true}},\n  \"properties\": {\"product_id\": \"p-1\", \"price\": 2}\n}\n"
	out, _, code := cli(t, pretty, "eval", "--blueprint", "button", "--variant", "retail", "--config", "application_id=app-abc123",
		"--config", "api_key=sk-key", "--format", "json", "-")
	if code != 0 || strings.Count(strings.TrimSpace(out), "\n") != 0 || !strings.Contains(out, `"outcome":"deliver"`) {
		t.Errorf("pretty event behind a mark: exit %d\n%s", code, out)
	}
}

// seedRetry puts in the outbox of state a pending request of another
// integration (Button's default variant) whose retry is due in 40 s: what an
// interrupted 'send --variant default' leaves behind.
func seedRetry(t *testing.T, state string) {
	t.Helper()
	q, err := outbox.OpenBolt(filepath.Join(state, "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	now := time.Now()
	if _, err := q.Enqueue(context.Background(), []*outbox.Item{{ID: "retry-of-another-variant", Integration: "button@0.1.0/default",
		Blueprint: "button", Variant: "default", Event: []byte(`{"type":"track","event":"Order Completed"}`),
		State: outbox.Pending, Attempts: 1, CreatedAt: now, UpdatedAt: now, NextAt: now.Add(40 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
}

// Issue #11 finding 10: a run waited until the outbox's pending requests
// were no more than the other integrations' it had claimed, so a retry of
// another variant not yet due held it: a one-event send took 75 s after an
// interrupted run of another variant, a dlq replay of one dead letter 56 s.
// A run waits for its own requests only.
func TestRunsDoNotWaitForOtherRetries(t *testing.T) {
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	send := func(key string) (string, string, int, time.Duration) {
		start := time.Now()
		out, errs, code := cli(t, orderEvent+"\n", "send", "--blueprint", "button", "--variant", "retail",
			"--config", "application_id=app-abc123", "--config", "api_key="+key, "--state", state, "--vendor-url", url,
			"--progress", "none", "-")
		return out, errs, code, time.Since(start)
	}
	// A dead letter of retail (a wrong key), then another variant's retry.
	if out, errs, code, _ := send("sk-wrong"); code != 0 || lastLine(out) != "0 delivered, 0 skipped, 0 rejected, 1 dead-lettered" {
		t.Fatalf("exit %d %q\n%s", code, out, errs)
	}
	seedRetry(t, state)

	start := time.Now()
	out, errs, code := cli(t, "", "dlq", "replay", "--all", "--state", state, "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key", "--vendor-url", url)
	if took := time.Since(start); code != 0 || lastLine(out) != "1 delivered, 0 skipped, 0 rejected, 0 dead-lettered" || took > 15*time.Second {
		t.Errorf("dlq replay: exit %d after %v, %q\n%s", code, took, out, errs)
	}
	other := `{"type":"track","event":"Product Added","message_id":"m-other","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"product_id":"p-9","price":1}}`
	start = time.Now()
	out, errs, code = cli(t, other+"\n", "send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key", "--state", state, "--vendor-url", url,
		"--progress", "none", "-")
	if took := time.Since(start); code != 0 || lastLine(out) != "1 delivered, 0 skipped, 0 rejected, 0 dead-lettered" || took > 15*time.Second {
		t.Errorf("send: exit %d after %v, %q\n%s", code, took, out, errs)
	}
	if _, counts := outboxStats(t, state); counts["pending"] != 1 {
		t.Errorf("the other variant's retry is not pending any more: %v", counts)
	}
	if st := srv.Stats(); st.Requests != 3 {
		t.Errorf("the fake got %d requests, want 3 (the other variant's retry is not sent by retail)", st.Requests)
	}
}

// Issue #10: running the README's send demo twice printed "4 delivered"
// the second time, though nothing was sent. The requests already final
// from the first run are counted on a line of their own, before the
// summary line, which keeps its exact shape.
func TestSendTwiceSaysAlreadyDelivered(t *testing.T) {
	srv, url := fake(t, fakebutton.Options{APIKey: "sk-test-123"})
	state := t.TempDir()
	args := []string{"send", "--blueprint", "button", "--variant", "retail", "--config-file", "../../examples/button/config.json",
		"--state", state, "--vendor-url", url, "--retry-base", "200ms", "--retry-cap", "2s", "--progress", "none",
		"../../examples/button/events.ndjson"}
	out, errs, code := cli(t, "", args...)
	if code != 0 || strings.TrimSpace(out) != "4 delivered, 2 skipped, 1 rejected, 0 dead-lettered" {
		t.Fatalf("first run: exit %d %q\n%s", code, out, errs)
	}
	sent := srv.Stats().Requests
	out, errs, code = cli(t, "", args...)
	if code != 0 || lastLine(out) != "0 delivered, 2 skipped, 1 rejected, 0 dead-lettered" {
		t.Errorf("second run: exit %d, last line %q\n%s", code, lastLine(out), errs)
	}
	if d, s, dead := already(t, out); d != 4 || s != 0 || dead != 0 {
		t.Errorf("second run: %q, want a line saying 4 already delivered before the summary", out)
	}
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("second run: %d lines, want 2:\n%s", n, out)
	}
	if got := srv.Stats().Requests; got != sent {
		t.Errorf("the second run sent %d requests", got-sent)
	}
}

// Issue #11 finding 14: --max-event-size 9223372036854775807 overflowed
// into rejecting every event, and 0 or -1 were taken. Every numeric and
// duration flag of send, eval and dlq has a range: at its limits it is
// taken, one past them it is a usage error naming the flag and the range.
func TestFlagRanges(t *testing.T) {
	_, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	state := t.TempDir()
	bind := []string{"--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-key"}
	verbs := map[string][]string{
		"send":   append([]string{"send", "--state", state, "--vendor-url", url, "--progress", "none"}, bind...),
		"eval":   append([]string{"eval"}, bind...),
		"replay": append([]string{"dlq", "replay", "--all", "--state", state, "--vendor-url", url}, bind...),
		"list":   {"dlq", "list", "--state", state},
	}
	type flagCase struct {
		flag, rng string
		ok        []string // at the limits
		bad       []string // one past them
		verbs     []string
	}
	d := func(s string) string { v, err := time.ParseDuration(s); must(t, err); return v.String() }
	past := func(s string, delta time.Duration) string {
		v, err := time.ParseDuration(s)
		must(t, err)
		return (v + delta).String()
	}
	cases := []flagCase{
		{"max-event-size", "1 to 1073741824", []string{"1", "1073741824"}, []string{"0", "-1", "1073741825", "9223372036854775807"}, []string{"send", "eval", "replay"}},
		{"concurrency", "1 to 1024", []string{"1", "1024"}, []string{"0", "1025"}, []string{"send", "replay"}},
		{"max-attempts", "1 to 1000", []string{"1", "1000"}, []string{"0", "1001"}, []string{"send", "replay"}},
		{"retry-base", "1ms to 24h", []string{d("1ms"), d("24h")}, []string{past("1ms", -1), past("24h", 1)}, []string{"send", "replay"}},
		{"retry-cap", "1ms to 168h", []string{d("1ms"), d("168h")}, []string{past("1ms", -1), past("168h", 1)}, []string{"send", "replay"}},
		{"max-age", "1ms to 720h", []string{d("1ms"), d("720h")}, []string{past("1ms", -1), past("720h", 1)}, []string{"send", "replay"}},
		{"timeout", "1ms to 1h", []string{d("1ms"), d("1h")}, []string{past("1ms", -1), past("1h", 1)}, []string{"send", "replay"}},
		{"rate", "0 to 1000000", []string{"0", "1000000"}, []string{"-0.001", "1000000.001", "NaN"}, []string{"send", "replay"}},
		{"max-pending", "1 to 10000000", []string{"1", "10000000"}, []string{"0", "10000001"}, []string{"send"}},
		{"retain", "0s to 87600h", []string{"0s", d("87600h")}, []string{"-1ns", past("87600h", 1)}, []string{"send"}},
		{"limit", "1 to 1000000", []string{"1", "1000000"}, []string{"0", "1000001"}, []string{"list"}},
	}
	// An outbox for dlq list.
	if _, _, code := cli(t, "", append(verbs["send"], "-")...); code != 0 {
		t.Fatal("send on empty input failed")
	}
	for _, c := range cases {
		for _, verb := range c.verbs {
			for _, v := range c.ok {
				args := append(append([]string{}, verbs[verb]...), "--"+c.flag, v)
				if verb == "send" || verb == "eval" {
					args = append(args, "-")
				}
				out, errs, code := cli(t, orderEvent+"\n", args...)
				if code != 0 {
					t.Errorf("%s --%s %s: exit %d, want 0\n%s%s", verb, c.flag, v, code, out, tail(errs, 3))
				}
			}
			for _, v := range c.bad {
				args := append(append([]string{}, verbs[verb]...), "--"+c.flag, v)
				if verb == "send" || verb == "eval" {
					args = append(args, "-")
				}
				_, errs, code := cli(t, orderEvent+"\n", args...)
				if want := fmt.Sprintf("--%s %s: out of range, must be %s", c.flag, v, c.rng); code != 2 || !strings.Contains(errs, want) {
					t.Errorf("%s --%s %s: exit %d, want 2 with %q\n%s", verb, c.flag, v, code, want, tail(errs, 3))
				}
			}
		}
	}
}

// A value no choice names is a usage error, not silently another choice.
func TestProgressChoices(t *testing.T) {
	state := t.TempDir()
	_, errs, code := cli(t, "", "send", "--state", state, "--progress", "bars", "--blueprint", "button",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key", "-")
	if code != 2 || !strings.Contains(errs, `--progress "bars": must be auto, bar, lines or none`) {
		t.Errorf("exit %d\n%s", code, errs)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
