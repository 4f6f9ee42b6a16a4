package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime"
)

// integrationFlags are the flags that bind a blueprint to a config.
type integrationFlags struct {
	blueprint    string
	variant      string
	config       []string
	configFile   string
	maxEventSize int
}

func (f *integrationFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.blueprint, "blueprint", "", "catalog `KEY[@VERSION]`, or a blueprint FILE (an overlay, say)")
	cmd.Flags().StringVar(&f.variant, "variant", "default", "`VARIANT` of the blueprint")
	cmd.Flags().StringArrayVar(&f.config, "config", nil, "config value `KEY=VALUE` (repeatable; values are never printed)")
	cmd.Flags().StringVar(&f.configFile, "config-file", "", "config `FILE` (JSON or YAML mapping); --config values override it")
	cmd.Flags().IntVar(&f.maxEventSize, "max-event-size", runtime.DefaultMaxEventSize, "largest event accepted, in `BYTES`")
}

// bind compiles the blueprint and checks the config. A refused config is
// printed (never its secret values) and exits 1.
func (a *app) bind(f *integrationFlags) (*runtime.Integration, error) {
	if f.blueprint == "" {
		return nil, usageErr("--blueprint is required")
	}
	cfg, err := parseConfig(f.config, f.configFile)
	if err != nil {
		return nil, err
	}
	bp, err := a.loadBlueprint(f.blueprint)
	if err != nil {
		return nil, err
	}
	in, err := runtime.Bind(bp, f.variant, cfg, runtime.WithMaxEventSize(f.maxEventSize))
	var ce *runtime.ConfigError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(a.stderr, "config refused: reject invalid_config %v\n", ce.Keys)
		var msgs []string
		for _, k := range ce.Keys {
			fmt.Fprintf(a.stderr, "  %s %s\n", k, ce.Problems[k])
			msgs = append(msgs, k+" "+ce.Problems[k])
		}
		if a.configJSON {
			res := runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidConfig, Fields: ce.Keys, Message: strings.Join(msgs, "; ")}
			a.stdout.Write(appendResult(nil, res, true))
		}
		return nil, errFailed
	case errors.Is(err, runtime.ErrUnknownVariant):
		return nil, usageErr("%v", err)
	case err != nil:
		return nil, &exitError{code: 1, err: err}
	}
	return in, nil
}

func (a *app) evalCmd() *cobra.Command {
	var fl integrationFlags
	var format string
	cmd := &cobra.Command{
		Use:   "eval --blueprint KEY[@VERSION]|FILE [--variant V] [--config KEY=VALUE ...] [EVENT.json|-]",
		Short: "Dry-run events: print each decision and request, secrets redacted",
		Long: `Evaluate events against a blueprint without sending anything, and print the
decision (deliver, skip or reject, with its reason), the warnings, and each
request that would be sent. Secret config values are redacted everywhere
(Authorization: Basic ***), even if an event carries them.

EVENT.json holds one JSON value (pretty-printed or not). With - or no
argument, standard input is read: NDJSON (one event per line, streamed, one
result per event, in input order; events are evaluated on every core) or a
single pretty-printed event. A read error of the input ends the run with exit
1 after the results of the events read before it.

Exit 0 when the events were evaluated (whatever the decisions), 1 when the
config is refused (reject invalid_config, naming the keys), the blueprint
does not compile or the input or output fails, 2 on usage errors.`,
		Example: `  echo '{"type":"track","event":"Order Completed","timestamp":"2026-11-24T10:15:30Z","context":{"consent":{"advertising":true}},"properties":{"order_id":"o-1","total":25.5,"currency":"USD","products":[{"product_id":"p-1","price":25.5}]}}' | \
    blueprint eval --blueprint button --config application_id=app-abc123 --config api_key=sk-test-123 -
  blueprint eval --blueprint button@0.1.0 --variant retail --config-file examples/button/config.json examples/button/order-completed.json
  blueprint eval --blueprint button --variant retail --config-file examples/button/config.json --format json - < examples/button/events.ndjson
  blueprint eval --blueprint blueprints/button/overlays/custom-event.yaml --config-file examples/button/config.json examples/button/order-completed.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			a.configJSON = format == "json"
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			if len(args) == 1 && args[0] != "-" {
				b, err := os.ReadFile(args[0])
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				out := appendResult(nil, in.Evaluate(bytes.TrimSpace(b)), format == "json")
				if _, err := a.stdout.Write(out); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("writing results: %w", err)}
				}
				return nil
			}
			if err := evalStream(in, a.stdin, a.stdout, fl.maxEventSize, format == "json"); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	fl.register(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: text, or json (one line per event)")
	return cmd
}

// Batches of the stream: a batch is sent to a worker when it holds
// batchEvents events or batchBytes bytes of them.
const (
	batchEvents = 256
	batchBytes  = 256 << 10
)

// evalBatch is a run of consecutive events and, once evaluated, their
// results as output text.
type evalBatch struct {
	seq    int
	events []byte // the events, one after the other
	ends   []int  // where each event ends in events
	sizes  []int  // each event's size; -size for an event over the limit (not kept)
	out    []byte // the results
}

// maxEvalWorkers caps the workers of evalStream: past it the reader and
// the writer are the bottleneck, and each worker adds batches in flight.
const maxEvalWorkers = 8

// evalStream evaluates the events of r (NDJSON, or one pretty-printed
// event) on every core (at most maxEvalWorkers) and writes one result per
// event to w, in input order: a line of JSON each when asJSON, else the
// text form with a blank line between results. Memory is bounded by the
// batches in flight (two per worker plus two, each of at most batchEvents
// events or batchBytes bytes plus one event, and their results), whatever
// the input's length.
func evalStream(in *runtime.Integration, r io.Reader, w io.Writer, limit int, asJSON bool) error {
	workers := min(goruntime.GOMAXPROCS(0), maxEvalWorkers)
	free := make(chan *evalBatch, 2*workers+2)
	for range cap(free) {
		free <- &evalBatch{}
	}
	work := make(chan *evalBatch, cap(free))
	done := make(chan *evalBatch, cap(free))
	var stop atomic.Bool // the writer failed: read no further
	errStop := errors.New("stopped")

	var readErr error
	go func() {
		defer close(work)
		seq := 0
		cur := <-free
		reset := func(b *evalBatch) {
			b.seq, seq = seq, seq+1
			b.events, b.ends, b.sizes = b.events[:0], b.ends[:0], b.sizes[:0]
		}
		reset(cur)
		err := readEvents(r, limit, func(ev []byte, size int) error {
			if stop.Load() {
				return errStop
			}
			if ev == nil {
				size = -size
			}
			cur.events = append(cur.events, ev...)
			cur.ends = append(cur.ends, len(cur.events))
			cur.sizes = append(cur.sizes, size)
			if len(cur.ends) == batchEvents || len(cur.events) >= batchBytes {
				work <- cur
				cur = <-free
				reset(cur)
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			readErr = err
		}
		if len(cur.ends) > 0 {
			work <- cur
		}
	}()

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				b.evaluate(in, limit, asJSON)
				done <- b
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	// The writer: batches come back in any order and leave in input order.
	var writeErr error
	pending := map[int]*evalBatch{}
	next := 0
	for b := range done {
		pending[b.seq] = b
		for {
			b, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if writeErr == nil {
				if _, err := w.Write(b.out); err != nil {
					writeErr = fmt.Errorf("writing results: %w", err)
					stop.Store(true)
				}
			}
			if cap(b.events) > 4*batchBytes || cap(b.out) > 4*batchBytes {
				*b = evalBatch{} // a huge event's buffers are not kept
			}
			free <- b
		}
	}
	if writeErr != nil {
		return writeErr
	}
	return readErr // read by the reader before it closed work
}

// evaluate evaluates the batch's events into b.out.
func (b *evalBatch) evaluate(in *runtime.Integration, limit int, asJSON bool) {
	b.out = b.out[:0]
	start := 0
	for i, end := range b.ends {
		var res runtime.Result
		if size := b.sizes[i]; size < 0 {
			res = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent,
				Message: fmt.Sprintf("event is %d bytes; the limit is %d", -size, limit)}
		} else {
			res = in.Evaluate(b.events[start:end])
		}
		start = end
		if !asJSON && (b.seq > 0 || i > 0) {
			b.out = append(b.out, '\n') // a blank line between text results
		}
		b.out = appendResult(b.out, res, asJSON)
	}
}

// appendResult appends one result: a line of JSON, or its text form.
func appendResult(dst []byte, res runtime.Result, asJSON bool) []byte {
	if asJSON {
		return append(res.AppendJSON(dst), '\n')
	}
	return append(append(dst, res.String()...), '\n')
}

// readEvents reads events from r: NDJSON when the first non-blank line is a
// whole JSON value, else the whole input as one (pretty-printed) event. An
// NDJSON line longer than limit is not kept in memory: fn gets nil and the
// line's size. Memory stays bounded by limit whatever the input size.
func readEvents(r io.Reader, limit int, fn func(ev []byte, size int) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	first := true
	var line []byte
	for {
		var size int
		var tooLong bool
		var err error
		line, size, tooLong, err = readLine(br, line[:0], limit)
		if err != nil {
			return err
		}
		if size == 0 && line == nil {
			return nil // EOF
		}
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 && !tooLong {
			continue
		}
		if first && !tooLong && !wholeJSON(trimmed) {
			// Not NDJSON: the whole input is one event.
			rest, err := io.ReadAll(io.LimitReader(br, int64(limit)+1))
			if err != nil {
				return fmt.Errorf("reading events: %w", err)
			}
			all := append(append([]byte(nil), line...), rest...)
			return fn(bytes.TrimSpace(all), len(all))
		}
		first = false
		if tooLong {
			if err := fn(nil, size); err != nil {
				return err
			}
			continue
		}
		if err := fn(trimmed, size); err != nil {
			return err
		}
	}
}

// readLine reads one line (without its newline) into buf, keeping at most
// limit+1 bytes. It returns nil, 0 at end of input, and a read error other
// than the end of input as err (the partial line read before it is not
// returned: it may be a truncated event).
func readLine(br *bufio.Reader, buf []byte, limit int) (line []byte, size int, tooLong bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		size += len(chunk)
		if !tooLong {
			if len(buf)+len(chunk) > limit+1 {
				tooLong = true
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(buf, []byte("\n")), size, tooLong, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case !errors.Is(err, io.EOF):
			return nil, 0, false, fmt.Errorf("reading events: %w", err)
		default: // the last line
			if size == 0 {
				return nil, 0, false, nil
			}
			return buf, size, tooLong, nil
		}
	}
}
