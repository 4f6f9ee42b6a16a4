package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// idLog keeps the IDs of the items a send run enqueued in a temporary file
// in the state folder, so that the run's memory does not grow with its
// input: the summary reads them back at the end. It is not safe for
// concurrent use.
type idLog struct {
	f      *os.File
	w      *bufio.Writer
	closed bool
}

// idLogPattern names the files of idLog; newIDLog removes those a crashed
// run left (the caller holds the outbox's lock, so no run is using them).
const idLogPattern = "send-ids-*.tmp"

func newIDLog(dir string) (*idLog, error) {
	// Matched on names, not with Glob: dir may hold [ or * itself.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if ok, _ := filepath.Match(idLogPattern, e.Name()); ok {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	f, err := os.CreateTemp(dir, idLogPattern)
	if err != nil {
		return nil, err
	}
	return &idLog{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// add records an item's ID and the state it had when it was enqueued.
func (l *idLog) add(id string, state outbox.State) error {
	if l.closed {
		return os.ErrClosed
	}
	if strings.ContainsAny(id, "\t\n") {
		return fmt.Errorf("item ID %q holds a tab or a newline", id)
	}
	_, err := l.w.WriteString(id + "\t" + string(state) + "\n")
	return err
}

// each calls fn with every ID added and its state, in order.
func (l *idLog) each(fn func(id string, state outbox.State) error) error {
	if err := l.w.Flush(); err != nil {
		return err
	}
	if _, err := l.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	sc := bufio.NewScanner(l.f)
	for sc.Scan() {
		id, state, _ := strings.Cut(sc.Text(), "\t")
		if err := fn(id, outbox.State(state)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	_, err := l.f.Seek(0, io.SeekEnd)
	return err
}

// close removes the file.
func (l *idLog) close() {
	if l.closed {
		return
	}
	l.closed = true
	_ = l.f.Close()
	_ = os.Remove(l.f.Name())
}
