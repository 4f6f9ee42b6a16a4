package runtime

import (
	"slices"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// EvaluateEach evaluates one checked event for each integration and
// appends the results to dst, in the order of ins: the i-th appended
// result is exactly ins[i].EvaluateValid(v) (outcome, reason, message,
// fields, warnings, requests byte for byte, redaction), whatever the
// order of ins and whatever else it holds. Pass dst[:0] of a kept slice to
// evaluate without allocating but for the requests of delivered events.
//
// It is the fan-out of validating once: a platform evaluates each event
// for every installed integration, and thousands of tenants' integrations
// share a few compiled blueprints. Integrations bound to the same variant
// of the same compiled blueprint with the same depth limit read an event
// identically, so the recording scan (most of an evaluation's cost) is
// done once for all of them: the first scans, the others start from its
// records and compute only what depends on their config. Integrations
// whose limits Valid did not settle (a smaller size or depth limit) are
// checked as EvaluateValid checks them.
//
// ins may hold an integration more than once, and integrations of any
// blueprints in any order; finding those of each scan key costs a
// comparison per integration and key (a few keys per source: cheap next
// to a scan). Like Evaluate, it is safe for concurrent use and keeps
// neither the event nor ins.
func EvaluateEach(dst []Result, v ValidEvent, ins []*Integration) []Result {
	base := len(dst)
	dst = slices.Grow(dst, len(ins))[:base+len(ins)]
	out := dst[base:]
	clear(out) // an Outcome "" is not evaluated yet
	c := ctxPool.Get().(*evalCtx)
	defer c.release()
	c.sharing = true
	// Integrations are taken by scan key, each key's in the order of ins,
	// the first of a key scanning: interleaved tenants of several
	// blueprints still scan once per key, not once per change of key.
	// Every evaluation sets Outcome, so "" marks those still to do.
	for i, in := range ins {
		if out[i].Outcome != "" {
			continue
		}
		k := keyOf(in, validFor(in, &v))
		for j := i; j < len(ins); j++ {
			if out[j].Outcome != "" {
				continue
			}
			pre := validFor(ins[j], &v)
			if keyOf(ins[j], pre) != k {
				continue
			}
			out[j] = ins[j].evaluateIn(c, v.b, pre)
			c.reset()
		}
	}
	return dst
}

// validFor is the ValidEvent in's evaluation may start from, as
// EvaluateValid decides: nil when Valid did not settle what in checks.
func validFor(in *Integration, v *ValidEvent) *ValidEvent {
	if !v.ok || len(v.b) > in.opts.MaxEventSize || in.opts.MaxDepth < v.maxDepth {
		return nil
	}
	return v
}

// scanKey is what an evaluation's scan of an event depends on, besides
// the event: the variant (its compiled blueprint's plan is the trie
// scanned; its event map is the gate, which stops recording an unmapped
// event), the depth limit, and whether Valid's checks are trusted.
// Integrations of equal keys read an event identically; their config
// (values, body, URL, headers), clock and expression budget only matter
// after the scan.
type scanKey struct {
	variant  *compiler.Variant
	plan     *bpPlan
	maxDepth int
	pre      bool
}

func keyOf(in *Integration, pre *ValidEvent) scanKey {
	return scanKey{variant: in.variant, plan: in.plan, maxDepth: in.opts.MaxDepth, pre: pre != nil}
}

// scanShared is scan in EvaluateEach: when c holds the scan of the same
// event under the same key (an earlier integration's), that scan, of
// which only what the scan set for the integration itself is set again.
// The shared values are computed again (they read config): done is
// cleared, and value overwrites each before it is read.
func (c *evalCtx) scanShared(in *Integration, event []byte, pre *ValidEvent) string {
	k := keyOf(in, pre)
	if c.kept == k && k.variant != nil {
		c.in, c.event = in, event
		c.top = scope{doc: event, slots: c.slots}
		clear(c.done)
		return c.keptMsg
	}
	msg := c.scan(in, event, pre)
	c.kept, c.keptMsg = k, msg
	return msg
}
