// Command blueprint compiles, tests, documents and runs blueprints.
//
//	blueprint validate [PATH...]        compile blueprints (default: the embedded catalog)
//	blueprint test [PATH...]            run conformance vectors (default: every shipped vector)
//	blueprint eval --blueprint KEY ...  dry-run events, secrets redacted
//	blueprint docs KEY[@VERSION]        the integration's Markdown reference
//	blueprint list                      the catalog
//	blueprint catalog [KEY]             the platform's Catalog Vendor Objects (JSON)
//	blueprint init KEY                  a scaffold blueprint and its vectors, ready to edit
//	blueprint diff OLD NEW              the changes between two versions and the semver bump they need
//	blueprint send --blueprint KEY ...  deliver events through the durable outbox
//	blueprint dlq list|show|replay      inspect and re-drive dead letters
//	blueprint outbox stats|purge|compact  look after the outbox file
//	blueprint fake-button               a local fake of Button's API with fault injection
//	blueprint fake-kafka                an in-memory Kafka broker on loopback, for demos and tests
//
// Exit codes: 0 success, 1 failure (errors, failed cases, refused config),
// 2 usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"sync"

	"github.com/spf13/cobra"
)

// version is the CLI's version, also sent in the User-Agent.
const version = "0.1.0"

// exitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// stickyWriter remembers the first write error of the standard output.
type stickyWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// Flush flushes the underlying writer when it buffers (a test's, say).
func (s *stickyWriter) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.w.(interface{ Flush() error }); ok {
		if err := f.Flush(); err != nil && s.err == nil {
			s.err = err
		}
	}
	return s.err
}

func (s *stickyWriter) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// lockedWriter serialises writes to a writer shared by goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// failed makes a command exit 1 without printing more.
var errFailed = &exitError{code: 1}

func main() {
	// BLUEPRINT_CPUPROFILE=FILE writes a CPU profile of the whole run
	// (bench/serve-load.sh -cpuprofile uses it to see where serve spends
	// its time). Not a flag: it is for whoever measures this binary.
	stop := startCPUProfile(os.Getenv("BLUEPRINT_CPUPROFILE"))
	code := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func startCPUProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "blueprint: BLUEPRINT_CPUPROFILE:", err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// run is main without the process: tests call it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	out := &stickyWriter{w: stdout}
	// Commands and their loggers write to stderr from several goroutines
	// (a worker's log lines beside a verb's own messages): one lock keeps
	// their lines whole, and a test's buffer safe.
	stderr = &lockedWriter{w: stderr}
	root := newRoot(stdin, out, stderr)
	if len(args) == 0 {
		// No verb is a usage error, as a verb with subcommands given none
		// is (newRoot): the help goes to stderr, exit 2.
		root.InitDefaultHelpFlag()
		root.InitDefaultVersionFlag()
		root.SetOut(stderr)
		root.Help()
		fmt.Fprintln(stderr, "blueprint: no command given")
		return 2
	}
	root.SetArgs(args)
	err := root.Execute()
	if err == nil && out.failed() != nil {
		// Output lost to a full disk or a closed pipe is a failure, even
		// where a command wrote its text without checking each write.
		fmt.Fprintln(stderr, "blueprint: writing the output:", out.failed())
		return 1
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "blueprint:", ee.err)
		}
		if ee.code == 2 {
			fmt.Fprintln(stderr, "Run 'blueprint --help' for usage.")
		}
		return ee.code
	}
	// Cobra's own errors are usage errors: unknown command, bad flag,
	// wrong number of arguments.
	fmt.Fprintln(stderr, "blueprint:", err)
	fmt.Fprintln(stderr, "Run 'blueprint --help' for usage.")
	return 2
}

type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	catalogDir     string
	// configResult: eval prints a refused config on stdout too, as the
	// decision it is ("text" or "json", its --format), for whoever reads
	// only stdout; "" (send, replay) prints it on stderr only, so that
	// send's stdout ends with its summary line.
	configResult string
	// replayCatalog is dlq replay's --catalog ("": each integration's
	// saved one, else the embedded catalog).
	replayCatalog string
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "blueprint",
		Short: "Compile, test, document and run declarative vendor integrations",
		Long: `blueprint works with blueprints: versioned YAML files that say, for one vendor
integration, which config it needs, which source events map to which vendor
events, where each vendor field comes from, and which consent gates it.

The catalog of blueprints is embedded in this binary; --catalog DIR uses a
folder laid out as KEY/VERSION.yaml instead.

Exit codes: 0 success, 1 failure, 2 usage.`,
		Example: `  blueprint validate
  blueprint test
  echo '{"type":"track","event":"Order Completed","properties":{}}' | \
    blueprint eval --blueprint button --config application_id=app-abc123 --config api_key=sk-test -
  blueprint docs button@0.1.0`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&a.catalogDir, "catalog", "", "use the catalog in `DIR` (KEY/VERSION.yaml files) instead of the embedded one")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v", err)
	})
	// No shell completion verb: it would be the one verb without an
	// example, and nothing here needs it.
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		a.validateCmd(),
		a.testCmd(),
		a.evalCmd(),
		a.docsCmd(),
		a.listCmd(),
		a.catalogCmd(),
		a.initCmd(),
		a.diffCmd(),
		a.sendCmd(),
		a.dlqCmd(),
		a.outboxCmd(),
		a.fakeButtonCmd(),
		a.fakeKafkaCmd(),
		a.serveCmd(),
	)
	// Cobra's help verb is listed among the others: it too gets an example
	// (DESIGN §5: every verb has --help with an example).
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if c.Name() != "help" {
			continue
		}
		if c.Example == "" {
			c.Example = "  blueprint help eval\n  blueprint help dlq replay"
		}
		// An unknown topic is a usage error, as an unknown verb is
		// (cobra's help would say so and exit 0).
		show := c.Run
		c.Run = nil
		c.RunE = func(c *cobra.Command, args []string) error {
			if found, rest, err := c.Root().Find(args); err != nil || found == nil || len(rest) > 0 {
				return usageErr("help: unknown command %q", strings.Join(args, " "))
			}
			show(c, args)
			return nil
		}
	}
	// A verb with subcommands given none, or an unknown one, is a usage
	// error (cobra would print its help and exit 0).
	for _, c := range root.Commands() {
		if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
			c.Args = cobra.ArbitraryArgs
			c.RunE = func(c *cobra.Command, args []string) error {
				var names []string
				for _, sub := range c.Commands() {
					names = append(names, sub.Name())
				}
				if len(args) > 0 {
					return usageErr("%s: unknown subcommand %q (one of: %s)", c.Name(), args[0], strings.Join(names, ", "))
				}
				return usageErr("%s needs a subcommand: %s", c.Name(), strings.Join(names, ", "))
			}
		}
	}
	return root
}
