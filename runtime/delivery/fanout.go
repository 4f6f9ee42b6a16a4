package delivery

import "github.com/blueprint-engine/blueprint/runtime"

// EvaluateEach appends to dst, in the order of ins, what each
// integration's Evaluate decides for event: the event is checked once
// (runtime.Valid) and evaluated for all of them with runtime.EvaluateEach,
// which scans it once for the integrations that read it alike. An event
// Valid refuses is evaluated by each integration's Evaluate, so that each
// gets exactly the reject (reason and message) it gives alone: Valid's
// limits are the defaults, and an integration bound with larger ones may
// still accept what Valid refuses.
func EvaluateEach(dst []runtime.Result, event []byte, ins []*runtime.Integration) []runtime.Result {
	v, err := runtime.Valid(event)
	if err == nil {
		return runtime.EvaluateEach(dst, v, ins)
	}
	for _, in := range ins {
		dst = append(dst, in.Evaluate(event))
	}
	return dst
}
