package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime"
)

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

EVENT.json holds one JSON value (pretty-printed or not); with - or no
argument, standard input is read. Either may be NDJSON: one event per line,
streamed, one result per event, in input order (events are evaluated on
every core). The input is one value only when the whole of it parses as
exactly one; anything else is read line by line, so a broken line is one
invalid_event result and never hides the lines after it. But a file (of at
most --max-event-size) that is empty, or is not one value and has no line
that is a JSON value on its own, is one broken event: one invalid_event.
A UTF-8 byte order mark at the start is ignored. A read error of the input ends the run with
exit 1 after the results of the events read before it.

Exit 0 when the events were evaluated (whatever the decisions), 1 when the
config is refused (reject invalid_config, naming the keys), the blueprint
does not compile or reading the input or writing the output fails, 2 on
usage errors (an event file that cannot be opened too).`,
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
			a.configResult = format
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			// An event file that cannot be opened is a usage error, as it is
			// for send, test and validate.
			input, done, err := a.openInput(args)
			if err != nil {
				return err
			}
			defer done()
			if f, ok := input.(*os.File); ok && len(args) == 1 && args[0] != "-" {
				text, whole, err := brokenValueFile(f, fl.maxEventSize)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if whole {
					// The file is one broken value (a truncated or invalid
					// pretty-printed event): one result, invalid_event.
					_, err := a.stdout.Write(appendResult(nil, in.Evaluate(text), format == "json"))
					if err != nil {
						return &exitError{code: 1, err: err}
					}
					return nil
				}
				if text != nil {
					input = bytes.NewReader(text)
				}
			}
			if err := evalStream(in, input, a.stdout, fl.maxEventSize, format == "json"); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	fl.register(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: text, or json (one line per event)")
	return cmd
}

// brokenValueFile reads the event file f when it is no larger than limit
// and tells whether it is one broken value: empty, or multi-line, not one
// JSON value, and no line of it a JSON value on its own (so not NDJSON with
// a broken line, whose valid lines must each be evaluated). DESIGN §5: a file holds
// one JSON value, pretty-printed or not; a broken one is one invalid_event,
// not one per line. text is what was read (nil when f was left unread).
func brokenValueFile(f *os.File, limit int) (text []byte, whole bool, err error) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > int64(limit) {
		return nil, false, nil
	}
	text, err = io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading events: %w", err)
	}
	if len(text) > limit {
		return text, false, nil
	}
	t := bytes.TrimSpace(bytes.TrimPrefix(text, []byte("\xEF\xBB\xBF")))
	if len(t) == 0 {
		return t, true, nil // no value at all: one event, invalid_event
	}
	if !bytes.Contains(t, []byte("\n")) || json.Valid(t) {
		return text, false, nil
	}
	for _, l := range bytes.Split(t, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && json.Valid(l) {
			return text, false, nil
		}
	}
	return t, true, nil
}

// appendResult appends one result: a line of JSON, or its text form.
func appendResult(dst []byte, res runtime.Result, asJSON bool) []byte {
	if asJSON {
		return append(res.AppendJSON(dst), '\n')
	}
	return append(append(dst, res.String()...), '\n')
}
