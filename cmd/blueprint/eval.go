package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
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
invalid_event result and never hides the lines after it. But input (of at
most --max-event-size) that is not one value and has no line that is a JSON
value on its own is one broken event, a broken pretty-printed one: one
invalid_event, on standard input as in a file. An empty file is one broken
event too; empty standard input is no event. Standard input is read ahead
(at most --max-event-size) only when its first line opens an object or
array it does not close, so an NDJSON stream's results come as it comes.
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
			// one evaluates a whole input read as one broken event.
			one := func(text []byte) error {
				if _, err := a.stdout.Write(appendResult(nil, in.Evaluate(text), format == "json")); err != nil {
					return &exitError{code: 1, err: err}
				}
				return nil
			}
			if f, ok := input.(*os.File); ok && len(args) == 1 && args[0] != "-" {
				text, whole, err := brokenValueFile(f, fl.maxEventSize)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if whole {
					// The file is one broken value (a truncated or invalid
					// pretty-printed event): one result, invalid_event.
					return one(text)
				}
				if text != nil {
					input = bytes.NewReader(text)
				}
			} else {
				// Standard input (or a pipe named on the command line) may be
				// NDJSON or one pretty-printed value; a broken pretty-printed
				// event is one invalid_event, as it is in a file.
				text, whole, rest, err := brokenValueStream(input, fl.maxEventSize)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if whole {
					return one(text)
				}
				input = rest
			}
			if err := evalStream(in, input, a.stdout, fl.maxEventSize, format == "json"); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	fl.register(cmd)
	cmd.Flags().BoolVar(&fl.allowPrivate, "allow-private-addresses", false, "accept a url config value that is a private, loopback or link-local IP literal, as send, dlq replay and serve do with this flag (eval sends nothing)")
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
	t := trimEvent(text)
	if len(t) == 0 {
		return t, true, nil // no value at all: one event, invalid_event
	}
	if brokenValue(t) {
		return t, true, nil
	}
	return text, false, nil
}

// trimEvent is b without a UTF-8 byte order mark at its start and white
// space around it, as the reader takes an input.
func trimEvent(b []byte) []byte { return bytes.TrimSpace(bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))) }

// brokenValue tells whether t (trimmed, not empty) is one broken value:
// multi-line, not one JSON value, and no line of it a JSON value on its
// own (so not NDJSON with a broken line, whose valid lines must each be
// evaluated).
func brokenValue(t []byte) bool {
	if !bytes.Contains(t, []byte("\n")) || json.Valid(t) {
		return false
	}
	for _, l := range bytes.Split(t, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 && json.Valid(l) {
			return false
		}
	}
	return true
}

// brokenValueStream is brokenValueFile for standard input, which has no
// size to check first and may be a stream read as it comes: it reads ahead
// only when the first non-blank line opens an object or array that it does
// not close (the start of a pretty-printed value, or a truncated first
// line), and then at most limit bytes. Input that is empty or blank is no
// event (NDJSON of none). rest reads the whole input again, from its start.
func brokenValueStream(r io.Reader, limit int) (text []byte, whole bool, rest io.Reader, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for { // up to the first non-blank line
		line, err := br.ReadSlice('\n')
		buf = append(buf, line...)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if err != io.EOF {
				return nil, false, nil, fmt.Errorf("reading events: %w", err)
			}
			break
		}
		if len(buf) > limit {
			return nil, false, io.MultiReader(bytes.NewReader(buf), br), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(trimEvent(buf)) > 0 {
			break
		}
	}
	first := trimEvent(buf)
	if len(first) == 0 || first[0] != '{' && first[0] != '[' || json.Valid(first) {
		return nil, false, io.MultiReader(bytes.NewReader(buf), br), nil
	}
	more, err := io.ReadAll(io.LimitReader(br, int64(limit-len(buf))+1))
	buf = append(buf, more...)
	if err != nil {
		return nil, false, nil, fmt.Errorf("reading events: %w", err)
	}
	if len(buf) > limit {
		return nil, false, io.MultiReader(bytes.NewReader(buf), br), nil
	}
	if t := trimEvent(buf); brokenValue(t) {
		return t, true, nil, nil
	}
	return nil, false, bytes.NewReader(buf), nil
}

// appendResult appends one result: a line of JSON, or its text form.
func appendResult(dst []byte, res runtime.Result, asJSON bool) []byte {
	if asJSON {
		return append(res.AppendJSON(dst), '\n')
	}
	return append(append(dst, res.String()...), '\n')
}
