package service

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/internal/service/live"
	"github.com/blueprint-engine/blueprint/internal/service/store"
	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// The platform's ingestion limits.
const (
	maxEventBytes = 64 << 10
	maxBatchBytes = 5 << 20
	maxBatchLen   = 500
	// feedWait bounds how long an ingest request waits for room in the
	// outbox before it is answered 503.
	feedWait = 10 * time.Second
)

func (s *Service) ingestHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/events", func(w http.ResponseWriter, r *http.Request) { s.serveIngest(w, r, false) })
	mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) { s.serveIngest(w, r, true) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/", notFoundOrNotAllowed(mux, map[string]bool{"/": true}, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "NOT_FOUND", "no endpoint %s %s: events go to POST /v1/events or POST /v1/batch", r.Method, r.URL.Path))
	}))
	return mux
}

type itemFailure struct {
	Index int       `json:"index"`
	Error *apiError `json:"error"`
}

func (s *Service) serveIngest(w http.ResponseWriter, r *http.Request, batch bool) {
	src, body, err := s.authenticIngest(r, batch)
	source := "unknown"
	if src != nil {
		source = src.ID
	}
	if err != nil {
		s.metrics.ingested.WithLabelValues(source, "refused").Inc()
		writeError(w, err)
		return
	}
	var events [][]byte
	var failed []itemFailure
	if !batch {
		if !isObject(body) {
			s.metrics.ingested.WithLabelValues(source, "refused").Inc()
			writeError(w, errorf(http.StatusBadRequest, "INVALID_EVENT", "the body must be one JSON object (an event)"))
			return
		}
		events = [][]byte{body}
	} else {
		arr := gjson.GetBytes(body, "batch")
		if !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject() || !arr.IsArray() {
			s.metrics.ingested.WithLabelValues(source, "refused").Inc()
			writeError(w, errorf(http.StatusBadRequest, "INVALID_BATCH", `the body must be {"batch":[event, ...]}`))
			return
		}
		// Count before Array: 5 MB of "1," is 2.5 million items, and as
		// many gjson.Results (about a gigabyte) for a batch refused anyway.
		n := 0
		arr.ForEach(func(_, _ gjson.Result) bool {
			n++
			return n <= maxBatchLen
		})
		if n > maxBatchLen {
			s.metrics.ingested.WithLabelValues(source, "refused").Inc()
			writeError(w, errorf(http.StatusBadRequest, "TOO_MANY_EVENTS", "a batch holds at most %d events; nothing was accepted", maxBatchLen))
			return
		}
		items := arr.Array()
		for i, it := range items {
			raw := []byte(it.Raw)
			switch {
			case len(raw) > maxEventBytes:
				failed = append(failed, itemFailure{i, errorf(http.StatusRequestEntityTooLarge, "EVENT_TOO_LARGE", "the event is %d bytes; the limit is %d", len(raw), maxEventBytes)})
			case !it.IsObject():
				failed = append(failed, itemFailure{i, errorf(http.StatusBadRequest, "INVALID_EVENT", "the event is not a JSON object")})
			default:
				events = append(events, raw)
			}
		}
	}
	if s.hub.Subscribers() > 0 {
		for _, e := range events {
			s.hub.Publish(live.Message{Type: "received", At: s.cfg.Now().UTC(), EventID: eventID(e), SourceID: source, EventName: eventName(e)})
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), feedWait)
	defer cancel()
	if s.kafka != nil && s.kafka.ing == nil {
		writeError(w, errorf(http.StatusServiceUnavailable, "NOT_INGESTING", "this process runs the Kafka role %q: send events to a process with role ingest or all", s.kafka.role))
		return
	}
	if len(events) > 0 {
		var err error
		if s.kafka != nil {
			// 200 only once the brokers acknowledged every event (acks=all).
			err = s.kafka.ing.IngestFrom(ctx, source, events...)
		} else {
			err = s.pipe.FeedFrom(ctx, source, events...)
		}
		if err != nil {
			s.log.Warn("events not accepted", "source", source, "events", len(events), "error", err.Error())
			s.metrics.ingested.WithLabelValues(source, "unavailable").Add(float64(len(events)))
			writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: "UNAVAILABLE", Message: "the events could not be stored now; send them again", RetryAfter: 5 * time.Second})
			return
		}
	}
	s.metrics.ingested.WithLabelValues(source, "accepted").Add(float64(len(events)))
	s.metrics.ingested.WithLabelValues(source, "failed").Add(float64(len(failed)))
	if !batch {
		writeJSON(w, http.StatusOK, map[string]bool{"success": true})
		return
	}
	if failed == nil {
		failed = []itemFailure{}
	}
	writeJSON(w, http.StatusOK, struct {
		Success  bool          `json:"success"`
		Accepted int           `json:"accepted"`
		Failed   []itemFailure `json:"failed"`
	}{true, len(events), failed})
}

// authenticIngest checks the pipeline key, the signature headers and the
// timestamp, reads the body within the platform's limits, then checks the
// signature over it. Everything that can be refused without the body is
// refused before it is read: an unsigned or stale request is 401 whatever
// its size. A body over the limit is 413 before its signature is checked,
// as checking it would mean reading a body of any size.
func (s *Service) authenticIngest(r *http.Request, batch bool) (*store.Source, []byte, error) {
	key := bearer(r)
	if key == "" {
		return nil, nil, errorf(http.StatusUnauthorized, "MISSING_PIPELINE_KEY", "Authorization: Bearer <pipeline_key> is required")
	}
	src, err := s.st.SourceByPipelineKey(key)
	if err != nil || subtle.ConstantTimeCompare([]byte(src.PipelineKey), []byte(key)) != 1 {
		return nil, nil, errorf(http.StatusUnauthorized, "INVALID_PIPELINE_KEY", "the pipeline key is not one of a source")
	}
	ts, sig := r.Header.Get("X-Timestamp"), r.Header.Get("X-Signature")
	if ts == "" || sig == "" {
		return src, nil, errorf(http.StatusUnauthorized, "MISSING_SIGNATURE", "X-Timestamp (unix ms) and X-Signature (sha256=hex HMAC-SHA256(secret_key, timestamp + \".\" + body)) are required")
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return src, nil, errorf(http.StatusUnauthorized, "INVALID_TIMESTAMP", "X-Timestamp must be unix milliseconds")
	}
	if d := s.cfg.Now().Sub(time.UnixMilli(ms)); d > s.cfg.MaxSkew || d < -s.cfg.MaxSkew {
		return src, nil, errorf(http.StatusUnauthorized, "STALE_TIMESTAMP", "X-Timestamp is more than %s from the server's clock", s.cfg.MaxSkew)
	}
	limit := int64(maxEventBytes)
	if batch {
		limit = maxBatchBytes
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return src, nil, errorf(http.StatusBadRequest, "INVALID_BODY", "the body could not be read")
	}
	if int64(len(body)) > limit {
		if batch {
			return src, nil, errorf(http.StatusRequestEntityTooLarge, "BATCH_TOO_LARGE", "the batch is over %d bytes (5 MB); nothing was accepted", limit)
		}
		return src, nil, errorf(http.StatusRequestEntityTooLarge, "EVENT_TOO_LARGE", "the event is over %d bytes (64 KB)", limit)
	}
	m := hmac.New(sha256.New, []byte(src.SecretKey))
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return src, nil, errorf(http.StatusUnauthorized, "INVALID_SIGNATURE", "X-Signature does not match the body: sign X-Timestamp + \".\" + the raw body with the source's secret key")
	}
	return src, body, nil
}

func isObject(b []byte) bool {
	return gjson.ValidBytes(b) && gjson.ParseBytes(b).IsObject()
}

// eventID names an event in the live stream (send.EventRef).
func eventID(e []byte) string { return send.EventRef(e) }

// eventName is what the live page calls an event: the track name, else
// the type.
func eventName(e []byte) string {
	n := gjson.GetBytes(e, "event")
	if n.Type != gjson.String {
		n = gjson.GetBytes(e, "type")
	}
	s := n.String()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// redactAll scrubs every bound integration's secrets from text that is
// shown for all of them (an event is received once, for every one).
func (s *Service) redactAll(text string) string {
	s.bound.Range(func(_, v any) bool {
		text = v.(*runtime.Integration).Redact(text)
		return true
	})
	return text
}
