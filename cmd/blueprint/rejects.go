package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/blueprint-engine/blueprint/runtime"
)

// rejectLog appends the events send rejects to an NDJSON file, one line
// each, in the shape of the platform's dlq-events topic:
// {"error": REASON, "details": MESSAGE, "fields": [...], "event": NAME,
// "original_event": EVENT}. The original event is redacted (secret config
// values scrubbed); an event that is not JSON is kept as a string, one over
// the size limit (not kept in memory) as null.
type rejectLog struct {
	mu     sync.Mutex // the reader adds; the run closes (maybe while a blocked reader wakes)
	f      *os.File
	w      *bufio.Writer
	closed bool
}

func openRejectLog(path string) (*rejectLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600) // events are personal data
	if err != nil {
		return nil, fmt.Errorf("--rejects: %w", err)
	}
	return &rejectLog{f: f, w: bufio.NewWriter(f)}, nil
}

func (l *rejectLog) add(in *runtime.Integration, event []byte, res runtime.Result) error {
	rec := struct {
		Error         string          `json:"error"`
		Details       string          `json:"details"`
		Fields        []string        `json:"fields,omitempty"`
		Event         string          `json:"event,omitempty"`
		OriginalEvent json.RawMessage `json:"original_event"`
	}{Error: res.Reason, Details: res.Message, Fields: res.Fields, Event: res.Event, OriginalEvent: json.RawMessage("null")}
	if event != nil {
		red := in.RedactJSON(event) // escaped forms too
		if json.Valid(red) {
			rec.OriginalEvent = json.RawMessage(red)
		} else {
			s, _ := json.Marshal(string(red))
			rec.OriginalEvent = s
		}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return os.ErrClosed
	}
	_, err = l.w.Write(append(b, '\n'))
	return err
}

// close flushes and syncs the file.
func (l *rejectLog) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	err := l.w.Flush()
	if serr := l.f.Sync(); err == nil {
		err = serr
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
