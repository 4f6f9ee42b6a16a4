package runtime_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
)

// validIntegrations binds one integration per shipped vector file (its
// blueprint, variant and config: name-only variants and variants with
// selectors, every catalog blueprint), plus Button with limits smaller
// than Valid's (EvaluateValid must then check as Evaluate does), and
// returns them with the events of every shipped case.
func validIntegrations(tb testing.TB) (ins []*runtime.Integration, events [][]byte) {
	tb.Helper()
	r, files := shippedVectors(tb)
	now := time.Date(2026, 11, 24, 10, 15, 30, 0, time.UTC)
	clock := runtime.WithClock(func() time.Time { return now })
	for _, f := range files {
		bp, err := r.Blueprint(f)
		if err != nil {
			tb.Fatal(err)
		}
		bound := map[string]bool{}
		for _, c := range f.Cases {
			events = append(events, c.Event)
			variant, config := f.Variant, f.Config
			if c.Variant != "" {
				variant = c.Variant
			}
			if c.HasConfig {
				config = c.Config
			}
			if bound[variant] {
				continue
			}
			if in, err := runtime.Bind(bp, variant, config, clock); err == nil {
				ins = append(ins, in)
				bound[variant] = true
			}
		}
	}
	if len(ins) < 8 {
		tb.Fatalf("only %d integrations bound from the shipped vectors", len(ins))
	}
	ins = append(ins,
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithMaxDepth(3)),
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithMaxEventSize(400)),
		robustBind(tb, "default", robustAPIKey, clock),
	)
	return ins, events
}

// FuzzEvaluateValid is the differential test of validating once: for any
// bytes, either Valid refuses them and Evaluate rejects them as an
// invalid_event with the same message (Valid does not quote the event,
// and Evaluate may name a key twice it met before Valid's fault),
// or EvaluateValid decides, for every integration, exactly what Evaluate
// does: outcome, reason, message, fields, warnings, requests byte for
// byte. The corpus is FuzzEvaluate's, the events of every shipped vector,
// and events with keys twice.
//
//	go test ./runtime -run '^$' -fuzz FuzzEvaluateValid -fuzztime 20000x
func FuzzEvaluateValid(f *testing.F) {
	ins, events := validIntegrations(f)
	for _, b := range evaluateSeeds(f) {
		f.Add(b)
	}
	for _, b := range events {
		f.Add(b)
	}
	for _, s := range []string{
		`{"event":"Nope","event":"Order Completed"}`,
		`{"event":"Order Completed","event":"Nope"}`,
		`{"type":"track","event":"Unmapped","type":"identify"}`,
		`{"a":1,"a":2,"event":"Unmapped"}`,
		`{"\u0065vent":"Unmapped","event":"Order Completed"}`,
		`{"event":"Unmapped","context":{"consent":{"advertising":true,"advertising":false}}}`,
		`{"event":"Order Completed","context":{"consent":{"advertising":true,"advertising":false}}}`,
		`{"type":"page","name":"Home","properties":{"url":"https://x.example/?a=1"}}`,
		`{"type":"identify","userId":"u1","traits":{"email":"a@b.example"}}`,
		`{"event":"Unmapped","a":[[[[[[1]]]]]]}`,
		` {"event":"Order Completed"} `,
		// Values nobody reads, which a pre-validated scan skips without
		// reading them: strings with escaped quotes and backslashes (a
		// skipped string ends at its first unescaped quote), nested
		// containers holding brackets in strings, keys twice inside
		// skipped values (not checked by either path) next to keys read
		// twice (checked by both), numbers and words ending at every
		// delimiter.
		`{"event":"Order Completed","x":"a\"b\\","properties":{"order_id":"o1","y":"\\\"}]","total":1}}`,
		`{"event":"Order Completed","x":{"a":[{"b":"}"},"]",["\"[{"]],"a":1},"properties":{"order_id":"o1","order_id":"o2"}}`,
		`{"event":"Order Completed","properties":{"z":{"order_id":1,"order_id":2},"order_id":"o1","products":[{"sku":"s","url":{"u":"\u0022}"},"url":[1,2]},{"sku":"t","sku":"u"}]}}`,
		`{"event":"Order Completed","properties":{"order_id":"o1","products":[[1,[2]],{"q":[-1.5e+3,true,false,null]},{"price":1e2 , "quantity" :2 }]}}`,
		`{"event":"Order Completed","context":{"page":{"url":"u","x":{"y":1,"y":2}},"campaign":{"n":1,"n":2}},"properties":{"order_id":"o1"}}`,
		`{"event":"Unmapped","context":{"x":"\\","ip":"1","ip":"2"},"x":[{"a":1,"a":2}]}`,
		// Valid checks top-level keys only: a key twice below, before
		// or after one twice at the top, changes nothing.
		`{"x":{"a":1,"a":1},"a":1,"a":2,"event":"Unmapped"}`,
		`{"x":[{"b":{"c":1,"c":2}}],"event":"Unmapped","x":0}`,
		`{"x":[{"b":{"c":1,"c":2}}],"event":"Unmapped","y":{"event":1,"event":2}}`,
		`{"x":-0.5,"y":true,"z":null,"w":false,"event":"Order Completed","properties":{"order_id":"o1","tax":0}}`,
		"{\"event\":\"Order Completed\",\"x\":\t[ 1 , {\"a\" : \"\\\\\"} ] \n,\"properties\":{\"order_id\":\"o1\"}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, event []byte) {
		v, err := runtime.Valid(event)
		if err != nil {
			res := ins[0].Evaluate(event)
			if res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent {
				t.Fatalf("Valid refused %.300q (%v), Evaluate: %s %s %s", event, err, res.Outcome, res.Reason, res.Message)
			}
			// Evaluate stops at the first fault in the bytes: a key read
			// twice, before the fault Valid names, is named instead.
			dup := strings.HasPrefix(res.Message, "event has the key ")
			if msg := err.Error(); msg != res.Message && !dup && !(strings.HasSuffix(msg, ", not a JSON object") && strings.HasSuffix(res.Message, ", not a JSON object")) {
				t.Fatalf("%.300q: Valid says %q, Evaluate %q", event, msg, res.Message)
			}
			return
		}
		if !bytes.Equal(v.Bytes(), event) {
			t.Fatalf("Bytes() is not the event")
		}
		for i, in := range ins {
			want, got := robustSnap(in.Evaluate(event)), robustSnap(in.EvaluateValid(v))
			if !reflect.DeepEqual(want, got) {
				t.Fatalf("integration %d, event %.500q:\nEvaluate:      %+v\nEvaluateValid: %+v", i, event, want, got)
			}
		}
	})
}

// TestEvaluateValidZero: a ValidEvent Valid did not make is evaluated as
// nothing at all (Evaluate(nil)), never trusted.
func TestEvaluateValidZero(t *testing.T) {
	in := robustBind(t, "retail", robustAPIKey)
	want, got := robustSnap(in.Evaluate(nil)), robustSnap(in.EvaluateValid(runtime.ValidEvent{}))
	if !reflect.DeepEqual(want, got) || got.Outcome != runtime.Reject {
		t.Fatalf("zero ValidEvent: %+v, want %+v", got, want)
	}
}

// TestValidLimits: Valid applies WithMaxEventSize and WithMaxDepth, and
// an integration with tighter limits than Valid's refuses the event as
// Evaluate does.
func TestValidLimits(t *testing.T) {
	deep := []byte(`{"event":"Order Completed","a":[[[[1]]]]}`)
	if _, err := runtime.Valid(deep, runtime.WithMaxDepth(4)); err == nil || !strings.Contains(err.Error(), "deeper than 4") {
		t.Fatalf("depth 5 within 4: %v", err)
	}
	if _, err := runtime.Valid(deep, runtime.WithMaxEventSize(10)); err == nil || !strings.Contains(err.Error(), "the limit is 10") {
		t.Fatalf("size: %v", err)
	}
	v, err := runtime.Valid(deep)
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []runtime.Option{runtime.WithMaxDepth(4), runtime.WithMaxEventSize(10)} {
		in := robustBind(t, "retail", robustAPIKey, opt)
		if res := in.EvaluateValid(v); res.Outcome != runtime.Reject || res.Reason != runtime.ReasonInvalidEvent {
			t.Fatalf("tighter limit: %s %s %s", res.Outcome, res.Reason, res.Message)
		}
	}
}
