// Command bodies runs the Go side of bench/compare.sh over an NDJSON file,
// the same way bench/peers/*.mjs run the Node peers: it loads every event
// into memory, then either prints the Button purchase body of the first N
// events (-dump N; one line per event, null when the event is not a
// delivered purchase) or times the mapping, bytes in to body bytes out, and
// prints "ENGINE events/s us/event".
//
// -engine blueprint evaluates button@0.1.0 (variant default) with the
// engine; -engine gomap runs the hand-written encoding/json mapping of
// bench/peers (ButtonPurchase).
//
// Usage: go run ./bench/peers/cmd/bodies [-engine blueprint|gomap] [-dump N] [-seconds S] FILE
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/blueprint-engine/blueprint/bench/peers"
	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime"
)

const apiKey = "sk-bench"

func main() {
	which := flag.String("engine", "blueprint", "blueprint or gomap")
	dump := flag.Int("dump", 0, "print the bodies of the first N events instead of timing")
	seconds := flag.Float64("seconds", 3, "length of the timed loop")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: bodies [-engine blueprint|gomap] [-dump N] [-seconds S] FILE")
		os.Exit(2)
	}
	events, err := load(flag.Arg(0))
	if err != nil {
		fatal(err)
	}
	var mapEvent func([]byte) []byte
	switch *which {
	case "blueprint":
		in, err := integration()
		if err != nil {
			fatal(err)
		}
		mapEvent = func(ev []byte) []byte {
			res := in.Evaluate(ev)
			if res.Outcome != runtime.Deliver || res.VendorEvent != "purchase" {
				return nil
			}
			return res.Requests[0].Body
		}
	case "gomap":
		mapEvent = func(ev []byte) []byte {
			body, _, err := peers.ButtonPurchase(ev, apiKey)
			if err != nil {
				return nil
			}
			return body
		}
	default:
		fatal(fmt.Errorf("unknown engine %q", *which))
	}

	if *dump > 0 {
		w := bufio.NewWriter(os.Stdout)
		defer w.Flush()
		for _, ev := range events[:min(*dump, len(events))] {
			if body := mapEvent(ev); body != nil {
				w.Write(body)
			} else {
				w.WriteString("null")
			}
			w.WriteByte('\n')
		}
		return
	}

	// Warm-up: one pass over the file. Then whole passes until the time is up.
	mapped := 0
	for _, ev := range events {
		if mapEvent(ev) != nil {
			mapped++
		}
	}
	if mapped == 0 {
		fatal(fmt.Errorf("no event of %s maps to a purchase", flag.Arg(0)))
	}
	budget := time.Duration(*seconds * float64(time.Second))
	n, sink := 0, 0
	start := time.Now()
	for time.Since(start) < budget {
		for _, ev := range events {
			sink += len(mapEvent(ev))
		}
		n += len(events)
	}
	elapsed := time.Since(start)
	if sink == 0 {
		fatal(fmt.Errorf("empty bodies"))
	}
	fmt.Printf("%s %.0f %.3f\n", *which, float64(n)/elapsed.Seconds(), float64(elapsed.Microseconds())/float64(n))
}

func integration() (*runtime.Integration, error) {
	cat, err := engine.NewCatalog(blueprints.FS)
	if err != nil {
		return nil, err
	}
	bp, ds, err := cat.Compile("button@0.1.0")
	if bp == nil {
		return nil, fmt.Errorf("compile button@0.1.0: %v %v", err, ds)
	}
	return runtime.Bind(bp, "default", map[string]any{"application_id": "app-abc123", "api_key": apiKey})
}

// load reads every non-empty line of the file into memory.
func load(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var events [][]byte
	for line := range bytes.Lines(data) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			events = append(events, line)
		}
	}
	return events, nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bodies:", err)
	os.Exit(1)
}
