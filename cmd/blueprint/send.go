package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// deliveryFlags configure the outbox, the sender and the retry schedule.
type deliveryFlags struct {
	state       string
	vendorURL   string
	concurrency int
	maxAttempts int
	retryBase   time.Duration
	retryCap    time.Duration
	maxAge      time.Duration
	rate        float64
	timeout     time.Duration
	logLevel    string
	logFormat   string
	progress    string
	retain      time.Duration
	maxPending  int
	rejects     string
}

func (f *deliveryFlags) register(cmd *cobra.Command, withState bool) {
	if withState {
		cmd.Flags().StringVar(&f.state, "state", defaultStateDir(), "`DIR` holding the durable outbox (outbox.db)")
	}
	cmd.Flags().StringVar(&f.vendorURL, "vendor-url", "", "send every request to this scheme://host:port instead of the vendor's, keeping path and query (sandboxes, tests)")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 16, "most requests in flight per host")
	cmd.Flags().IntVar(&f.maxAttempts, "max-attempts", send.DefaultPolicy.MaxAttempts, "most delivery attempts per request before it becomes a dead letter")
	cmd.Flags().DurationVar(&f.retryBase, "retry-base", send.DefaultPolicy.Base, "first retry backoff (times 4 per attempt, each up to 20 % shorter at random)")
	cmd.Flags().DurationVar(&f.retryCap, "retry-cap", send.DefaultPolicy.Cap, "longest backoff between attempts")
	cmd.Flags().DurationVar(&f.maxAge, "max-age", send.DefaultPolicy.MaxAge, "the retry window: no attempt later than this after the first (a longer wait is shortened to end there)")
	cmd.Flags().Float64Var(&f.rate, "rate", 0, "most requests per second for the integration (0: no limit; a 429 halves it)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 60*time.Second, "longest single attempt")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "warn", "log `LEVEL` on stderr: debug, info (every attempt), warn, error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (a bar on a terminal, lines otherwise), bar, lines, none")
	if withState {
		cmd.Flags().StringVar(&f.rejects, "rejects", "", "append every rejected event to `FILE` (NDJSON: error, details, fields, original_event, secrets redacted), as the platform's dlq-events")
		cmd.Flags().IntVar(&f.maxPending, "max-pending", defaultMaxPending, "most requests of this run waiting in the outbox: reading the input waits beyond it, so a large input is not copied into the outbox ahead of delivery")
		cmd.Flags().DurationVar(&f.retain, "retain", defaultRetention, "keep delivered and skipped requests this long (the same event sent again within it is not sent twice), when a run starts and hourly; 0 keeps them forever")
	}
}

// defaultMaxPending bounds the requests a send run has enqueued and not
// yet finished: seconds of work at loopback speed, a few MB of outbox.
const defaultMaxPending = 10_000

// defaultRetention is how long send keeps delivered and skipped requests.
const defaultRetention = 7 * 24 * time.Hour

func defaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "blueprint")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "blueprint")
	}
	return ".blueprint-state"
}

func (f *deliveryFlags) logger(stderr io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageErr("--log-level %q: expected debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch f.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(stderr, opts)), nil
	}
	return nil, usageErr("--log-format %q: expected text or json", f.logFormat)
}

// delivery is an open outbox with a sender and a worker.
type delivery struct {
	queue    *outbox.Bolt
	worker   *send.Worker
	counters *send.Counters
	log      *slog.Logger
}

func (a *app) openDelivery(f *deliveryFlags, in *runtime.Integration, name string) (*delivery, error) {
	if f.concurrency < 1 || f.maxAttempts < 1 || f.retryBase <= 0 || f.retryCap <= 0 || f.maxAge <= 0 || f.rate < 0 || f.timeout <= 0 {
		return nil, usageErr("--concurrency, --max-attempts, --retry-base, --retry-cap, --max-age and --timeout must be positive")
	}
	if f.retain < 0 {
		return nil, usageErr("--retain %v: must not be negative (0 keeps everything)", f.retain)
	}
	var vendor *url.URL
	if f.vendorURL != "" {
		u, err := url.Parse(f.vendorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usageErr("--vendor-url %q: expected scheme://host[:port]", f.vendorURL)
		}
		vendor = u
	}
	log, err := f.logger(a.stderr)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(f.state, 0o700); err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	q, err := outbox.OpenBolt(filepath.Join(f.state, "outbox.db"))
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	counters := &send.Counters{}
	sender := send.New(send.Options{
		Concurrency:    f.concurrency,
		Rate:           f.rate,
		VendorURL:      vendor,
		AttemptTimeout: f.timeout,
		Logger:         log,
		Metrics:        counters,
		UserAgent:      "blueprint-engine/" + version,
	})
	w := &send.Worker{
		Queue:  q,
		Sender: sender,
		Policy: send.Policy{MaxAttempts: f.maxAttempts, Base: f.retryBase, Cap: f.retryCap, MaxAge: f.maxAge},
		Integration: func(it *outbox.Item) (*runtime.Integration, bool) {
			return in, it.Integration == name
		},
		Concurrency: f.concurrency,
		Logger:      log,
		Metrics:     counters,
	}
	return &delivery{queue: q, worker: w, counters: counters, log: log}, nil
}

// integrationName names an integration in the outbox: the blueprint and
// the variant (one outbox may serve several).
func integrationName(in *runtime.Integration, ref string) string {
	if isFileRef(ref) {
		if abs, err := filepath.Abs(ref); err == nil {
			ref = abs
		}
		return ref + "/" + in.Variant().Key
	}
	return in.Blueprint().Ref() + "/" + in.Variant().Key
}

// tally counts the final states of a run.
type tally struct {
	delivered, skipped, rejected, dead atomic.Int64
}

// addFinal counts the final states of the items ids name, read from the
// outbox, and returns how many are still pending.
func (t *tally) addFinal(ctx context.Context, q outbox.Store, ids []string) (pending int, err error) {
	for _, id := range ids {
		it, err := q.Get(ctx, id)
		if err != nil {
			return pending, err
		}
		switch it.State {
		case outbox.Delivered:
			t.delivered.Add(1)
		case outbox.Dead:
			t.dead.Add(1)
		case outbox.Skipped:
			t.skipped.Add(1)
		default:
			pending++
		}
	}
	return pending, nil
}

// finish prints the summary line of send and dlq replay and decides the
// exit: 1 when the run failed (runErr, or err counting its requests), or
// when requests are still pending (interrupted).
func (a *app) finish(d *delivery, t *tally, pending int, err, runErr error, interrupted bool, state string) error {
	fmt.Fprintln(a.stdout, t.line())
	switch {
	case runErr != nil:
		return &exitError{code: 1, err: runErr}
	case err != nil:
		return &exitError{code: 1, err: err}
	case pending > 0 || interrupted:
		return &exitError{code: 1, err: fmt.Errorf("interrupted: %d requests are still pending in %s; run the command again to deliver them", pending, state)}
	}
	return nil
}

func (t *tally) line() string {
	return fmt.Sprintf("%d delivered, %d skipped, %d rejected, %d dead-lettered",
		t.delivered.Load(), t.skipped.Load(), t.rejected.Load(), t.dead.Load())
}

func (a *app) sendCmd() *cobra.Command {
	var fl integrationFlags
	var df deliveryFlags
	cmd := &cobra.Command{
		Use:   "send --blueprint KEY[@VERSION]|FILE --config KEY=VALUE ... [--state DIR] [--vendor-url URL] [EVENTS.ndjson|-]",
		Short: "Evaluate events and deliver them through the durable outbox",
		Long: `Evaluate every event of an NDJSON file (or standard input) and deliver the
requests to the vendor through a durable outbox in --state: each request is
written to disk before its first attempt, so a crash (even kill -9) loses
nothing; run send again on the same --state and pending requests are sent.
The same event sent twice (same message_id) is delivered once, as long as
its first request is in the outbox: delivered and skipped requests are kept
for --retain (7 days by default), then purged when a run starts and hourly
while it runs (see 'blueprint outbox').

Retries follow the blueprint's response rules: permanent failures (4xx, a
bad api_key) become dead letters at once; 408, 429, 5xx and network errors
are retried with exponential backoff and jitter (Retry-After honoured)
up to --max-attempts within --max-age, then become dead letters. Inspect
and re-drive them with 'blueprint dlq'.

Progress goes to stderr. The last line on stdout is exactly
"N delivered, N skipped, N rejected, N dead-lettered", counting the requests
of every input line (an event twice in the input is sent once, counted
twice). Memory holds only the requests not final yet (at most --max-pending).
Exit 0 when every event reached one of those final states, 1 otherwise
(interrupted, input unreadable, config refused), 2 on usage errors.
SIGINT/SIGTERM stop reading, enqueue what was read, let requests in flight
finish (10 s at most) and leave the rest in the outbox.`,
		Example: `  # A local fake of Button's API in one terminal:
  blueprint fake-button --listen 127.0.0.1:8787
  # Deliver events to it in another (fast retries for a demo):
  blueprint send --blueprint button --variant retail --config-file examples/button/config.json --state /tmp/bp-state --vendor-url http://127.0.0.1:8787 --retry-base 100ms --retry-cap 1s examples/button/events.ndjson`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			if df.maxPending < 1 {
				return usageErr("--max-pending %d: must be positive", df.maxPending)
			}
			name := integrationName(in, fl.blueprint)
			d, err := a.openDelivery(&df, in, name)
			if err != nil {
				return err
			}
			defer d.queue.Close()
			if df.retain > 0 {
				// Before anything is read, so that whether an old event is
				// sent again does not depend on timing. The worker then
				// purges hourly what ages past --retain during the run
				// (the summary counts requests as they end, so a purge
				// loses nothing).
				n, err := d.queue.Purge(cmd.Context(), time.Now().Add(-df.retain))
				switch {
				case err != nil:
					d.log.Warn("purge of old outbox items failed; delivering anyway", "error", err)
				case n > 0:
					d.log.Info("purged old outbox items", "purged", n, "retain", df.retain)
				}
				d.worker.Retention = df.retain
			}
			input := a.stdin
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return usageErr("%v", err)
				}
				defer f.Close()
				input = f
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var t tally
			var events atomic.Int64
			var enqueueErr, readErr atomic.Pointer[error]
			var inputDone atomic.Bool
			var rejects *rejectLog
			var rejectErr atomic.Pointer[error]
			if df.rejects != "" {
				if rejects, err = openRejectLog(df.rejects); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			// The run's requests, followed to their final states as they
			// end (for the summary, and for backpressure).
			tr := newRunTracker()
			d.worker.Queue = finalWatch{Queue: d.queue, final: tr.final}
			readCtx, stopReading := context.WithCancel(ctx)
			defer stopReading()
			readerDone := make(chan struct{})
			go func() { // the reader: evaluates, and enqueues in batches
				defer close(readerDone)
				defer inputDone.Store(true)
				var batch []*outbox.Item
				last := time.Now()
				flush := func() {
					last = time.Now()
					if len(batch) == 0 {
						return
					}
					tr.wait(readCtx, len(batch), df.maxPending)
					tr.add(batch)
					// Not cancelled: what was read is enqueued, even when
					// the run is interrupted.
					stored, err := d.queue.Enqueue(context.WithoutCancel(ctx), batch)
					if err != nil {
						tr.unadd(batch)
						enqueueErr.CompareAndSwap(nil, &err) // the first error is reported
						batch = nil
						return
					}
					tr.stored(stored)
					batch = nil
				}
				err := readEvents(input, fl.maxEventSize, func(ev []byte, size int) error {
					if readCtx.Err() != nil {
						return readCtx.Err()
					}
					events.Add(1)
					var res runtime.Result
					if ev == nil {
						res = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent,
							Message: fmt.Sprintf("event is %d bytes; the limit is %d", size, fl.maxEventSize)}
					} else {
						res = in.Evaluate(ev)
					}
					var items []*outbox.Item
					if res.Outcome == runtime.Deliver {
						var err error
						if items, err = send.Items(in, name, fl.blueprint, ev, res, time.Now()); err != nil {
							// The outbox keeps events as they are: one holding
							// the integration's own secret is not stored.
							res = runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent, Event: res.Event, Message: err.Error()}
						}
					}
					switch res.Outcome {
					case runtime.Skip:
						t.skipped.Add(1)
						if res.Reason == runtime.ReasonConsentDenied {
							// A consent drop is logged where it is seen (the
							// platform's promise); events the blueprint does
							// not map are the common case, at info.
							d.log.Warn("dropped", "reason", res.Reason, "event", res.Event, "message", res.Message)
						} else {
							d.log.Info("skipped", "reason", res.Reason, "event", res.Event, "message", res.Message)
						}
					case runtime.Reject:
						t.rejected.Add(1)
						d.log.Warn("rejected", "reason", res.Reason, "fields", res.Fields, "event", res.Event, "message", res.Message)
						if rejects != nil {
							if err := rejects.add(in, ev, res); err != nil {
								rejectErr.CompareAndSwap(nil, &err)
							}
						}
					default:
						batch = append(batch, items...)
					}
					if len(batch) >= min(256, df.maxPending) || time.Since(last) > 20*time.Millisecond {
						flush()
					}
					return nil
				})
				if err != nil && readCtx.Err() == nil {
					readErr.Store(&err) // what was read is delivered; the run fails
				}
				flush()
			}()
			stopProgress := a.progress(df.progress, &events, d.counters, &t)
			runErr := d.worker.Run(ctx, inputDone.Load)
			stopProgress()
			// The worker is done (input read and delivered, interrupted, or
			// failed): stop reading, and let the reader enqueue what it has
			// read before the summary is made. A reader blocked on input
			// that never comes (an idle pipe) is not waited for long.
			stopReading()
			select {
			case <-readerDone:
			case <-time.After(readerGrace):
				d.log.Warn("the input is still blocked; stopping without reading the rest")
			}
			if err := enqueueErr.Load(); err != nil && runErr == nil {
				runErr = fmt.Errorf("outbox: %w", *err)
			}
			if err := readErr.Load(); err != nil && runErr == nil {
				runErr = *err
			}
			if rejects != nil {
				// The reader is done, or blocked on input it will not get.
				if err := rejects.close(); err != nil {
					rejectErr.CompareAndSwap(nil, &err)
				}
			}
			if err := rejectErr.Load(); err != nil && runErr == nil {
				runErr = fmt.Errorf("--rejects %s: %w", df.rejects, *err)
			}
			delivered, skipped, dead, pending := tr.counts()
			t.delivered.Add(int64(delivered))
			t.skipped.Add(int64(skipped))
			t.dead.Add(int64(dead))
			return a.finish(d, &t, pending, nil, runErr, !inputDone.Load(), df.state)
		},
	}
	fl.register(cmd)
	df.register(cmd, true)
	return cmd
}

// progress shows events/s, delivered, retrying and dead letters on stderr:
// a bar redrawn in place on a terminal, a line every 5 s otherwise.
func (a *app) progress(mode string, events *atomic.Int64, c *send.Counters, t *tally) (stop func()) {
	isTTY := false
	if f, ok := a.stderr.(*os.File); ok {
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
	wg.Add(1)
	render := func() string {
		n := events.Load()
		rate := float64(n) / max(time.Since(start).Seconds(), 0.001)
		return fmt.Sprintf("events %d (%.0f/s)  delivered %d  retrying %d  dead letters %d  skipped %d  rejected %d",
			n, rate, c.Delivered.Load(), c.Retries.Load(), c.Dead.Load(), t.skipped.Load()+c.Skipped.Load(), t.rejected.Load())
	}
	go func() {
		defer wg.Done()
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
	}()
	return func() { close(done); wg.Wait() }
}

// itemJSON shows an outbox item with its event as JSON (an Item's Event
// is bytes, which encoding/json would print as base64).
type itemJSON struct {
	*outbox.Item
	Event json.RawMessage `json:"event,omitempty"`
}

func viewItem(it *outbox.Item) itemJSON {
	v := itemJSON{Item: it}
	switch {
	case len(it.Event) == 0:
	case json.Valid(it.Event):
		v.Event = json.RawMessage(it.Event)
	default:
		v.Event, _ = json.Marshal(string(it.Event))
	}
	return v
}

// openOutbox opens the outbox in state, which must exist.
func openOutbox(state string) (*outbox.Bolt, error) {
	p, err := outboxPath(state)
	if err != nil {
		return nil, err
	}
	q, err := outbox.OpenBolt(p)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return q, nil
}

// outboxPath is the path of the outbox in state, which must exist.
func outboxPath(state string) (string, error) {
	p := filepath.Join(state, "outbox.db")
	if _, err := os.Stat(p); err != nil {
		return "", &exitError{code: 1, err: fmt.Errorf("no outbox in %s", state)}
	}
	return p, nil
}

func (a *app) dlqCmd() *cobra.Command {
	var state, format string
	var limit int
	cmd := &cobra.Command{
		Use:   "dlq list|show ID|replay [--all | ID...]",
		Short: "Inspect and re-drive dead letters in the outbox",
		Long: `Dead letters are requests that failed permanently (a 4xx such as a bad
api_key) or ran out of attempts. They stay in the outbox in --state, with the
event, the attempts, the last status and error (never a secret).`,
		Example: `  blueprint dlq list --state /tmp/bp-state
  blueprint dlq replay --all --state /tmp/bp-state --blueprint button --variant retail --config-file examples/button/config.json --vendor-url http://127.0.0.1:8787`,
	}
	cmd.PersistentFlags().StringVar(&state, "state", defaultStateDir(), "`DIR` holding the durable outbox")
	open := func() (*outbox.Bolt, error) { return openOutbox(state) }
	list := &cobra.Command{
		Use:     "list",
		Short:   "List dead letters, oldest first",
		Example: `  blueprint dlq list --state /tmp/bp-state --format json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			q, err := open()
			if err != nil {
				return err
			}
			defer q.Close()
			ctx, skipped := countSkips(cmd.Context())
			items, _, err := q.List(ctx, outbox.Dead, "", limit)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			reportSkipped(a.stderr, skipped)
			if format == "json" {
				views := make([]itemJSON, len(items))
				for i, it := range items {
					views[i] = viewItem(it)
				}
				return writeJSON(a, views)
			}
			if len(items) == 0 {
				fmt.Fprintln(a.stdout, "no dead letters")
				return nil
			}
			for _, it := range items {
				fmt.Fprintf(a.stdout, "%s  %s  %s  attempts %d  status %d  %s\n", it.ID, it.Integration, it.VendorEvent, it.Attempts, it.LastStatus, it.LastError)
			}
			return nil
		},
	}
	list.Flags().StringVar(&format, "format", "text", "output `format`: text or json")
	list.Flags().IntVar(&limit, "limit", 1000, "most dead letters listed")
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one outbox item: event, attempts, last status and error",
		Example: `  blueprint dlq show 3f1c0d9e2b7a4c55a0e1d2c3b4a59687 --state /tmp/bp-state`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := open()
			if err != nil {
				return err
			}
			defer q.Close()
			it, err := q.Get(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %v", args[0], err)}
			}
			return writeJSON(a, viewItem(it))
		},
	}
	var fl integrationFlags
	var df deliveryFlags
	var all bool
	replay := &cobra.Command{
		Use:   "replay [--all | ID...] --blueprint KEY --config KEY=VALUE ...",
		Short: "Re-drive dead letters with the current config, and deliver them",
		Long: `Turn dead letters back into pending requests (attempts reset) and deliver
them now with the given blueprint and config: after fixing a config (a
corrected api_key, say), replayed requests are rebuilt from their events and
sent. Only the dead letters of the integration given (--blueprint and
--variant, as send named them) are replayed; others are left alone, and
an ID of another is a usage error. The last line is "N delivered, N
skipped, N rejected, N dead-lettered".`,
		Example: `  blueprint dlq replay --all --state /tmp/bp-state --blueprint button --variant retail --config-file examples/button/config.json --vendor-url http://127.0.0.1:8787`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageErr("give --all or the IDs to replay (not both)")
			}
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			df.state = state
			name := integrationName(in, fl.blueprint)
			d, err := a.openDelivery(&df, in, name)
			if err != nil {
				return err
			}
			defer d.queue.Close()
			ids := slices.Compact(slices.Sorted(slices.Values(args))) // each counted once
			if all {
				ids = nil
				for cursor := ""; ; {
					page, next, err := d.queue.List(cmd.Context(), outbox.Dead, cursor, 1000)
					if err != nil {
						return &exitError{code: 1, err: err}
					}
					for _, it := range page {
						ids = append(ids, it.ID)
					}
					if next == "" {
						break
					}
					cursor = next
				}
			}
			// Only this integration's dead letters (blueprint and variant):
			// the worker would leave another's pending, out of the DLQ.
			mine, others := ids[:0:0], map[string]int{}
			for _, id := range ids {
				it, err := d.queue.Get(cmd.Context(), id)
				if err != nil {
					if !all {
						return usageErr("%v", err)
					}
					continue
				}
				if it.Integration != name {
					if !all {
						return usageErr("%s is a dead letter of %s (blueprint %s, variant %s), not of %s: replay it with that --blueprint and --variant", id, it.Integration, it.Blueprint, it.Variant, name)
					}
					others[it.Integration]++
					continue
				}
				mine = append(mine, id)
			}
			for _, other := range slices.Sorted(maps.Keys(others)) {
				fmt.Fprintf(a.stderr, "%d dead letters of %s left alone: replay them with its --blueprint and --variant\n", others[other], other)
			}
			ids = mine
			if len(ids) == 0 {
				ids = []string{} // none: Replay(nil) would mean all
			}
			n, err := d.queue.Replay(cmd.Context(), ids, time.Now())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(a.stderr, "replaying %d dead letters\n", n)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			runErr := d.worker.Run(ctx, func() bool { return true })
			var t tally
			pending, err := t.addFinal(context.WithoutCancel(ctx), d.queue, ids)
			return a.finish(d, &t, pending, err, runErr, false, state)
		},
	}
	fl.register(replay)
	df.register(replay, false)
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	cmd.AddCommand(list, show, replay)
	return cmd
}
