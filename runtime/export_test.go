package runtime

// SetWindowBudget sets the spans a scan may record per event (tests of
// the fallback that scans items again) and returns a function restoring
// it. Not safe to call while events are evaluated.
func SetWindowBudget(n int) (restore func()) {
	old := maxWindowSpans
	maxWindowSpans = n
	return func() { maxWindowSpans = old }
}
