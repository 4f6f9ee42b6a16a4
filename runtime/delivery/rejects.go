package delivery

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/blueprint-engine/blueprint/runtime"
)

// RejectRecord is a rejected event in the shape of the platform's
// dlq-events topic. It never holds a secret of the integration.
type RejectRecord struct {
	// Error is the reason code (missing_required_field, invalid_event...).
	Error string `json:"error"`
	// Details says why, for humans.
	Details string `json:"details"`
	// Fields names the fields at fault ([] when none).
	Fields []string `json:"fields"`
	// IntegrationID is the binding's Name.
	IntegrationID string `json:"integration_id"`
	// OriginalEvent is the event with the integration's secret config
	// values scrubbed (escaped forms too): JSON as it was, a JSON string
	// when it was not JSON, null when it was too large to keep.
	OriginalEvent json.RawMessage `json:"original_event"`
}

// NewRejectRecord makes the record of event, rejected with res by the
// integration in (named integration).
func NewRejectRecord(integration string, in *runtime.Integration, event []byte, res runtime.Result) RejectRecord {
	rec := RejectRecord{Error: res.Reason, Details: res.Message, Fields: res.Fields, IntegrationID: integration, OriginalEvent: json.RawMessage("null")}
	if rec.Fields == nil {
		rec.Fields = []string{}
	}
	if event != nil {
		red := event
		if in != nil {
			red = in.RedactJSON(event)
		}
		if json.Valid(red) {
			rec.OriginalEvent = json.RawMessage(red)
		} else {
			rec.OriginalEvent, _ = json.Marshal(string(red))
		}
	}
	return rec
}

// RejectSink receives the events a pipeline rejects: a file (RejectLog),
// or the platform's dlq-events topic. It must be safe for concurrent use.
type RejectSink interface {
	Reject(RejectRecord) error
}

// RejectLog writes rejected events as NDJSON, one RejectRecord a line. It
// is safe for concurrent use.
type RejectLog struct {
	mu     sync.Mutex
	w      *bufio.Writer
	f      *os.File // when opened by OpenRejectLog
	closed bool
}

// NewRejectLog writes to w; Close flushes.
func NewRejectLog(w io.Writer) *RejectLog { return &RejectLog{w: bufio.NewWriter(w)} }

// OpenRejectLog appends to the file at path, creating it readable by its
// owner only (events are personal data); Close flushes, syncs and closes it.
func OpenRejectLog(path string) (*RejectLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &RejectLog{w: bufio.NewWriter(f), f: f}, nil
}

// Reject implements RejectSink.
func (l *RejectLog) Reject(rec RejectRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("reject log: %w", os.ErrClosed)
	}
	_, err = l.w.Write(append(b, '\n'))
	return err
}

// Close flushes what is buffered (and syncs and closes the file of
// OpenRejectLog). Later Rejects fail.
func (l *RejectLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.w.Flush()
	if l.f != nil {
		if serr := l.f.Sync(); err == nil {
			err = serr
		}
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
