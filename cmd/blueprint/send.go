package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

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

The input is NDJSON, one event per line, or one JSON value (pretty-printed
or not) when the whole input parses as exactly one; anything else is read
line by line, so a broken line is one rejected event and never hides the
lines after it; but input that is not one value and has no line that is
a JSON value on its own is one broken (pretty-printed) event, one rejected
invalid_event. A UTF-8 byte order mark at the start is ignored.

Retries follow the blueprint's response rules: permanent failures (4xx, a
bad api_key) become dead letters at once; 408, 429, 5xx and network errors
are retried with exponential backoff and jitter (Retry-After honoured)
up to --max-attempts within --max-age, then become dead letters. Inspect
and re-drive them with 'blueprint dlq'.

Progress goes to stderr. The last line on stdout is exactly
"N delivered, N skipped, N rejected, N dead-lettered", counting what this
run did with the requests of every input line (an event twice in the input
is sent once, counted twice). Requests already final in the outbox from an
earlier run (the same events sent again) are not sent again and not counted
there: a line before it says so,
"already final from an earlier run (not sent again): N delivered, N skipped, N dead-lettered".
Memory holds only the requests not final yet (at most --max-pending).
Exit 0 when every event reached one of those final states (a dead letter
is final: exit 0, and 'blueprint dlq replay' re-drives it), 1 otherwise
(interrupted with requests still pending, input unreadable, config
refused), 2 on usage errors.
SIGINT/SIGTERM stop reading, enqueue what was read, let requests in flight
finish (10 s at most) and leave the rest in the outbox.`,
		Example: `  # A local fake of Button's API in one terminal:
  blueprint fake-button --listen 127.0.0.1:8787
  # Deliver events to it in another (fast retries for a demo):
  blueprint send --blueprint button --variant retail --config-file examples/button/config.json --state /tmp/bp-state --vendor-url http://127.0.0.1:8787 --retry-base 100ms --retry-cap 1s examples/button/events.ndjson`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := df.check(cmd); err != nil {
				return err
			}
			log, err := df.logger(a.stderr)
			if err != nil {
				return err
			}
			fl.allowPrivate = df.allowPriv
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			input, closeInput, err := a.openInput(args)
			if err != nil {
				return err
			}
			defer closeInput()
			// A broken pretty-printed event is one rejected event, as in
			// eval, not one per line; its line breaks are read as spaces,
			// white space to JSON, so it reaches the reader as one line.
			text, whole, rest, err := brokenValueStream(input, fl.maxEventSize)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if whole {
				one := bytes.Clone(text) // byte by byte: invalid UTF-8 stays as is
				for i, c := range one {
					if c == '\n' || c == '\r' {
						one[i] = ' '
					}
				}
				input = bytes.NewReader(one)
			} else {
				input = rest
			}
			q, err := df.openQueue()
			if err != nil {
				return err
			}
			defer q.Close()
			counters := &send.Counters{}
			opts := df.options(log, counters, fl.maxEventSize)
			var rejects *delivery.RejectLog
			if df.rejects != "" {
				if rejects, err = delivery.OpenRejectLog(df.rejects); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("--rejects: %w", err)}
				}
				opts.Rejects = rejects
			}
			b := binding(in, fl.blueprint)
			// Saved (the config sealed) so that 'dlq replay' needs no
			// --blueprint or --config.
			sec := bindingSecrets{Config: fl.parsed, VendorURL: df.vendorURL, AllowPrivate: df.allowPriv, MaxEventSize: fl.maxEventSize}
			if err := saveBinding(df.state, a.catalogDir, b.Name, savedRef(in, fl.blueprint), in.Variant(), sec); err != nil {
				fmt.Fprintf(a.stderr, "blueprint: warning: the config was not saved in %s (%v): 'dlq replay' will need --blueprint and --config\n", df.state, err)
			}
			p, err := delivery.New(q, opts, b)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stopProgress := a.progress(df.progress, p, counters)
			sum, runErr := p.Run(ctx, input)
			stopProgress()
			if rejects != nil {
				if err := rejects.Close(); err != nil && runErr == nil {
					runErr = err
				}
			}
			if runErr != nil && df.rejects != "" && errors.Is(runErr, delivery.ErrRejects) {
				runErr = fmt.Errorf("--rejects %s: %w", df.rejects, runErr)
			}
			return a.finish(sum, runErr, df.state)
		},
	}
	fl.register(cmd)
	df.register(cmd, true)
	return cmd
}

// finish prints the summary of send and dlq replay, the requests already
// final from an earlier run on a line of their own before it (the last
// line stays exactly "N delivered, N skipped, N rejected, N
// dead-lettered"), and decides the exit: 1 when the run failed, or when
// requests are still pending (interrupted).
func (a *app) finish(s delivery.Summary, runErr error, state string) error {
	if s.Already() > 0 {
		fmt.Fprintf(a.stdout, "already final from an earlier run (not sent again): %d delivered, %d skipped, %d dead-lettered\n",
			s.AlreadyDelivered, s.AlreadySkipped, s.AlreadyDead)
	}
	fmt.Fprintln(a.stdout, s.String())
	switch {
	case runErr != nil:
		return &exitError{code: 1, err: runErr}
	case s.Pending > 0 || s.Interrupted:
		return &exitError{code: 1, err: fmt.Errorf("interrupted: %d requests are still pending in %s; run the command again to deliver them", s.Pending, state)}
	}
	return nil
}
