package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	fakeKafkaDefaultListen = "127.0.0.1:9092"
	fakeKafkaPartitionsMax = 1000
)

func (a *app) fakeKafkaCmd() *cobra.Command {
	var (
		listen     string
		partitions int
		verbose    bool
	)
	cmd := &cobra.Command{
		Use:   "fake-kafka [--listen ADDR] [--partitions N]",
		Short: "Run an in-memory Kafka broker on loopback, for demos and tests",
		Long: `Run one Kafka broker in this process, in memory (franz-go's kfake), for
demos, local runs of "blueprint serve --kafka-brokers" and tests. It is not a
Kafka to rely on: everything it holds (topics, records, committed offsets) is
gone when it stops, it has no authentication and no TLS, and it is a single
broker (replication factor 1).

It listens on ADDR (default 127.0.0.1:9092; port 0 picks a free port) and
advertises that address to clients, so ADDR must be one clients can dial:
a wildcard host such as 0.0.0.0 is refused. Topics that a client creates
without a partition count, or that it produces to before they exist (topics
are created on first use), get --partitions partitions (default 3); serve
creates its own topics with its own --kafka-partitions.

On start, one line goes to standard output: "kafka: listening on HOST:PORT"
(read it to learn the port). The broker serves until SIGINT or SIGTERM, then
prints "kafka: stopped" and exits 0. --verbose logs the broker's requests to
standard error.

Exit 0 after a signal, 1 when ADDR cannot be listened on, 2 on usage errors.`,
		Example: `  blueprint fake-kafka
  blueprint fake-kafka --listen 127.0.0.1:0 --partitions 6 -v`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFakeKafkaListen(listen); err != nil {
				return err
			}
			if err := intIn("partitions", partitions, 1, fakeKafkaPartitionsMax); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("fake-kafka: %w", err)}
			}
			level := kfake.LogLevelNone
			if verbose {
				level = kfake.LogLevelInfo
			}
			used := false
			c, err := kfake.NewCluster(
				kfake.NumBrokers(1),
				// kfake asks for 127.0.0.1:0; the listener opened above
				// is ADDR, which the broker advertises.
				kfake.ListenFn(func(string, string) (net.Listener, error) {
					if used {
						return nil, fmt.Errorf("fake-kafka: one broker only")
					}
					used = true
					return ln, nil
				}),
				kfake.DefaultNumPartitions(partitions),
				kfake.AllowAutoTopicCreation(),
				kfake.WithLogger(kfake.BasicLogger(a.stderr, level)),
			)
			if err != nil {
				ln.Close()
				return &exitError{code: 1, err: fmt.Errorf("fake-kafka: %w", err)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(a.stdout, "kafka: listening on %s\n", c.ListenAddrs()[0])
			if f, ok := a.stdout.(interface{ Flush() error }); ok {
				f.Flush()
			}
			<-ctx.Done()
			stop()
			c.Close()
			fmt.Fprintln(a.stdout, "kafka: stopped (in memory: its topics and records are gone)")
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr("%v", err)
	})
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", fakeKafkaDefaultListen, "listen on and advertise `ADDR` (host:port; port 0 picks a free port)")
	fl.IntVar(&partitions, "partitions", 3, fmt.Sprintf("partitions `N` of topics created without a count (1 to %d)", fakeKafkaPartitionsMax))
	fl.BoolVarP(&verbose, "verbose", "v", false, "log the broker's requests to standard error")
	return cmd
}

// checkFakeKafkaListen refuses an address clients could not dial as
// advertised.
func checkFakeKafkaListen(listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return usageErr("--listen %q: expected HOST:PORT, such as %s or 127.0.0.1:0", listen, fakeKafkaDefaultListen)
	}
	if host == "" {
		return usageErr("--listen %q: give a host (the broker advertises ADDR to its clients), such as 127.0.0.1", listen)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return usageErr("--listen %q: %s is a wildcard, not an address clients can dial (the broker advertises ADDR): give one, such as 127.0.0.1", listen, host)
	}
	return nil
}
