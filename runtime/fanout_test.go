package runtime_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/blueprint-engine/blueprint/runtime"
)

// fanoutIntegrations binds, for every catalog blueprint, every distinct
// variant and config its shipped vectors use (several configs of one
// blueprint and variant share a scan in EvaluateEach and must not share
// anything else), plus Button integrations that differ only in their
// secret (redaction), in a limit Valid did not settle (size, depth), or
// in their expression budget. It returns them with the events of every
// shipped case.
func fanoutIntegrations(tb testing.TB) (ins []*runtime.Integration, events [][]byte) {
	tb.Helper()
	r, files := shippedVectors(tb)
	now := time.Date(2026, 11, 24, 10, 15, 30, 0, time.UTC)
	clock := runtime.WithClock(func() time.Time { return now })
	bound := map[string]bool{}
	for _, f := range files {
		bp, err := r.Blueprint(f)
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range f.Cases {
			events = append(events, c.Event)
			variant, config := f.Variant, f.Config
			if c.Variant != "" {
				variant = c.Variant
			}
			if c.HasConfig {
				config = c.Config
			}
			cj, err := json.Marshal(config)
			if err != nil {
				tb.Fatal(err)
			}
			key := bp.Ref() + "|" + variant + "|" + string(cj)
			if bound[key] {
				continue
			}
			bound[key] = true
			if in, err := runtime.Bind(bp, variant, config, clock); err == nil {
				ins = append(ins, in)
			}
		}
	}
	if len(ins) < 16 {
		tb.Fatalf("only %d integrations bound from the shipped vectors", len(ins))
	}
	ins = append(ins,
		robustBind(tb, "retail", robustAPIKey, clock),
		robustBind(tb, "retail", "sk-other-456", clock),
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithMaxDepth(3)),
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithMaxDepth(3)),
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithMaxEventSize(400)),
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithExprBudget(64, 8)),
		robustBind(tb, "retail", robustAPIKey, clock, runtime.WithMaxDepth(1000)),
		robustBind(tb, "default", robustAPIKey, clock),
		robustBind(tb, "default", "sk-other-456", clock),
	)
	return ins, events
}

// fanoutSeeds are events that make integrations of one scan differ:
// secrets of one of them in the event (redacted in one message, not in
// the other's), keys twice, depth past a small limit, unmapped names.
var fanoutSeeds = []string{
	`{"event":"sk-test-123","type":"track"}`,
	`{"event":"sk-other-456 and sk-test-123"}`,
	`{"event":"Order Completed","type":"track","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"sk-test-123","total":1,"currency":"USD","products":[{"sku":"sk-other-456","price":1,"quantity":1}]}}`,
	`{"event":"Order Completed","context":{"consent":{"advertising":true,"advertising":false}}}`,
	`{"event":"Unmapped","context":{"consent":{"advertising":true,"advertising":false}}}`,
	`{"event":"Order Completed","event":"Nope"}`,
	`{"event":"Order Completed","a":[[[[[[1]]]]]]}`,
	`{"type":"page","name":"Home","properties":{"url":"https://x.example/?a=1"}}`,
	`{"type":"identify","userId":"u1","traits":{"email":"a@b.example"}}`,
	`{"type":"track"}`,
}

// checkEachEvent checks EvaluateEach against EvaluateValid for one event,
// over ins in the given order: every result deep-equal (requests, their
// secret ranges and redaction included).
func checkEachEvent(t *testing.T, v runtime.ValidEvent, ins []*runtime.Integration, want map[*runtime.Integration]runtime.Result) {
	t.Helper()
	got := runtime.EvaluateEach(nil, v, ins)
	if len(got) != len(ins) {
		t.Fatalf("%d results for %d integrations", len(got), len(ins))
	}
	for i, in := range ins {
		w, ok := want[in]
		if !ok {
			w = in.EvaluateValid(v)
			want[in] = w
		}
		if !reflect.DeepEqual(w, got[i]) || w.String() != got[i].String() {
			t.Fatalf("integration %d (%s %s), event %.400q:\nEvaluateValid: %+v\nEvaluateEach:  %+v",
				i, in.Blueprint().Ref(), in.Variant(), v.Bytes(), robustSnap(w), robustSnap(got[i]))
		}
	}
}

// TestEvaluateEach is the differential test of the fan-out: for every
// shipped vector's event (and the seeds above), EvaluateEach over a mix of
// every catalog blueprint, variant and config (each integration twice,
// interleaved, in shuffled orders) gives what EvaluateValid gives for
// each, and so does a fan-out to one key's integrations alone.
func TestEvaluateEach(t *testing.T) {
	ins, events := fanoutIntegrations(t)
	for _, s := range fanoutSeeds {
		events = append(events, []byte(s))
	}
	for _, b := range evaluateSeeds(t) {
		events = append(events, b)
	}
	rng := rand.New(rand.NewPCG(15, 8))
	orders := 3
	if testing.Short() || raceEnabled {
		orders = 1
	}
	// Every integration twice: repeated integrations share a scan and
	// nothing else.
	all := append(slices.Clone(ins), ins...)
	button := ins[len(ins)-9:]
	checked := 0
	for _, ev := range events {
		v, err := runtime.Valid(ev)
		if err != nil {
			continue
		}
		want := map[*runtime.Integration]runtime.Result{}
		for range orders {
			rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			checkEachEvent(t, v, all, want)
		}
		checkEachEvent(t, v, button, want)
		checkEachEvent(t, v, button[:1], want)
		checked++
	}
	if checked < 1000 {
		t.Fatalf("only %d events checked", checked)
	}
	// The zero ValidEvent is evaluated as nothing, for every integration.
	checkEachEvent(t, runtime.ValidEvent{}, button, map[*runtime.Integration]runtime.Result{})
	// Nothing: nothing appended; dst is appended to.
	if got := runtime.EvaluateEach(nil, runtime.ValidEvent{}, nil); len(got) != 0 {
		t.Fatalf("no integrations: %d results", len(got))
	}
	dst := []runtime.Result{{Outcome: runtime.Skip}}
	if got := runtime.EvaluateEach(dst, runtime.ValidEvent{}, button[:2]); len(got) != 3 || got[0].Outcome != runtime.Skip || got[2].Outcome != runtime.Reject {
		t.Fatalf("append: %+v", got)
	}
}

// FuzzEvaluateEach is TestEvaluateEach for any bytes Valid accepts: the
// fan-out to the shipped integrations (each twice), in an order the
// input's first byte chooses, decides what EvaluateValid decides for each.
//
//	go test ./runtime -run '^$' -fuzz FuzzEvaluateEach -fuzztime 2m
func FuzzEvaluateEach(f *testing.F) {
	ins, events := fanoutIntegrations(f)
	for _, b := range evaluateSeeds(f) {
		f.Add(b)
	}
	for _, b := range events {
		f.Add(b)
	}
	for _, s := range fanoutSeeds {
		f.Add([]byte(s))
	}
	all := append(slices.Clone(ins), ins...)
	f.Fuzz(func(t *testing.T, event []byte) {
		v, err := runtime.Valid(event)
		if err != nil {
			return // FuzzEvaluateValid's business
		}
		order := slices.Clone(all)
		var seed uint64
		if len(event) > 0 {
			seed = uint64(event[len(event)/2])
		}
		rand.New(rand.NewPCG(seed, 15)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		checkEachEvent(t, v, order, map[*runtime.Integration]runtime.Result{})
	})
}
