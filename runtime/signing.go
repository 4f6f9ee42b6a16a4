package runtime

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// configHolds runs an expression over config only (a required_when, an
// auth's when): true when it gives true. One that cannot be evaluated (a
// key it reads is absent or invalid) does not hold.
func (in *Integration) configHolds(e *compiler.Expr) bool {
	c := ctxPool.Get().(*evalCtx)
	defer c.release()
	c.in = in
	ok, err := c.runBool(e, &scope{})
	return err == nil && ok
}

// chooseAuth returns the request's auth for this integration: the first
// whose when holds (or that has none), or nil.
func (in *Integration) chooseAuth(r *compiler.Request) *compiler.Auth {
	for _, a := range r.Auths {
		if a.When == nil || in.configHolds(a.When) {
			return a
		}
	}
	return nil
}

// BatchPolicy says how a sender joins the requests of one batching
// request (see Integration.Batch): it sends a batch when it holds
// MaxEvents requests, MaxWait after the first was queued, or before the
// joined body would pass MaxBytes.
type BatchPolicy struct {
	// Into is the top-level body array the requests' arrays are joined
	// into.
	Into      string
	MaxEvents int
	MaxWait   time.Duration
	MaxBytes  int
	// Key is what the requests of one batch must share, given by Batch
	// for a request: its method, URL, headers (the signature's aside, made
	// again over the joined body) and its body outside the Into array. A
	// joined request carries the first request's, so requests whose Keys
	// differ (a header or a body field read from the event) are never
	// joined: each would be sent as another event's.
	Key string
}

// batchPolicy decides a request's batching from config, or nil when it
// does not batch.
func (in *Integration) batchPolicy(r *compiler.Request) *BatchPolicy {
	b := r.Batch
	if b == nil {
		return nil
	}
	get := func(s compiler.Setting) int64 {
		if s.Config == "" {
			return s.Const
		}
		switch v := in.config[s.Config].(type) {
		case bool:
			if v {
				return 1
			}
		case int64:
			return v
		}
		return 0
	}
	if get(b.Enabled) == 0 {
		return nil
	}
	// A wait past what a Duration holds (a config without max) would wrap
	// around to a negative one.
	wait := time.Duration(min(max(0, get(b.MaxWaitMS)), int64(math.MaxInt64/time.Millisecond))) * time.Millisecond
	p := &BatchPolicy{Into: b.Into, MaxEvents: int(max(1, get(b.MaxEvents))), MaxWait: wait, MaxBytes: int(max(1, get(b.MaxBytes)))}
	return p
}

// Batch reports whether the sender may join req with other requests of
// the same request of this integration, and how.
func (in *Integration) Batch(req *Request) (BatchPolicy, bool) {
	if req == nil || req.spec == nil {
		return BatchPolicy{}, false
	}
	rp := in.requests[req.spec]
	if rp == nil || rp.batch == nil {
		return BatchPolicy{}, false
	}
	p := *rp.batch
	p.Key = batchKey(req, rp)
	return p, true
}

// batchKey is a digest of what the requests of one batch must share (see
// BatchPolicy.Key).
func batchKey(req *Request, rp *requestPlan) string {
	h := sha256.New()
	field := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field(req.Method)
	field(req.URL)
	for _, hd := range req.Headers {
		if rp.sig != nil && (hd.Name == rp.sig.Header || hd.Name == rp.sig.TimestampHeader) {
			continue
		}
		field(hd.Name)
		field(hd.Value)
	}
	if arr := gjson.GetBytes(req.Body, rp.batch.Into); arr.IsArray() && arr.Index > 0 {
		field(string(req.Body[:arr.Index]))
		field(string(req.Body[arr.Index+len(arr.Raw):]))
	} else {
		field(string(req.Body))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// passThrough returns the body of a body_from: event request: the event
// as received, copied, or {"INTO":[event]} when the request batches.
func (in *Integration) passThrough(event []byte, rp *requestPlan) []byte {
	if rp.batch == nil {
		return append([]byte(nil), event...)
	}
	// Without the white space around it, as the sender joins it: the dry
	// run's batch of one is the bytes sent.
	event = trimJSONSpace(event)
	b := make([]byte, 0, len(event)+len(rp.batch.Into)+8)
	b = append(b, `{"`...)
	b = append(b, rp.batch.Into...)
	b = append(b, `":[`...)
	b = append(b, event...)
	return append(b, "]}"...)
}

// ErrBatch is returned by JoinBatch for requests that cannot be joined.
var ErrBatch = errors.New("runtime: requests cannot be joined into one batch")

// JoinBatch joins requests of one batching request of this integration
// (Batch says which) into one: the first request's method, URL and
// headers, and its body with the array named by the policy's Into holding
// the items of every request's array, in order. The bytes of each item
// are kept as they are. A signature is computed again over the joined
// body, at now.
func (in *Integration) JoinBatch(reqs []*Request, now time.Time) (*Request, error) {
	if len(reqs) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrBatch)
	}
	first := reqs[0]
	p, ok := in.Batch(first)
	if !ok {
		return nil, fmt.Errorf("%w: the request does not batch", ErrBatch)
	}
	head := gjson.GetBytes(first.Body, p.Into)
	if !head.IsArray() || head.Index <= 0 {
		return nil, fmt.Errorf("%w: the body has no array %s", ErrBatch, p.Into)
	}
	rp := in.requests[first.spec]
	key := batchKey(first, rp)
	var items []byte
	// The secret fields' ranges follow their bytes into the joined body
	// (Redacted masks them there too).
	var ranges [][2]int
	start := head.Index + 1 // of items in the joined body
	for _, r := range reqs {
		if r.spec != first.spec || r.URL != first.URL || r.Method != first.Method {
			return nil, fmt.Errorf("%w: they go to different requests", ErrBatch)
		}
		if batchKey(r, rp) != key {
			return nil, fmt.Errorf("%w: their headers or bodies outside %s differ", ErrBatch, p.Into)
		}
		arr := gjson.GetBytes(r.Body, p.Into)
		if !arr.IsArray() || arr.Index <= 0 {
			return nil, fmt.Errorf("%w: a body has no array %s", ErrBatch, p.Into)
		}
		from, to := arr.Index+1, arr.Index+len(arr.Raw)-1
		inner := trimJSONSpace(r.Body[from:to])
		if len(inner) == 0 {
			continue
		}
		if len(items) > 0 {
			items = append(items, ',')
		}
		from += bytes.Index(r.Body[from:to], inner) // after white space
		for _, x := range r.secretRanges {
			if x[0] >= from && x[1] <= from+len(inner) {
				ranges = append(ranges, [2]int{x[0] - from + start + len(items), x[1] - from + start + len(items)})
			}
		}
		items = append(items, inner...)
	}
	out := *first
	out.Headers = append([]Header(nil), first.Headers...)
	body := make([]byte, 0, len(first.Body)+len(items))
	body = append(body, first.Body[:head.Index]...)
	body = append(body, '[')
	body = append(body, items...)
	body = append(body, ']')
	tail := head.Index + len(head.Raw)
	body = append(body, first.Body[tail:]...)
	out.Body = body
	shift := len(body) - len(first.Body)
	var kept [][2]int
	for _, x := range first.secretRanges {
		switch {
		case x[1] <= head.Index:
			kept = append(kept, x)
		case x[0] >= tail:
			kept = append(kept, [2]int{x[0] + shift, x[1] + shift})
		}
	}
	out.secretRanges = append(kept, ranges...)
	slices.SortFunc(out.secretRanges, func(a, b [2]int) int { return a[0] - b[0] })
	if rp.sig != nil {
		in.sign(&out, rp, now)
	}
	return &out, nil
}

func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func (in *Integration) now() time.Time {
	if in.opts.Clock != nil {
		return in.opts.Clock()
	}
	return time.Now()
}

// Sign computes the signature headers of req again, at now, when its auth
// is a signature: the sender calls it before every attempt, so that a
// retry carries a fresh time of signing. Other requests are left as they
// are.
func (in *Integration) Sign(req *Request, now time.Time) {
	if req == nil || req.spec == nil {
		return
	}
	if rp := in.requests[req.spec]; rp != nil && rp.sig != nil {
		in.sign(req, rp, now)
	}
}

// sign sets the signature headers of req over its body, at now.
func (in *Integration) sign(req *Request, rp *requestPlan, now time.Time) {
	sig := rp.sig
	var ts string
	if sig.TimestampHeader != "" {
		if sig.TimestampFormat == "unix_seconds" {
			ts = strconv.FormatInt(now.Unix(), 10)
		} else {
			ts = strconv.FormatInt(now.UnixMilli(), 10)
		}
	}
	var newHash func() hash.Hash
	switch sig.Algorithm {
	case "sha1":
		newHash = sha1.New
	case "sha512":
		newHash = sha512.New
	default:
		newHash = sha256.New
	}
	m := hmac.New(newHash, rp.sigKey)
	if ts != "" {
		m.Write([]byte(ts))
		m.Write([]byte(sig.Separator))
	}
	m.Write(req.Body)
	value := sig.Prefix + hex.EncodeToString(m.Sum(nil))
	if ts != "" {
		setHeader(req, sig.TimestampHeader, ts)
	}
	setHeader(req, sig.Header, value)
}

// setHeader sets a secret header of req, replacing every one of the same
// name (compared as HTTP does, case aside): a plain header the blueprint
// declares under that name must neither be sent beside it nor keep its
// plain mark, which would show the signature or token in every view and
// vendor message. The headers are copied first: a Result's headers may
// share an array.
func setHeader(req *Request, name, value string) {
	hs := make([]Header, 0, len(req.Headers)+1)
	for _, h := range req.Headers {
		if !strings.EqualFold(h.Name, name) {
			hs = append(hs, h)
		}
	}
	req.Headers = append(hs, Header{Name: name, Value: value, Secret: true})
}
