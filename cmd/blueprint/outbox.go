package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// outboxCmd looks after the outbox file itself: what it holds, purging
// old final items, compacting the file, checking and salvaging a damaged
// one, removing items by ID.
func (a *app) outboxCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "outbox stats|purge|compact|check|remove",
		Short: "Show, purge, compact, check and repair the durable outbox",
		Long: `The outbox in --state keeps delivered and skipped requests so that the same
event sent again is not sent twice; 'blueprint send' purges those older than
--retain (7 days by default) when it starts and hourly while it runs. 'purge' does it by
hand, dead letters included if asked; 'compact' gives the space of purged
items back to the file system (the file is reused, never shrunk, otherwise).
'check' tells whether the file is damaged and copies what is readable into a
new file with --salvage; 'remove' deletes requests by ID (erasure requests).

A request whose stored record cannot be read never blocks the others: send,
dlq and purge skip it and move it to the outbox's quarantine, with its bytes
('stats' counts them, 'check' lists them, 'remove' deletes them).`,
		Example: `  blueprint outbox stats --state /tmp/bp-state
  blueprint outbox purge --older-than 24h --state /tmp/bp-state
  blueprint outbox compact --state /tmp/bp-state
  blueprint outbox check --state /tmp/bp-state`,
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
				return damagedHint(err, state)
			}
			defer q.Close()
			counts, err := q.Counts(cmd.Context())
			if err != nil {
				return &exitError{code: 1, err: damagedHint(err, state)}
			}
			quarantined, err := q.Quarantine(cmd.Context())
			if err != nil {
				return &exitError{code: 1, err: damagedHint(err, state)}
			}
			fi, err := os.Stat(q.Path())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if format == "json" {
				return writeJSON(a, map[string]any{"path": q.Path(), "bytes": fi.Size(), "counts": counts, "quarantined": len(quarantined)})
			}
			fmt.Fprintf(a.stdout, "%s  %s\n", q.Path(), humanBytes(fi.Size()))
			for _, s := range []outbox.State{outbox.Pending, outbox.Delivered, outbox.Skipped, outbox.Dead} {
				fmt.Fprintf(a.stdout, "%-11s %d\n", s, counts[s])
			}
			if len(quarantined) > 0 {
				fmt.Fprintf(a.stdout, "%-11s %d (unreadable records: see 'blueprint outbox check')\n", "quarantined", len(quarantined))
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
again. Prints "purged N requests"; requests whose record cannot be read
are skipped, moved to the quarantine and counted on stderr.`,
		Example: `  blueprint outbox purge --older-than 168h --state /tmp/bp-state
  blueprint outbox purge --older-than 720h --dead --state /tmp/bp-state`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("older-than") || olderThan < 0 {
				return usageErr("give --older-than DURATION (0 or more: 0 purges every delivered and skipped request, and every dead letter with --dead)")
			}
			q, err := openOutbox(state)
			if err != nil {
				return damagedHint(err, state)
			}
			defer q.Close()
			sts := []outbox.State{outbox.Delivered, outbox.Skipped}
			if dead {
				sts = append(sts, outbox.Dead)
			}
			ctx, skipped := countSkips(cmd.Context())
			n, err := q.Purge(ctx, time.Now().Add(-olderThan), sts...)
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%w (purged %d requests before the error)", damagedHint(err, state), n)}
			}
			fmt.Fprintf(a.stdout, "purged %d requests\n", n)
			reportSkipped(a.stderr, skipped)
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
--state. Prints the size before and after. Compacting also erases from the
file the bytes of removed and purged requests, which linger in its free
space until then. A damaged file is left as it is: see 'outbox check'.`,
		Example: `  blueprint outbox compact --state /tmp/bp-state`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := outboxPath(state)
			if err != nil {
				return err
			}
			before, after, err := outbox.Compact(p)
			if err != nil {
				return &exitError{code: 1, err: damagedHint(err, state)}
			}
			fmt.Fprintf(a.stdout, "compacted %s: %s -> %s\n", p, humanBytes(before), humanBytes(after))
			return nil
		},
	}

	var salvage, checkFormatFlag string
	check := &cobra.Command{
		Use:   "check [--salvage NEWFILE]",
		Short: "Tell whether the outbox file is damaged; with --salvage, copy what is readable into a new file",
		Long: `Read the outbox file in --state without trusting it (a damaged file cannot
crash this) and report: damage to the file itself (its size, its meta pages,
pages that cannot be read, bbolt's own consistency check), the readable
requests by state, records that cannot be read, index entries out of step,
requests known only from an index entry (their record is lost), and the
quarantine. The file is never changed. Exit 0 when the file is sound and
every record readable (quarantined records are out of the way and do not
count), 1 otherwise.

With --salvage NEWFILE, every readable request is copied into a new outbox
file NEWFILE (which must not exist), keeping its state and times; records
that cannot be read go into its quarantine, with their bytes. When pages are
lost, the pages the file's tree no longer reaches are read too, keeping the
latest version of each request: a request purged or removed shortly before
the damage may come back, and one may come back in an earlier state (a
delivered request as pending: it is sent again). Exit 0 once NEWFILE is
written. To use it, stop every send on --state, then move NEWFILE over
DIR/outbox.db.`,
		Example: `  blueprint outbox check --state /tmp/bp-state
  blueprint outbox check --state /tmp/bp-state --format json
  # Copy what is readable into a new file, then (no send running) use it:
  blueprint outbox check --state /tmp/bp-state --salvage /tmp/bp-state/salvaged.db
  mv /tmp/bp-state/salvaged.db /tmp/bp-state/outbox.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(checkFormatFlag); err != nil {
				return err
			}
			p, err := outboxPath(state)
			if err != nil {
				return err
			}
			if salvage != "" {
				rep, err := outbox.Salvage(p, salvage)
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if checkFormatFlag == "json" {
					return writeJSON(a, rep)
				}
				a.printCheck(rep.Check)
				fmt.Fprintf(a.stdout, "salvaged %d requests into %s (%s), %d records into its quarantine\n",
					total(rep.Items), rep.Path, byState(rep.Items), rep.Quarantined)
				fmt.Fprintf(a.stderr, "To use it: stop every send on %s, then: mv %s %s\n", state, rep.Path, p)
				return nil
			}
			rep, err := outbox.Check(p)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if checkFormatFlag == "json" {
				if err := writeJSON(a, rep); err != nil {
					return err
				}
			} else {
				a.printCheck(rep)
			}
			if !rep.OK() {
				return &exitError{code: 1, err: fmt.Errorf("%s needs repair: 'blueprint outbox check --state %s --salvage NEWFILE' copies what is readable into a new file", p, state)}
			}
			return nil
		},
	}
	check.Flags().StringVar(&salvage, "salvage", "", "copy every readable request into a new outbox `FILE` (which must not exist)")
	check.Flags().StringVar(&checkFormatFlag, "format", "text", "output `format`: text or json")

	remove := &cobra.Command{
		Use:   "remove ID...",
		Short: "Delete requests by ID, in any state (erasure requests)",
		Long: `Delete the requests with the given IDs from the outbox, whatever their state
(pending ones are not sent), with their quarantined records. A removed ID is
forgotten: the same event sent again is sent again. It needs the outbox to
itself: run it when no send or dlq replay is running on --state. Prints
"removed N requests"; an ID the outbox does not hold is named on stderr and
the exit is 1. The file is checked first, as 'outbox check' does, and a
damaged file is refused (exit 1) and left as it is: a write into it could
spread the damage, and a lookup may miss the damaged pages (records that
cannot be read are no damage: removing them is allowed). The bytes of removed requests stay in the file's free space
until bbolt reuses it: run 'blueprint outbox compact' afterwards to erase
them from the disk.`,
		Example: `  # The purchase of message 3b1f7c1e-... of examples/button/events.ndjson,
  # once delivered as in 'blueprint send --help' (IDs of dead letters: 'blueprint dlq list'):
  blueprint outbox remove f2a38240ab1cd470cfb7b7b6e3368f27 --state /tmp/bp-state
  blueprint outbox compact --state /tmp/bp-state`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr("give the IDs of the requests to remove")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := refuseDamaged(state); err != nil {
				return err
			}
			q, err := openOutbox(state)
			if err != nil {
				return damagedHint(err, state)
			}
			defer q.Close()
			ids := slices.Compact(slices.Sorted(slices.Values(args)))
			removed := 0
			var unknown []string
			for _, id := range ids { // one by one, to name those unknown
				n, err := q.Remove(cmd.Context(), id)
				if err != nil {
					return &exitError{code: 1, err: fmt.Errorf("%w (removed %d requests before the error)", damagedHint(err, state), removed)}
				}
				if n == 0 {
					unknown = append(unknown, id)
				}
				removed += n
			}
			fmt.Fprintf(a.stdout, "removed %d requests\n", removed)
			if removed > 0 {
				fmt.Fprintf(a.stderr, "Their bytes stay in the file's free space until it is reused: 'blueprint outbox compact --state %s' (with no send running) erases them.\n", state)
			}
			for _, id := range unknown {
				fmt.Fprintf(a.stderr, "%s: no such request\n", id)
			}
			if len(unknown) > 0 {
				return errFailed
			}
			return nil
		},
	}
	cmd.AddCommand(stats, purge, compact, check, remove)
	return cmd
}

// printCheck prints a CheckReport.
func (a *app) printCheck(r *outbox.CheckReport) {
	w := a.stdout
	fmt.Fprintf(w, "%s  %s\n", r.Path, humanBytes(r.Size))
	for _, d := range r.Damage {
		fmt.Fprintf(w, "damaged: %s\n", d)
	}
	if r.PagesLost > 0 {
		fmt.Fprintf(w, "pages lost: %d (what they held cannot be read)\n", r.PagesLost)
	}
	fmt.Fprintf(w, "requests: %d (%s)", total(r.Records), byState(r.Records))
	if r.Recovered > 0 {
		fmt.Fprintf(w, ", %d of them found in pages the file's tree no longer reaches", r.Recovered)
	}
	fmt.Fprintln(w)
	if len(r.Unreadable) > 0 {
		fmt.Fprintf(w, "unreadable records: %d (moved to the quarantine when met)\n", len(r.Unreadable))
		for _, u := range r.Unreadable {
			fmt.Fprintf(w, "  %s\n", u.Problem)
		}
	}
	if r.IndexProblems > 0 {
		fmt.Fprintf(w, "index entries out of step: %d (repaired when met)\n", r.IndexProblems)
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(w, "lost: %d requests known only from an index entry (their events were accepted; send them again):\n", len(r.Lost))
		for _, id := range r.Lost {
			fmt.Fprintf(w, "  %s\n", id)
		}
	}
	if r.Quarantined > 0 {
		fmt.Fprintf(w, "quarantined: %d records\n", r.Quarantined)
	}
	if r.OK() {
		fmt.Fprintln(w, "ok")
	}
}

func total(m map[outbox.State]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// byState is "N pending, N delivered, N skipped, N dead".
func byState(m map[outbox.State]int) string {
	return fmt.Sprintf("%d pending, %d delivered, %d skipped, %d dead",
		m[outbox.Pending], m[outbox.Delivered], m[outbox.Skipped], m[outbox.Dead])
}

// damagedHint adds to an error about a damaged outbox what to do about it
// (keeping the exit code of an *exitError).
func damagedHint(err error, state string) error {
	code := 1
	var ee *exitError
	if errors.As(err, &ee) { // exitError does not unwrap
		code, err = ee.code, ee.err
	}
	if !errors.Is(err, outbox.ErrDamaged) {
		return &exitError{code: code, err: err}
	}
	return &exitError{code: code, err: fmt.Errorf("%w\n'blueprint outbox check --state %s' tells what is readable; add '--salvage NEWFILE' to copy it into a new file", err, state)}
}

// refuseDamaged checks the outbox file of state as 'outbox check' does
// and refuses it, naming the file and its damage, when the file itself is
// damaged: for a command that writes, whose own reads may not reach the
// damaged pages.
func refuseDamaged(state string) error {
	p, err := outboxPath(state)
	if err != nil {
		return err
	}
	rep, err := outbox.Check(p)
	if err != nil {
		return damagedHint(err, state)
	}
	if len(rep.Damage) > 0 {
		return damagedHint(fmt.Errorf("%w: %s: %s", outbox.ErrDamaged, p, strings.Join(rep.Damage, "; ")), state)
	}
	return nil
}

// countSkips returns a context that counts the unreadable records the
// outbox skips.
func countSkips(ctx context.Context) (context.Context, *atomic.Int64) {
	var n atomic.Int64
	return outbox.OnSkip(ctx, func(outbox.Skip) { n.Add(1) }), &n
}

// reportSkipped says on w how many unreadable records were skipped.
func reportSkipped(w io.Writer, n *atomic.Int64) {
	if k := n.Load(); k > 0 {
		fmt.Fprintf(w, "%d requests skipped: their record cannot be read (moved to the quarantine; see 'blueprint outbox check')\n", k)
	}
}

// noOutbox reports whether state holds no outbox file at all (nothing was
// sent with it), as opposed to one that cannot be read.
func noOutbox(state string) bool {
	_, err := os.Lstat(filepath.Join(state, "outbox.db"))
	return errors.Is(err, fs.ErrNotExist)
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
