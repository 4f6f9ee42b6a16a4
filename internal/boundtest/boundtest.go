// Package boundtest runs part of a test in a child process limited in time
// and memory, so that a runaway (a parser recursing a million levels, say:
// the bug a test is about) fails that test instead of killing the test
// binary, or the machine, with it.
package boundtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

// env names the test a child process runs fn for.
const env = "BOUNDTEST_CHILD"

// exitOverLimit is the exit code of a child whose memory went over the limit.
const exitOverLimit = 97

// Run runs fn in a child copy of the test binary, re-running only the
// current test, and fails t when the child fails, runs longer than
// timeout, or holds more than maxMiB of heap and stacks. In the child, Run
// calls fn (the code before Run runs in both processes).
func Run(t *testing.T, timeout time.Duration, maxMiB int, fn func(t *testing.T)) {
	t.Helper()
	if os.Getenv(env) == t.Name() {
		limit := uint64(maxMiB) << 20
		debug.SetMemoryLimit(int64(limit))
		go watch(limit)
		fn(t)
		return
	}
	var run []string
	for _, part := range strings.Split(t.Name(), "/") {
		run = append(run, "^"+regexp.QuoteMeta(part)+"$")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+strings.Join(run, "/"), "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	cmd.WaitDelay = time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("still running after %v: stopped (runaway)\n%s", timeout, tail(out))
	case errors.As(err, &ee) && ee.ExitCode() == exitOverLimit:
		t.Fatalf("went over %d MiB after %v: stopped (runaway)\n%s", maxMiB, took.Round(time.Millisecond), tail(out))
	case err != nil:
		t.Fatalf("the child failed (%v) after %v:\n%s", err, took.Round(time.Millisecond), tail(out))
	case !strings.Contains(string(out), "--- PASS: "+t.Name()):
		t.Fatalf("the child did not run %s:\n%s", t.Name(), tail(out))
	}
	t.Logf("in bounds: %v", took.Round(time.Millisecond))
}

// watch ends the process when its heap and stacks pass limit bytes.
func watch(limit uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	for {
		metrics.Read(samples)
		if used := samples[0].Value.Uint64() + samples[1].Value.Uint64(); used > limit {
			fmt.Fprintf(os.Stderr, "boundtest: %d MiB in use, over the limit of %d MiB\n", used>>20, limit>>20)
			os.Exit(exitOverLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tail(out []byte) string {
	const max = 4000
	if len(out) > max {
		return "...\n" + string(out[len(out)-max:])
	}
	return string(out)
}
