package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/tidwall/gjson"

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
		for _, k := range ce.Keys {
			fmt.Fprintf(a.stderr, "  %s %s\n", k, ce.Problems[k])
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
result per event) or a single pretty-printed event.

Exit 0 when the events were evaluated (whatever the decisions), 1 when the
config is refused (reject invalid_config, naming the keys) or the blueprint
does not compile, 2 on usage errors.`,
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
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			out := bufio.NewWriterSize(a.stdout, 64<<10)
			defer out.Flush()
			n := 0
			var line []byte
			emit := func(res runtime.Result) error {
				if format == "json" {
					line = append(res.AppendJSON(line[:0]), '\n')
					_, err := out.Write(line)
					return err
				}
				if n > 0 {
					out.WriteByte('\n')
				}
				n++
				out.WriteString(res.String())
				out.WriteByte('\n')
				return nil
			}
			if len(args) == 1 && args[0] != "-" {
				b, err := os.ReadFile(args[0])
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				return emit(in.Evaluate(bytes.TrimSpace(b)))
			}
			return readEvents(a.stdin, fl.maxEventSize, func(ev []byte, size int) error {
				if ev == nil {
					return emit(runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidEvent,
						Message: fmt.Sprintf("event is %d bytes; the limit is %d", size, fl.maxEventSize)})
				}
				return emit(in.Evaluate(ev))
			})
		},
	}
	fl.register(cmd)
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: text, or json (one line per event)")
	return cmd
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
		line, size, tooLong = readLine(br, line[:0], limit)
		if size == 0 && line == nil {
			return nil // EOF
		}
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 && !tooLong {
			continue
		}
		if first && !tooLong && !gjson.ValidBytes(trimmed) {
			// Not NDJSON: the whole input is one event.
			rest, err := io.ReadAll(io.LimitReader(br, int64(limit)+1))
			if err != nil {
				return err
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
// limit+1 bytes. It returns nil, 0 at end of input.
func readLine(br *bufio.Reader, buf []byte, limit int) (line []byte, size int, tooLong bool) {
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
			return bytes.TrimSuffix(buf, []byte("\n")), size, tooLong
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default: // EOF or a read error: the last line
			if size == 0 {
				return nil, 0, false
			}
			return buf, size, tooLong
		}
	}
}
