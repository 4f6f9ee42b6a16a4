package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// progress shows events/s, delivered, retrying and dead letters on stderr:
// a bar redrawn in place on a terminal, a line every 5 s otherwise.
func (a *app) progress(mode string, p *delivery.Pipeline, c *send.Counters) (stop func()) {
	isTTY := false
	w := a.stderr
	if l, ok := w.(*lockedWriter); ok {
		w = l.w
	}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			isTTY = true
		}
	}
	switch mode {
	case "none":
		return func() {}
	case "auto":
		mode = map[bool]string{true: "bar", false: "lines"}[isTTY]
	case "bar", "lines":
	default:
		mode = "lines"
	}
	every := 5 * time.Second
	if mode == "bar" {
		every = 200 * time.Millisecond
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	render := func() string {
		s := p.Summary()
		rate := float64(s.Events) / max(time.Since(start).Seconds(), 0.001)
		return fmt.Sprintf("events %d (%.0f/s)  delivered %d  retrying %d  dead letters %d  skipped %d  rejected %d",
			s.Events, rate, s.Delivered, c.Retries.Load(), s.Dead, s.Skipped, s.Rejected)
	}
	wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				if mode == "bar" {
					fmt.Fprintf(a.stderr, "\r\x1b[K%s\n", render())
				}
				return
			case <-tick.C:
				if mode == "bar" {
					fmt.Fprintf(a.stderr, "\r\x1b[K%s", render())
				} else {
					fmt.Fprintln(a.stderr, render())
				}
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
