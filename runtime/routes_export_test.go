package runtime

import "fmt"

// SetFastRoutes turns the fields' compiled routes on or off (off: every
// field takes writeField's general route) and returns a function
// restoring the setting. Not safe to call while events are evaluated.
func SetFastRoutes(on bool) (restore func()) {
	old := fastRoutes
	fastRoutes = on
	return func() { fastRoutes = old }
}

// DumpResult writes everything a result holds that a caller or a log can
// see, the secret ranges of bodies included, for comparing two results
// byte for byte.
func DumpResult(r Result) string {
	s := fmt.Sprintf("%s|%s|%q|%q|%q|%q|%q|%d\n", r.Outcome, r.Reason, r.Fields, r.Warnings, r.Message, r.Event, r.VendorEvent, len(r.Requests))
	for _, q := range r.Requests {
		s += fmt.Sprintf("%s %s %+v %q %v %q\n", q.Method, q.URL, q.Headers, q.Body, q.secretRanges, q.secretQuery)
	}
	return s
}
