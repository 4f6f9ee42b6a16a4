package service

import "time"

// SetLiveRecheck sets how often an open live stream verifies its token
// again, for a test; it returns the old value's restore.
func SetLiveRecheck(d time.Duration) (restore func()) {
	old := liveRecheck
	liveRecheck = d
	return func() { liveRecheck = old }
}

// SetReplayTimeout sets the bound of a Kafka-mode replay, for a test; it
// returns the old value's restore.
func SetReplayTimeout(d time.Duration) (restore func()) {
	old := replayTimeout
	replayTimeout = d
	return func() { replayTimeout = old }
}
