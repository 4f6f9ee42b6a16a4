package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// outboxCmd looks after the outbox file itself: what it holds, purging
// old final items, compacting the file.
func (a *app) outboxCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "outbox stats|purge|compact",
		Short: "Show, purge and compact the durable outbox",
		Long: `The outbox in --state keeps delivered and skipped requests so that the same
event sent again is not sent twice; 'blueprint send' purges those older than
--retain (7 days by default) when it starts and hourly while it runs. 'purge' does it by
hand, dead letters included if asked; 'compact' gives the space of purged
items back to the file system (the file is reused, never shrunk, otherwise).`,
		Example: `  blueprint outbox stats --state /tmp/bp-state
  blueprint outbox purge --older-than 24h --state /tmp/bp-state
  blueprint outbox compact --state /tmp/bp-state`,
	}
	cmd.PersistentFlags().StringVar(&state, "state", defaultStateDir(), "`DIR` holding the durable outbox")

	var format string
	stats := &cobra.Command{
		Use:     "stats",
		Short:   "Count the outbox's requests by state, and show the file's size",
		Example: `  blueprint outbox stats --state /tmp/bp-state --format json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			q, err := openOutbox(state)
			if err != nil {
				return err
			}
			defer q.Close()
			counts, err := q.Counts(cmd.Context())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fi, err := os.Stat(q.Path())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				return writeJSON(a, map[string]any{"path": q.Path(), "bytes": fi.Size(), "counts": counts})
			}
			fmt.Fprintf(a.stdout, "%s  %s\n", q.Path(), humanBytes(fi.Size()))
			for _, s := range []outbox.State{outbox.Pending, outbox.Delivered, outbox.Skipped, outbox.Dead} {
				fmt.Fprintf(a.stdout, "%-10s %d\n", s, counts[s])
			}
			return nil
		},
	}
	stats.Flags().StringVar(&format, "format", "text", "output `format`: text or json")

	var olderThan time.Duration
	var dead bool
	purge := &cobra.Command{
		Use:   "purge --older-than DURATION [--dead]",
		Short: "Delete delivered and skipped requests (dead letters too with --dead) last updated more than DURATION ago",
		Long: `Delete the delivered and skipped requests last updated more than --older-than
ago, and with --dead the dead letters too. Pending requests are never
purged. A purged request is forgotten: the same event sent again is sent
again. Prints "purged N requests".`,
		Example: `  blueprint outbox purge --older-than 168h --state /tmp/bp-state
  blueprint outbox purge --older-than 720h --dead --state /tmp/bp-state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("older-than") || olderThan < 0 {
				return usageErr("give --older-than DURATION (0 or more: 0 purges every delivered and skipped request, and every dead letter with --dead)")
			}
			q, err := openOutbox(state)
			if err != nil {
				return err
			}
			defer q.Close()
			sts := []outbox.State{outbox.Delivered, outbox.Skipped}
			if dead {
				sts = append(sts, outbox.Dead)
			}
			n, err := q.Purge(cmd.Context(), time.Now().Add(-olderThan), sts...)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%w (purged %d requests before the error)", err, n)}
			}
			fmt.Fprintf(a.stdout, "purged %d requests\n", n)
			return nil
		},
	}
	purge.Flags().DurationVar(&olderThan, "older-than", 0, "purge requests last updated more than `DURATION` ago (such as 168h)")
	purge.Flags().BoolVar(&dead, "dead", false, "purge dead letters too")

	compact := &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the outbox file with only its live data, giving free space back",
		Long: `Rewrite the outbox file with only its live data and replace it (crash-safe:
the new file is written beside it, synced, then renamed over it). It needs
the file to itself: run it when no send or dlq replay is running on
--state. Prints the size before and after.`,
		Example: `  blueprint outbox compact --state /tmp/bp-state`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := outboxPath(state)
			if err != nil {
				return err
			}
			before, after, err := outbox.Compact(p)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(a.stdout, "compacted %s: %s -> %s\n", p, humanBytes(before), humanBytes(after))
			return nil
		},
	}
	cmd.AddCommand(stats, purge, compact)
	return cmd
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

// humanBytes is n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 2 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMG"[i])
}
