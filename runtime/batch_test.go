package runtime_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

// batchPerCustomer batches a request whose header and a body field outside
// the batched array are read from the event.
const batchPerCustomer = `key: batchcust
version: 0.1.0
name: Batch per customer
category: other
status: alpha
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    headers:
      X-Customer: "{values.customer}"
    batch: {into: items, max_events: 10}
    body:
      customer_id: {value: customer}
      items: {expr: '[event.properties]', type: array}
values:
  customer: {from: userId, type: string}
events:
  "*": {vendor_event: e, request: r}
`

// TestBatchNeverJoinsDifferentHeadersOrBodies: a joined request carries
// the first request's headers and the first body outside the batched
// array, so requests that differ there (read from the event) must not be
// joined: their policies' Keys differ, and JoinBatch refuses them. Before,
// bob's order was sent in alice's batch, as alice's.
func TestBatchNeverJoinsDifferentHeadersOrBodies(t *testing.T) {
	bp, ds := engine.Compile("batchcust.yaml", []byte(batchPerCustomer))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	req := func(event string) *runtime.Request {
		res := in.Evaluate([]byte(event))
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%v %s", res.Outcome, res.Message)
		}
		return res.Requests[0]
	}
	a1 := req(`{"type":"track","event":"a","userId":"alice","properties":{"n":1}}`)
	a2 := req(`{"type":"track","event":"a","userId":"alice","properties":{"n":2}}`)
	b := req(`{"type":"track","event":"a","userId":"bob","properties":{"n":3}}`)
	pa1, _ := in.Batch(a1)
	pa2, _ := in.Batch(a2)
	pb, ok := in.Batch(b)
	if !ok || pa1.Key == "" || pa1.Key != pa2.Key {
		t.Fatalf("alice's requests do not share a batch key: %q %q", pa1.Key, pa2.Key)
	}
	if pb.Key == pa1.Key {
		t.Fatal("bob's request has alice's batch key: it would be sent as hers")
	}
	if _, err := in.JoinBatch([]*runtime.Request{a1, b}, time.Now()); !errors.Is(err, runtime.ErrBatch) {
		t.Fatalf("JoinBatch(alice, bob) = %v, want ErrBatch", err)
	}
	j, err := in.JoinBatch([]*runtime.Request{a1, a2}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"customer_id":"alice","items":[{"n":1},{"n":2}]}`; string(j.Body) != want {
		t.Fatalf("joined %s, want %s", j.Body, want)
	}
}

// TestBatchJoinedKeepsSecretFields: a joined request's secret fields (one
// outside the batched array, one in each item) stay masked in its
// redacted view, as they are in each request's: before, JoinBatch dropped
// their ranges (a comment said compile refuses secret fields in batching
// bodies; it did not), and a secret derived by an expression, which the
// redaction of config values does not know, showed.
func TestBatchJoinedKeepsSecretFields(t *testing.T) {
	bp, ds := engine.Compile("batchsec.yaml", []byte(`key: batchsec
version: 0.1.0
name: Batch secret
category: other
status: alpha
config:
  key: {type: secret, required: true}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    batch: {into: items}
    body:
      auth: {expr: 'upper(config.key)', secret: true}
      items:
        expr: '[event.properties]'
        type: array
        items:
          n: {from: n}
          sig: {expr: 'lower(config.key) + string(item.n)', secret: true}
      tail: {const: end}
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"key": "Key-Of-Mine"})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []*runtime.Request
	for _, e := range []string{`{"type":"track","event":"a","properties":{"n":1}}`, `{"type":"track","event":"a","properties":{"n":2}}`} {
		res := in.Evaluate([]byte(e))
		if res.Outcome != runtime.Deliver {
			t.Fatalf("%v %s", res.Outcome, res.Message)
		}
		reqs = append(reqs, res.Requests[0])
	}
	j, err := in.JoinBatch(reqs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"auth":"KEY-OF-MINE","items":[{"n":1,"sig":"key-of-mine1"},{"n":2,"sig":"key-of-mine2"}],"tail":"end"}`; string(j.Body) != want {
		t.Fatalf("joined %s, want %s", j.Body, want)
	}
	view := string(in.Redacted(j).Body)
	for _, s := range []string{"KEY-OF-MINE", "key-of-mine"} {
		if strings.Contains(view, s) {
			t.Fatalf("the redacted joined body shows %s: %s", s, view)
		}
	}
	if !strings.Contains(view, `"tail":"end"`) || !strings.Contains(view, `"n":2`) {
		t.Fatalf("redacted too much: %s", view)
	}
}

// TestBatchHugeWaitDoesNotWrap: a max_wait_ms read from a config without
// max, past what a time.Duration holds in milliseconds, wrapped around to
// a negative wait (the batch sent at once); it is now the longest wait.
func TestBatchHugeWaitDoesNotWrap(t *testing.T) {
	bp, ds := engine.Compile("batchwait.yaml", []byte(`key: batchwait
version: 0.1.0
name: Batch wait
category: other
status: alpha
config:
  wait: {type: integer, default: 1000}
  size: {type: integer, default: 10}
  bytes: {type: integer, default: 1000}
hosts: [api.example.com]
requests:
  r:
    method: POST
    url: https://api.example.com/v1/ingest
    body_from: event
    batch: {into: batch, max_wait_ms: "{config.wait}", max_events: "{config.size}", max_bytes: "{config.bytes}"}
events:
  "*": {vendor_event: e, request: r}
`))
	if bp == nil {
		t.Fatal(ds)
	}
	in, err := runtime.Bind(bp, "", map[string]any{"wait": int64(1) << 62, "size": int64(1) << 62, "bytes": int64(1) << 62})
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(`{"type":"track","event":"a"}`))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%v %s", res.Outcome, res.Message)
	}
	p, ok := in.Batch(res.Requests[0])
	if !ok || p.MaxWait <= 0 || p.MaxEvents <= 0 || p.MaxBytes <= 0 {
		t.Fatalf("policy %+v", p)
	}
}

// TestBatchOfOneIsWhatIsSent: an event with white space around it, in a
// batching body_from: event request, is shown (dry runs, vectors) as the
// sender sends it: JoinBatch trims the white space, and the evaluation
// kept it, so the body and signature a vector pins differed from the
// wire's.
func TestBatchOfOneIsWhatIsSent(t *testing.T) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		t.Fatal(err)
	}
	bp, ds, err := cat.Compile("webhook@0.1.0")
	if bp == nil {
		t.Fatal(err, ds)
	}
	now := time.Date(2026, 2, 25, 14, 30, 0, 123e6, time.UTC)
	in, err := runtime.Bind(bp, "", map[string]any{"url": "https://hooks.example.com/e", "batch_enabled": true, "authentication": "hmac", "signing_secret": "whsec-test"},
		runtime.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	res := in.Evaluate([]byte(" \t{\"type\":\"page\"}\r\n"))
	if res.Outcome != runtime.Deliver {
		t.Fatalf("%v %s", res.Outcome, res.Message)
	}
	j, err := in.JoinBatch(res.Requests, now)
	if err != nil {
		t.Fatal(err)
	}
	shown, sent := res.Requests[0], j
	if string(shown.Body) != string(sent.Body) || string(sent.Body) != `{"batch":[{"type":"page"}]}` {
		t.Fatalf("shown %q, sent %q", shown.Body, sent.Body)
	}
	a, _ := shown.Header("X-Signature")
	b, _ := sent.Header("X-Signature")
	if a != b {
		t.Fatalf("shown signature %s, sent %s", a, b)
	}
}
