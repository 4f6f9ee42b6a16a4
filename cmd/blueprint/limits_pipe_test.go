//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// A blueprint named by a path that is a pipe or a device (/dev/stdin,
// <(...), /dev/zero) has no size to check before reading it. validate
// FILE and every --blueprint FILE, docs FILE read it with os.ReadFile, to
// its end: /dev/zero took 2.4 GB in 20 s and kept growing. They now read
// at most the limit and one byte, as the catalog and --config-file do, and
// refuse the file with file_too_large.
func TestBlueprintFromPipeBounded(t *testing.T) {
	const total = 16 << 20 // what the writer offers: far past the limit
	for _, args := range [][]string{
		{"validate", "PIPE"},
		{"eval", "--blueprint", "PIPE", "-"},
		{"docs", "PIPE"},
	} {
		t.Run(args[0], func(t *testing.T) {
			fifo := filepath.Join(t.TempDir(), "bp.yaml")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skip(err)
			}
			var written atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
				if err != nil {
					return
				}
				defer w.Close()
				line := []byte("# " + strings.Repeat("x", 1021) + "\n")
				for written.Load() < total {
					n, err := w.Write(line)
					written.Add(int64(n))
					if err != nil {
						return // the reader closed the pipe
					}
				}
			}()
			for i, a := range args {
				if a == "PIPE" {
					args[i] = fifo
				}
			}
			out, errs, code := cli(t, "", args...)
			// Let a writer still waiting for a reader go.
			if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
				r.Close()
			}
			<-done
			if code != 1 || !strings.Contains(out+errs, "error file_too_large") {
				t.Errorf("exit %d\n%s%s", code, out, errs)
			}
			if n := written.Load(); n > 4<<20 {
				t.Errorf("read %d bytes of the pipe (limit %d)", n, 1<<20)
			}
		})
	}
}
