package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiError is the body of every error answer: {"error":{"code","message"}},
// with the config keys at fault for a 422.
type apiError struct {
	Status  int      `json:"-"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Fields  []string `json:"fields,omitempty"`
	// IDs names the IDs at fault of a 404 that was given several (a
	// dead-letter replay).
	IDs []string `json:"ids,omitempty"`
	// RetryAfter sets the Retry-After header of a 429.
	RetryAfter time.Duration `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"INTERNAL","message":"the answer could not be written"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes an *apiError, or a 500 that says nothing of err.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = errorf(http.StatusInternalServerError, "INTERNAL", "internal error")
	}
	if ae.RetryAfter > 0 || ae.Status == http.StatusTooManyRequests {
		// Every 429 says when to come back (DESIGN §6), at least a second
		// from now: a lock that ends as it is reported is not "0".
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((ae.RetryAfter+time.Second-1)/time.Second))))
	}
	writeJSON(w, ae.Status, map[string]*apiError{"error": ae})
}

// maxAdminBody bounds a management request's body.
const maxAdminBody = 1 << 20

// decode reads a JSON object body into v: unknown fields, wrong types and
// trailing data are 400 with what is wrong, bodies over 1 MiB 413.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !jsonContentType(ct) {
		return errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "the body must be JSON (Content-Type: application/json), not %s", ct)
	}
	lr := &io.LimitedReader{R: r.Body, N: maxAdminBody + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if lr.N <= 0 {
			// Cut at the limit: the value is not malformed, it is too long
			// (else one JSON value over 1 MiB was answered 400 "unexpected
			// EOF", and 413 only for trailing data past the limit).
			return errorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "the body is over %d bytes", maxAdminBody)
		}
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.EOF):
			return errorf(http.StatusBadRequest, "INVALID_JSON", "the body is empty; a JSON object is expected")
		case errors.As(err, &te):
			return errorf(http.StatusBadRequest, "INVALID_JSON", "field %s must be %s, not %s", te.Field, te.Type.String(), te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return errorf(http.StatusBadRequest, "UNKNOWN_FIELD", "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return errorf(http.StatusBadRequest, "INVALID_JSON", "the body is not valid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "INVALID_JSON", "the body holds more than one JSON value")
	}
	if dec.InputOffset() > maxAdminBody {
		return errorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "the body is over %d bytes", maxAdminBody)
	}
	return nil
}

// jsonContentType reports whether a request's Content-Type may carry the
// JSON body it is read as: application/json, and also
// application/x-www-form-urlencoded, which is what `curl -d '{...}'` sends
// when -H 'Content-Type: application/json' is left out. DESIGN §6 answers a
// body that is not JSON with 400, so such a body is read (and refused
// with 400 INVALID_JSON when it is not JSON) rather than refused with a
// 415 the contract does not name. Accepting it opens nothing: every call
// but login needs an Authorization header, which a cross-site form cannot
// send, and login answers tokens in the body, not in a cookie.
func jsonContentType(ct string) bool {
	ct = strings.ToLower(strings.TrimSpace(ct))
	return strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/x-www-form-urlencoded")
}

// page is a list answer: {"data":[...],"next_cursor":...,"has_more":...}.
type page[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// paging reads ?cursor= and ?limit= (default 50, at most 100: a larger
// limit is served as 100, as "max 100" promises a page of at most 100
// rather than a refusal; a limit that is not a positive number is 400).
func paging(r *http.Request) (cursor string, limit int, err error) {
	cursor, limit = r.URL.Query().Get("cursor"), 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil && errors.Is(perr, strconv.ErrRange) && !strings.HasPrefix(s, "-") {
			n, perr = 100, nil // a limit past int's range is a large one
		}
		if perr != nil || n < 1 {
			return "", 0, errorf(http.StatusBadRequest, "INVALID_PARAMETER", "limit must be a number from 1 to 100, not %q", s)
		}
		limit = min(n, 100)
	}
	return cursor, limit, nil
}

// pageOf cuts a whole list at an opaque offset cursor.
func pageOf[T any](all []T, cursor string, limit int) (page[T], error) {
	start := 0
	if cursor != "" {
		n, err := strconv.Atoi(cursor)
		if err != nil || n < 0 || n > len(all) {
			return page[T]{}, errorf(http.StatusBadRequest, "INVALID_PARAMETER", "cursor %q is not one this API gave", cursor)
		}
		start = n
	}
	end := min(start+limit, len(all))
	p := page[T]{Data: all[start:end]}
	if p.Data == nil {
		p.Data = []T{}
	}
	if end < len(all) {
		next := strconv.Itoa(end)
		p.NextCursor, p.HasMore = &next, true
	}
	return p, nil
}

// probeMethods are the methods a 405's Allow header may name.
var probeMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// notFoundOrNotAllowed is a mux's catch-all: a path no pattern has is 404
// (the error body of DESIGN §6), and a known path asked with a method it
// does not take is 405 with Allow naming the ones it does (the mux would
// answer that in plain text, and a catch-all registered for every method
// would have made it a 404). catchAll is the pattern of the catch-all
// itself, which every path matches; notFound answers the rest.
func notFoundOrNotAllowed(mux *http.ServeMux, catchAll map[string]bool, notFound http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range probeMethods {
			if m == r.Method {
				continue
			}
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && !catchAll[pattern] {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			notFound(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, errorf(http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "%s %s: this path takes %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
	}
}
