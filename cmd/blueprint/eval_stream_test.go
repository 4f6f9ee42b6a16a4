package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/fakebutton"
	"github.com/blueprint-engine/blueprint/runtime"
)

func boundButton(t *testing.T) *runtime.Integration {
	t.Helper()
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds, err := cat.Compile("button@0.1.0")
	if bp == nil {
		t.Fatal(err, ds)
	}
	in, err := runtime.Bind(bp, "retail", map[string]any{"application_id": "app-abc123", "api_key": "sk-stream-key"}, runtime.WithMaxEventSize(600))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// streamInput is n events of every kind (deliver, skip, reject, malformed,
// over the size limit, blank lines), each distinguishable by its index.
func streamInput(n int) (input []byte, events [][]byte) {
	var b bytes.Buffer
	for i := range n {
		var ev string
		switch i % 6 {
		case 0:
			ev = fmt.Sprintf(`{"type":"track","event":"Order Completed","context":{"consent":{"advertising":true}},"properties":{"order_id":"o-%d","total":%d.5,"currency":"USD","products":[{"product_id":"p-%d","price":1}]}}`, i, i, i)
		case 1:
			ev = fmt.Sprintf(`{"type":"track","event":"Unmapped %d"}`, i)
		case 2:
			ev = fmt.Sprintf(`{"type":"track","event":"Order Completed","context":{"consent":{"advertising":true}},"properties":{"total":%d}}`, i)
		case 3:
			ev = fmt.Sprintf(`{"type":"track","event":"x%d"`, i) // malformed
		case 4:
			ev = fmt.Sprintf(`{"type":"track","event":"%d%s"}`, i, strings.Repeat("y", 700)) // over the limit
		case 5:
			b.WriteString("\n   \n") // blank lines are not events
			ev = fmt.Sprintf(`{"type":"track","event":"Product Added","context":{"consent":{"advertising":true}},"properties":{"product_id":"p-%d","price":2}}`, i)
		}
		b.WriteString(ev + "\n")
		events = append(events, []byte(ev))
	}
	return b.Bytes(), events
}

// The stream's results are, in input order, exactly what evaluating each
// event alone gives, in both formats, across many batches and workers.
func TestEvalStreamOrder(t *testing.T) {
	in := boundButton(t)
	input, events := streamInput(3*batchEvents + 17)
	for _, asJSON := range []bool{true, false} {
		var want bytes.Buffer
		for i, ev := range events {
			var res runtime.Result
			if len(ev) > 600 {
				res = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent,
					Message: fmt.Sprintf("event is %d bytes; the limit is 600", len(ev)+1)}
			} else {
				res = in.Evaluate(ev)
			}
			if asJSON {
				want.Write(append(res.AppendJSON(nil), '\n'))
				continue
			}
			if i > 0 {
				want.WriteByte('\n')
			}
			want.WriteString(res.String() + "\n")
		}
		var got bytes.Buffer
		if err := evalStream(in, bytes.NewReader(input), &got, 600, asJSON); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
			for i := range min(len(g), len(w)) {
				if g[i] != w[i] {
					t.Fatalf("json=%v: line %d\n got  %s\n want %s", asJSON, i+1, g[i], w[i])
				}
			}
			t.Fatalf("json=%v: %d lines, want %d", asJSON, len(g), len(w))
		}
		if strings.Contains(got.String(), "sk-stream-key") {
			t.Error("the stream's output holds the api key")
		}
	}
}

type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	w.writes++
	return 0, errors.New("disk full")
}

// A failing output stops the stream with the error (it neither hangs nor
// keeps reading the whole input).
func TestEvalStreamWriteError(t *testing.T) {
	in := boundButton(t)
	input, _ := streamInput(50 * batchEvents)
	r := &countingReader{r: bytes.NewReader(input)}
	w := &failingWriter{}
	err := evalStream(in, r, w, 600, true)
	if err == nil || err.Error() != "writing results: disk full" {
		t.Fatalf("err = %v, want writing results: disk full", err)
	}
	if w.writes != 1 {
		t.Errorf("%d writes after the first failed", w.writes-1)
	}
	if r.n == len(input) {
		t.Error("the whole input was read after the output failed")
	}
}

type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type failingReader struct{ r *bytes.Reader }

func (f failingReader) Read(p []byte) (int, error) {
	if f.r.Len() == 0 {
		return 0, errors.New("connection reset")
	}
	return f.r.Read(p)
}

// A read error ends the stream with the error, after the results of every
// event read before it.
func TestEvalStreamReadError(t *testing.T) {
	in := boundButton(t)
	input, events := streamInput(2*batchEvents + 5)
	var out bytes.Buffer
	err := evalStream(in, failingReader{bytes.NewReader(input)}, &out, 600, true)
	if err == nil || err.Error() != "reading events: connection reset" {
		t.Fatalf("err = %v", err)
	}
	if n := bytes.Count(out.Bytes(), []byte("\n")); n != len(events) {
		t.Errorf("%d results before the error, want %d", n, len(events))
	}
}

// A read error of send's input is not taken for its end: what was read
// is delivered, and the run fails saying why.
func TestSendReadError(t *testing.T) {
	path, _, _ := events(t, 5)
	input, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, url := fake(t, fakebutton.Options{APIKey: "sk-key"})
	var out, errs bytes.Buffer
	code := run([]string{"send", "--blueprint", "button", "--variant", "retail",
		"--config", "application_id=app-abc123", "--config", "api_key=sk-key",
		"--state", t.TempDir(), "--vendor-url", url, "--progress", "none", "-"},
		failingReader{bytes.NewReader(input)}, &out, &errs)
	if code != 1 || !strings.Contains(errs.String(), "reading events: connection reset") {
		t.Errorf("exit %d, stderr:\n%s", code, errs.String())
	}
	if d, _, _, _ := summary(t, out.String()); d != 5 {
		t.Errorf("summary %q, want the 5 events read delivered", lastLine(out.String()))
	}
}

// Input and output failures exit 1 (not 2, a usage error), saying what
// failed, for a file argument and for standard input. (An event file that
// cannot be opened is a usage error, exit 2, as for send: TestTestUsage.)
func TestEvalIOErrorsExit1(t *testing.T) {
	ev := filepath.Join(t.TempDir(), "ev.json")
	if err := os.WriteFile(ev, []byte(`{"type":"track","event":"x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"eval", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-key"}
	for _, tt := range []struct {
		name   string
		args   []string
		stdin  io.Reader
		stdout io.Writer
		want   string
	}{
		{"read error", []string{"-"}, failingReader{bytes.NewReader([]byte("{}\n"))}, io.Discard, "reading events: connection reset"},
		{"write error, stdin", []string{"-"}, strings.NewReader(`{"event":"x"}` + "\n"), &failingWriter{}, "writing results: disk full"},
		{"write error, file", []string{ev}, strings.NewReader(""), &failingWriter{}, "writing results: disk full"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var errs bytes.Buffer
			code := run(append(slices.Clone(base), tt.args...), tt.stdin, tt.stdout, &errs)
			if code != 1 || !strings.Contains(errs.String(), tt.want) || strings.Contains(errs.String(), "--help") {
				t.Errorf("exit %d, stderr:\n%s", code, errs.String())
			}
		})
	}
}

// Any command whose output cannot be written exits 1, text output
// included.
func TestOutputErrorsExit1(t *testing.T) {
	for _, args := range [][]string{{"list"}, {"catalog"}, {"docs", "button"}, {"test"}} {
		var errs bytes.Buffer
		code := run(args, strings.NewReader(""), &failingWriter{}, &errs)
		if code != 1 || !strings.Contains(errs.String(), "disk full") {
			t.Errorf("%v: exit %d, stderr:\n%s", args, code, errs.String())
		}
	}
}

// eval --format json prints a refused config as a JSON result on stdout
// too (machines read stdout), and exits 1.
func TestEvalJSONConfigRefused(t *testing.T) {
	out, errs, code := cli(t, "", "eval", "--blueprint", "button", "--config", "application_id=bad", "--config", "api_key=sk-cfg-secret", "--format", "json", "-")
	if code != 1 || !strings.Contains(errs, "config refused") {
		t.Fatalf("exit %d\n%s", code, errs)
	}
	var res struct {
		Outcome, Reason string
		Fields          []string
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Outcome != "reject" || res.Reason != "invalid_config" || len(res.Fields) != 1 || res.Fields[0] != "application_id" {
		t.Errorf("stdout %q: %+v %v", out, res, err)
	}
	if strings.Contains(out+errs, "sk-cfg-secret") {
		t.Error("the api key was printed")
	}
}

// DESIGN §5: an event file holds one JSON value, pretty-printed or not. A
// broken pretty-printed file (truncated, or two values) or an empty one is
// one event, one invalid_event result, not one per line nor none; an NDJSON file with a broken line
// still gives one result per line, as standard input does.
func TestEvalBrokenPrettyFileIsOneEvent(t *testing.T) {
	dir := t.TempDir()
	pretty := "{\n  \"type\": \"track\",\n  \"event\": \"Order Completed\",\n  \"properties\": {\"x\": [1,\n 2]}\n}\n"
	args := []string{"eval", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-key", "--format", "json"}
	for name, tt := range map[string]struct {
		text    string
		results int
	}{
		"empty":                 {"", 1},
		"blank lines":           {"\n  \n", 1},
		"truncated":             {pretty[:40], 1},
		"truncated with a mark": {"\xEF\xBB\xBF" + pretty[:40], 1},
		"two values":            {pretty + pretty, 1},
		"value and garbage":     {pretty + "x\n", 1},
		"ndjson, a broken line": {`{"type":"page"}` + "\n{\"type\":\n" + `{"type":"page"}` + "\n", 3},
		"pretty then a line":    {pretty + `{"type":"page"}` + "\n", 7},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		if err := os.WriteFile(p, []byte(tt.text), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errs, code := cli(t, "", append(slices.Clone(args), p)...)
		results := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(results) != tt.results {
			t.Errorf("%s: exit %d, %d results, want %d\n%s%s", name, code, len(results), tt.results, out, errs)
			continue
		}
		if tt.results == 1 && !strings.Contains(results[0], `"reason":"invalid_event"`) {
			t.Errorf("%s: %s", name, results[0])
		}
	}
}

// Standard input may be NDJSON or one pretty-printed value (DESIGN §5):
// a broken pretty-printed event there is one invalid_event too, not one
// result per line, while NDJSON with a broken line still gives one result
// per line and an empty input none.
func TestEvalBrokenPrettyStdinIsOneEvent(t *testing.T) {
	pretty := "{\n  \"type\": \"track\",\n  \"event\": \"Order Completed\",\n  \"properties\": {\"x\": [1,\n 2]}\n}\n"
	args := []string{"eval", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-key", "--format", "json", "-"}
	for name, tt := range map[string]struct {
		text    string
		results int
	}{
		"empty":                 {"", 0},
		"truncated":             {pretty[:40], 1},
		"missing comma":         {strings.Replace(pretty, `"track",`, `"track"`, 1), 1},
		"truncated with a mark": {"\xEF\xBB\xBF\n" + pretty[:40], 1},
		"two values":            {pretty + pretty, 1},
		"one good value":        {pretty, 1},
		"ndjson, a broken line": {`{"type":"page"}` + "\n{\"type\":\n" + `{"type":"page"}` + "\n", 3},
		"ndjson, broken first":  {"{\"type\":\n" + `{"type":"page"}` + "\n", 2},
		"pretty then a line":    {pretty + `{"type":"page"}` + "\n", 7},
	} {
		out, errs, code := cli(t, tt.text, args...)
		var results []string
		if s := strings.TrimSpace(out); s != "" {
			results = strings.Split(s, "\n")
		}
		if code != 0 || len(results) != tt.results {
			t.Errorf("%s: exit %d, %d results, want %d\n%s%s", name, code, len(results), tt.results, out, errs)
			continue
		}
		if tt.results == 1 && name != "one good value" && !strings.Contains(results[0], `"reason":"invalid_event"`) {
			t.Errorf("%s: %s", name, results[0])
		}
	}
}

// send reads its input as eval does: a broken pretty-printed event is one
// rejected event, not one per line; NDJSON with a broken line still counts
// each line.
func TestSendBrokenPrettyIsOneEvent(t *testing.T) {
	pretty := "{\n  \"type\": \"track\",\n  \"event\": \"Order Completed\"\n  \"properties\": {}\n}\n"
	for name, tt := range map[string]struct {
		text   string
		events int // skipped and rejected
	}{
		"broken pretty":         {pretty, 1},
		"ndjson, a broken line": {"{\"type\":\"track\",\"event\":\"Order Completed\",\"properties\":{}}\n{\"type\":\n", 2},
	} {
		out, errs, code := cli(t, tt.text, "send", "--blueprint", "button", "--config", "application_id=app-abc123", "--config", "api_key=sk-key",
			"--state", t.TempDir(), "--progress", "none", "--log-level", "error", "-")
		if _, skipped, rejected, _ := summary(t, out); code != 0 || rejected < 1 || skipped+rejected != tt.events {
			t.Errorf("%s: exit %d, %q, want %d events, one rejected at least\n%s", name, code, lastLine(out), tt.events, errs)
		}
	}
}
