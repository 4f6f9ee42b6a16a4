package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/internal/fakebutton"
)

// fakeButtonDefaultListen is the address fake-button listens on by default.
const fakeButtonDefaultListen = "127.0.0.1:8787"

func (a *app) fakeButtonCmd() *cobra.Command {
	var (
		listen  string
		opts    fakebutton.Options
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "fake-button [--listen ADDR] [--api-key KEY] [--error-rate F] [--throttle-rate F] [--retry-after D] [--drop-before-rate F] [--drop-after-rate F] [--latency D] [--seed N]",
		Short: "Serve a fake of Button's API, with fault injection, for demos and tests",
		Long: `Serve a fake of Button's API on ADDR: the two requests the Button blueprint
sends, answered as Button does.

  POST /v1/order        Order API create. HTTP Basic auth with --api-key as
                        user name and an empty password, else 401. A JSON
                        object with order_id, total (a non-negative integer,
                        minor units), currency (three upper-case letters) and
                        purchase_date (RFC 3339), else 400 naming the fields.
                        409 "order already exists" for an order_id already
                        received. Otherwise 200 with the created order.
  POST /v1/app/events   Activity event, no auth. A JSON object with
                        application_id (app-...), name and an RFC 3339 time,
                        else 400. Otherwise 200.

Other paths are 404, other methods 405. Errors are Button's error JSON and
never hold the API key. The API key defaults to sk-test-123.

Faults are drawn per request to those two endpoints, from a random source
seeded by --seed (the same requests in the same order meet the same faults).
The four rates are probabilities between 0 and 1 and add up to at most 1:
  --error-rate        answer 500, 502 or 503; nothing recorded
  --throttle-rate     answer 429 with Retry-After (--retry-after, in whole
                      seconds rounded up); nothing recorded
  --drop-before-rate  close the connection without answering; nothing recorded
  --drop-after-rate   handle the request (record the order), then close the
                      connection without answering: a client that retries
                      meets 409
--latency is slept before each answer.

On start, one line goes to standard output: "listening on http://HOST:PORT"
(--listen 127.0.0.1:0 picks a free port; read the line to learn it). The fake
serves until SIGINT or SIGTERM, then prints a summary of what it received and
answered (orders created, events, 409s, 401s, 400s, injected faults) and
exits 0. --verbose logs one line per request to standard error.

Exit 0 after a signal, 1 when ADDR cannot be listened on, 2 on usage errors.`,
		Example: `  blueprint fake-button
  blueprint fake-button --listen 127.0.0.1:0 --api-key sk-test-123 --seed 7
  blueprint fake-button --error-rate 0.05 --throttle-rate 0.05 --retry-after 2s --drop-after-rate 0.02 --latency 20ms -v
  curl -s -u sk-test-123: -H 'Content-Type: application/json' \
    -d '{"order_id":"o-1","total":2550,"currency":"USD","purchase_date":"2026-11-24T10:15:30Z"}' \
    http://127.0.0.1:8787/v1/order`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFakeButtonFlags(listen, &opts); err != nil {
				return err
			}
			if verbose {
				var mu sync.Mutex
				opts.Logf = func(format string, args ...any) {
					mu.Lock()
					defer mu.Unlock()
					fmt.Fprintf(a.stderr, "fake-button: "+format+"\n", args...)
				}
			}
			srv := fakebutton.New(opts)
			url, err := srv.Start(listen)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(a.stdout, "listening on %s\n", url)
			if f, ok := a.stdout.(interface{ Flush() error }); ok {
				f.Flush()
			}
			<-ctx.Done()
			stop()
			srv.Close()
			fmt.Fprintln(a.stdout, strings.TrimRight(srv.Summary(), "\n"))
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v", err)
	})
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", fakeButtonDefaultListen, "listen on `ADDR` (host:port; port 0 picks a free port)")
	fl.StringVar(&opts.APIKey, "api-key", fakebutton.DefaultAPIKey, "the API `KEY` accepted as Basic auth user name on /v1/order")
	fl.Float64Var(&opts.ErrorRate, "error-rate", 0, "probability `F` of answering 500, 502 or 503")
	fl.Float64Var(&opts.ThrottleRate, "throttle-rate", 0, "probability `F` of answering 429 with Retry-After")
	fl.DurationVar(&opts.RetryAfter, "retry-after", time.Second, "`DELAY` advertised in Retry-After on a 429 (whole seconds, rounded up)")
	fl.Float64Var(&opts.DropBeforeRate, "drop-before-rate", 0, "probability `F` of closing the connection without answering or recording")
	fl.Float64Var(&opts.DropAfterRate, "drop-after-rate", 0, "probability `F` of recording the request, then closing the connection without answering")
	fl.DurationVar(&opts.Latency, "latency", 0, "`DELAY` before each answer")
	fl.Int64Var(&opts.Seed, "seed", 1, "seed `N` of the fault draws and generated ids")
	fl.BoolVarP(&verbose, "verbose", "v", false, "log each request to standard error")
	return cmd
}

// checkFakeButtonFlags refuses bad flags with a usage error (exit 2). It
// never echoes the API key.
func checkFakeButtonFlags(listen string, opts *fakebutton.Options) error {
	if _, port, err := net.SplitHostPort(listen); err != nil || port == "" {
		return usageErr("--listen %q: expected HOST:PORT, such as %s or 127.0.0.1:0", listen, fakeButtonDefaultListen)
	}
	if opts.APIKey == "" {
		return usageErr("--api-key must not be empty")
	}
	if strings.ContainsAny(opts.APIKey, ":\r\n") {
		return usageErr("--api-key must not contain ':' or a line break (it is a Basic auth user name)")
	}
	if err := opts.Validate(); err != nil {
		// Validate names the option as its flag is named.
		var oe *fakebutton.OptionError
		if errors.As(err, &oe) && oe.Option != "" {
			return usageErr("--%s %v: %s", oe.Option, oe.Value, oe.Problem)
		}
		return usageErr("%v", err)
	}
	return nil
}
