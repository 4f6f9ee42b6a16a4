package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
	"github.com/blueprint-engine/blueprint/runtime/send"
)

// integrationFlags are the flags that bind a blueprint to a config.
type integrationFlags struct {
	blueprint    string
	variant      string
	config       []string
	configFile   string
	maxEventSize int
	// allowPrivate is set from --allow-private-addresses by the commands
	// that deliver: a url config value may then be a private IP literal.
	allowPrivate bool
	// parsed is the config bind read from --config-file and --config.
	parsed map[string]any
}

// The ranges of the numeric flags: a value outside is a usage error that
// names the flag and its range (a huge --max-event-size once overflowed
// into rejecting every event; 0 or a negative one was taken).
const (
	maxEventSizeMax = 1 << 30 // 1 GiB: an NDJSON line is held in memory
	concurrencyMax  = 1024
	maxAttemptsMax  = 1000
	maxPendingMax   = 10_000_000
	rateMax         = 1_000_000
	listLimitMax    = 1_000_000
	retryBaseMax    = 24 * time.Hour
	retryCapMax     = 7 * 24 * time.Hour
	maxAgeMax       = 30 * 24 * time.Hour
	timeoutMax      = time.Hour
	retainMax       = 10 * 365 * 24 * time.Hour
	durationMin     = time.Millisecond
)

func (f *integrationFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.blueprint, "blueprint", "", "catalog `KEY[@VERSION]`, or a blueprint FILE (an overlay, say)")
	cmd.Flags().StringVar(&f.variant, "variant", "default", "`VARIANT` of the blueprint")
	cmd.Flags().StringArrayVar(&f.config, "config", nil, "config value `KEY=VALUE` (repeatable; values are never printed)")
	cmd.Flags().StringVar(&f.configFile, "config-file", "", "config `FILE` (JSON or YAML mapping); --config values override it")
	cmd.Flags().IntVar(&f.maxEventSize, "max-event-size", runtime.DefaultMaxEventSize, fmt.Sprintf("largest event accepted, in `BYTES` (1 to %d)", maxEventSizeMax))
}

// check checks the numeric flags' ranges.
func (f *integrationFlags) check() error {
	return intIn("max-event-size", f.maxEventSize, 1, maxEventSizeMax)
}

// bind compiles the blueprint and checks the config. A refused config is
// printed (never its secret values) and exits 1.
func (a *app) bind(f *integrationFlags) (*runtime.Integration, error) {
	if f.blueprint == "" {
		return nil, usageErr("--blueprint is required")
	}
	if err := f.check(); err != nil {
		return nil, err
	}
	cfg, err := parseConfig(f.config, f.configFile)
	if err != nil {
		return nil, err
	}
	f.parsed = cfg
	return a.bindConfig(f.blueprint, f.variant, cfg, f.maxEventSize, f.allowPrivate)
}

// bindConfig is bind for a blueprint, a variant and a config given;
// allowPrivate lets a url config value be a private IP literal (set from
// --allow-private-addresses by the commands that deliver).
func (a *app) bindConfig(ref, variant string, cfg map[string]any, maxEventSize int, allowPrivate bool) (*runtime.Integration, error) {
	bp, err := a.loadBlueprint(ref)
	if err != nil {
		return nil, err
	}
	in, err := runtime.Bind(bp, variant, cfg, runtime.WithMaxEventSize(maxEventSize), runtime.WithAllowPrivateAddresses(allowPrivate))
	var ce *runtime.ConfigError
	switch {
	case errors.As(err, &ce):
		fmt.Fprintf(a.stderr, "config refused: reject invalid_config %v\n", ce.Keys)
		var msgs []string
		for _, k := range ce.Keys {
			fmt.Fprintf(a.stderr, "  %s %s\n", k, ce.Problems[k])
			msgs = append(msgs, k+" "+ce.Problems[k])
		}
		if a.configResult != "" {
			res := runtime.Result{Outcome: runtime.Reject, Reason: runtime.ReasonInvalidConfig, Fields: ce.Keys, Message: strings.Join(msgs, "; ")}
			a.stdout.Write(appendResult(nil, res, a.configResult == "json"))
		}
		return nil, errFailed
	case errors.Is(err, runtime.ErrUnknownVariant):
		return nil, usageErr("%v", err)
	case err != nil:
		return nil, &exitError{code: 1, err: err}
	}
	return in, nil
}

// binding names a bound integration in the outbox: the blueprint and the
// variant (one outbox may serve several), a file by its absolute path.
func binding(in *runtime.Integration, ref string) delivery.Binding {
	name := in.Blueprint().Ref()
	if isFileRef(ref) {
		name = ref
		if abs, err := filepath.Abs(ref); err == nil {
			name = abs
		}
	}
	return delivery.Binding{Name: name + "/" + in.Variant(), Ref: ref, Integration: in}
}

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
	allowPriv   bool
}

// defaultRetention is how long send keeps delivered and skipped requests.
const defaultRetention = 7 * 24 * time.Hour

func (f *deliveryFlags) register(cmd *cobra.Command, withState bool) {
	if withState {
		cmd.Flags().StringVar(&f.state, "state", defaultStateDir(), "`DIR` holding the durable outbox (outbox.db)")
	}
	cmd.Flags().StringVar(&f.vendorURL, "vendor-url", "", "send every request to this scheme://host:port instead of the vendor's, keeping path and query (sandboxes, tests)")
	cmd.Flags().BoolVar(&f.allowPriv, "allow-private-addresses", false, "let requests reach private, loopback and link-local addresses (internal receivers); by default every connection's address is checked after DNS and such a request fails")
	cmd.Flags().IntVar(&f.concurrency, "concurrency", 16, fmt.Sprintf("most requests in flight per host (1 to %d)", concurrencyMax))
	cmd.Flags().IntVar(&f.maxAttempts, "max-attempts", send.DefaultPolicy.MaxAttempts, fmt.Sprintf("most delivery attempts per request before it becomes a dead letter (1 to %d)", maxAttemptsMax))
	cmd.Flags().DurationVar(&f.retryBase, "retry-base", send.DefaultPolicy.Base, "first retry backoff (times 4 per attempt, each up to 20 % shorter at random; 1ms to "+fmtDur(retryBaseMax)+")")
	cmd.Flags().DurationVar(&f.retryCap, "retry-cap", send.DefaultPolicy.Cap, "longest backoff between attempts (1ms to "+fmtDur(retryCapMax)+")")
	cmd.Flags().DurationVar(&f.maxAge, "max-age", send.DefaultPolicy.MaxAge, "the retry window: no attempt later than this after the first (a longer wait is shortened to end there; 1ms to "+fmtDur(maxAgeMax)+")")
	cmd.Flags().Float64Var(&f.rate, "rate", 0, fmt.Sprintf("most requests per second for the integration (0: no limit; a 429 halves it; 0 to %d)", rateMax))
	cmd.Flags().DurationVar(&f.timeout, "timeout", 60*time.Second, "longest single attempt (1ms to "+fmtDur(timeoutMax)+")")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "warn", "log `LEVEL` on stderr: debug, info (every attempt), warn, error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	cmd.Flags().StringVar(&f.progress, "progress", "auto", "progress on stderr: auto (a bar on a terminal, lines otherwise), bar, lines, none")
	if withState {
		cmd.Flags().StringVar(&f.rejects, "rejects", "", "append every rejected event to `FILE` (NDJSON: error, details, fields, integration_id, original_event, secrets redacted), as the platform's dlq-events")
		cmd.Flags().IntVar(&f.maxPending, "max-pending", delivery.DefaultMaxPending, fmt.Sprintf("most requests of this run waiting in the outbox: reading the input waits beyond it, so a large input is not copied into the outbox ahead of delivery (1 to %d)", maxPendingMax))
		cmd.Flags().DurationVar(&f.retain, "retain", defaultRetention, "keep delivered and skipped requests this long (the same event sent again within it is not sent twice), when a run starts and hourly; 0 keeps them forever (at most "+fmtDur(retainMax)+")")
	}
}

// check checks the flags' ranges and formats, before anything is opened.
func (f *deliveryFlags) check(cmd *cobra.Command) error {
	errs := []error{
		intIn("concurrency", f.concurrency, 1, concurrencyMax),
		intIn("max-attempts", f.maxAttempts, 1, maxAttemptsMax),
		durIn("retry-base", f.retryBase, durationMin, retryBaseMax),
		durIn("retry-cap", f.retryCap, durationMin, retryCapMax),
		durIn("max-age", f.maxAge, durationMin, maxAgeMax),
		durIn("timeout", f.timeout, durationMin, timeoutMax),
	}
	if f.rate < 0 || f.rate > rateMax || math.IsNaN(f.rate) {
		errs = append(errs, usageErr("--rate %s: out of range, must be 0 to %d", strconv.FormatFloat(f.rate, 'f', -1, 64), rateMax))
	}
	if cmd.Flags().Lookup("max-pending") != nil {
		errs = append(errs, intIn("max-pending", f.maxPending, 1, maxPendingMax), durIn("retain", f.retain, 0, retainMax))
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	switch f.progress {
	case "auto", "bar", "lines", "none":
	default:
		return usageErr("--progress %q: must be auto, bar, lines or none", f.progress)
	}
	if f.vendorURL != "" {
		u, err := url.Parse(f.vendorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usageErr("--vendor-url %q: expected scheme://host[:port]", f.vendorURL)
		}
	}
	return nil
}

func intIn(name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return usageErr("--%s %d: out of range, must be %d to %d", name, v, lo, hi)
	}
	return nil
}

func durIn(name string, v, lo, hi time.Duration) error {
	if v < lo || v > hi {
		return usageErr("--%s %v: out of range, must be %s to %s", name, v, fmtDur(lo), fmtDur(hi))
	}
	return nil
}

// fmtDur writes whole hours and minutes as 24h and 10m, not 24h0m0s.
func fmtDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

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

// options are the pipeline's options from the flags.
func (f *deliveryFlags) options(log *slog.Logger, metrics send.Metrics, maxEventSize int) delivery.Options {
	var vendor *url.URL
	if f.vendorURL != "" {
		vendor, _ = url.Parse(f.vendorURL) // checked
	}
	return delivery.Options{
		Sender:       send.Options{Rate: f.rate, VendorURL: vendor, AllowPrivateAddresses: f.allowPriv, AttemptTimeout: f.timeout, UserAgent: "blueprint-engine/" + version},
		Policy:       send.Policy{MaxAttempts: f.maxAttempts, Base: f.retryBase, Cap: f.retryCap, MaxAge: f.maxAge},
		Concurrency:  f.concurrency,
		MaxPending:   f.maxPending,
		MaxEventSize: maxEventSize,
		Retention:    f.retain,
		Logger:       log,
		Metrics:      metrics,
	}
}

// openQueue opens (creating it) the outbox in --state.
func (f *deliveryFlags) openQueue() (outbox.Queue, error) {
	if err := os.MkdirAll(f.state, 0o700); err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	q, err := outbox.OpenBolt(filepath.Join(f.state, "outbox.db"))
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return q, nil
}

// openInput is the file named by args, or standard input.
func (a *app) openInput(args []string) (io.Reader, func(), error) {
	if len(args) == 0 || args[0] == "-" {
		return a.stdin, func() {}, nil
	}
	f, err := os.Open(args[0])
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	return f, func() { f.Close() }, nil
}
