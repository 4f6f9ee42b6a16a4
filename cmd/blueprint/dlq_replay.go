package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// replayGroup is the dead letters of one integration to replay, and how
// to bind it.
type replayGroup struct {
	name    string
	ids     []string // nil: all of them
	ref     string
	variant string
	catalog string // the saved --catalog, "" for the embedded one
	sec     bindingSecrets
}

func (a *app) replayCmd(state *string) *cobra.Command {
	var fl integrationFlags
	var df deliveryFlags
	var all bool
	replay := &cobra.Command{
		Use:   "replay [--all | ID...] [--blueprint KEY[@VERSION]|FILE [--variant V]] [--config KEY=VALUE ...]",
		Short: "Re-drive dead letters, and deliver them",
		Long: `Turn dead letters back into pending requests (attempts reset) and deliver
them now. Requests are rebuilt from their events, so a corrected config (a
new api_key, say) applies to them.

With no other flag, each dead letter is replayed as 'blueprint send' ran
its integration: send saves, in --state, the blueprint, the variant, the
config and --vendor-url (--allow-private-addresses, --max-event-size,
--catalog) of each integration it queues requests for. The config and the vendor URL are
encrypted there (AES-256-GCM, with the key in STATE/secret.key, mode 0600,
created on first use), never written in clear text. --config and
--config-file replace the saved config's keys they name (the rest is kept),
--vendor-url and --allow-private-addresses the saved ones, and the config
replayed with is saved for the next replay. Dead letters queued without a
saved config (by an older send) need --blueprint and --config.

With --blueprint (and --variant), only the dead letters of that integration
are replayed, with the config given (over its saved one, if any); others
are left alone, and an ID of another is a usage error.

The last line is "N delivered, N skipped, N rejected, N dead-lettered",
counting the requests replayed; an ID given that is not a dead letter is not
replayed, and is counted on a line before it ("already final from an earlier
run (not sent again): ..."). The run waits for the replayed requests only,
not for other pending ones. Exit 0 when every replayed request reached a
final state (delivered, or dead-lettered again), 1 otherwise (interrupted,
the outbox unreadable, a config refused), 2 on usage errors.`,
		Example: `  # Replay every dead letter as send ran it:
  blueprint dlq replay --all --state /tmp/bp-state
  # ... with a corrected api_key:
  blueprint dlq replay --all --state /tmp/bp-state --config api_key=sk-new-key
  # The dead letters of one integration only, with the config in a file:
  blueprint dlq replay --all --state /tmp/bp-state --blueprint button --variant retail --config-file examples/button/config.json
  # Given dead letters (their IDs from 'blueprint dlq list'):
  #   blueprint dlq replay --state /tmp/bp-state ID...`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageErr("give --all or the IDs to replay (not both)")
			}
			if fl.blueprint == "" && cmd.Flags().Changed("variant") {
				return usageErr("--variant names an integration with --blueprint; without them, each dead letter is replayed with its own")
			}
			if err := fl.check(); err != nil {
				return err
			}
			if err := df.check(cmd); err != nil {
				return err
			}
			if _, err := df.logger(a.stderr); err != nil {
				return err
			}
			over, err := parseConfig(fl.config, fl.configFile)
			if err != nil {
				return err
			}
			df.state = *state
			a.replayCatalog = a.catalogDir // --catalog, if given, wins over the saved ones
			if noOutbox(*state) {
				if !all {
					return usageErr("no outbox in %s: nothing was sent with this --state, so %s is not a dead letter", *state, args[0])
				}
				fmt.Fprintf(a.stderr, "no outbox in %s: nothing was sent with this --state\n", *state)
				return a.finish(delivery.Summary{}, nil, *state)
			}
			q, err := openOutbox(*state)
			if err != nil {
				return err
			}
			defer q.Close()
			var ids []string // nil: all
			if !all {
				ids = args
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()

			var groups []replayGroup
			if fl.blueprint != "" {
				g, err := a.namedGroup(*state, &fl, over, ids)
				if err != nil {
					return err
				}
				groups = []replayGroup{g}
			} else {
				var missing map[string]int
				groups, missing, err = a.savedGroups(ctx, q, *state, over, ids)
				if err != nil {
					return err
				}
				for _, name := range slices.Sorted(maps.Keys(missing)) {
					fmt.Fprintf(a.stderr, "%d dead letters of %s left alone: no config was saved for it in %s; replay them with --blueprint, --variant and --config\n", missing[name], name, *state)
				}
			}

			var total delivery.Summary
			var runErr error
			for i, g := range groups {
				if ctx.Err() != nil {
					total.Interrupted = true
					break
				}
				s, started, err := a.replayGroup(ctx, q, *state, g, df, cmd, fl.blueprint != "")
				total = addSummary(total, s)
				if err != nil && !started && i == 0 {
					return err // a usage error or a refused config: nothing replayed
				}
				if err != nil {
					runErr = err
					break
				}
			}
			if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
				runErr, total.Interrupted = nil, true
			}
			return a.finish(total, runErr, *state)
		},
	}
	fl.register(replay)
	df.register(replay, false)
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	return replay
}

// namedGroup is the group of --blueprint and --variant: the config given
// over the one saved for it, if any.
func (a *app) namedGroup(state string, fl *integrationFlags, over map[string]any, ids []string) (replayGroup, error) {
	bp, err := a.loadBlueprint(fl.blueprint)
	if err != nil {
		return replayGroup{}, err
	}
	g := replayGroup{name: bindingName(bp, fl.blueprint, fl.variant), ids: ids, ref: fl.blueprint, variant: fl.variant, catalog: a.catalogDir}
	_, sec, ok, err := loadBinding(state, g.name)
	if err != nil {
		fmt.Fprintf(a.stderr, "blueprint: warning: the saved config of %s is not used: %v\n", g.name, err)
	}
	if !ok {
		sec = bindingSecrets{Config: map[string]any{}}
	}
	if sec.Config == nil {
		sec.Config = map[string]any{}
	}
	maps.Copy(sec.Config, over)
	g.sec = sec
	return g, nil
}

// savedGroups groups the dead letters to replay by integration, each bound
// as send saved it (config keys in over replacing the saved ones).
// missing counts, by integration, dead letters that have no saved binding
// (with --all; an ID given of such an integration is a usage error).
func (a *app) savedGroups(ctx context.Context, q *outbox.Bolt, state string, over map[string]any, ids []string) ([]replayGroup, map[string]int, error) {
	byName := map[string][]string{}
	counts := map[string]int{}
	if ids == nil {
		for cursor := ""; ; {
			page, next, err := q.List(ctx, outbox.Dead, cursor, 1000)
			if err != nil {
				return nil, nil, &exitError{code: 1, err: err}
			}
			for _, it := range page {
				counts[it.Integration]++
				byName[it.Integration] = nil
			}
			if next == "" {
				break
			}
			cursor = next
		}
	} else {
		for _, id := range ids {
			it, err := q.Get(ctx, id)
			if errors.Is(err, outbox.ErrNotFound) {
				return nil, nil, usageErr("%s: %v", id, err)
			}
			if err != nil {
				return nil, nil, &exitError{code: 1, err: err}
			}
			byName[it.Integration] = append(byName[it.Integration], id)
		}
	}
	var groups []replayGroup
	missing := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		sb, sec, ok, err := loadBinding(state, name)
		if err != nil {
			return nil, nil, &exitError{code: 1, err: err}
		}
		if !ok {
			if ids != nil {
				return nil, nil, usageErr("%s is a dead letter of %s, and no config was saved for it in %s: replay it with --blueprint, --variant and --config", byName[name][0], name, state)
			}
			missing[name] = counts[name]
			continue
		}
		if sec.Config == nil {
			sec.Config = map[string]any{}
		}
		maps.Copy(sec.Config, over)
		groups = append(groups, replayGroup{name: name, ids: byName[name], ref: sb.Blueprint, variant: sb.Variant, catalog: sb.Catalog, sec: sec})
	}
	return groups, missing, nil
}

// replayGroup binds one integration, replays its dead letters and waits
// for them; started tells whether any was replayed.
func (a *app) replayGroup(ctx context.Context, q *outbox.Bolt, state string, g replayGroup, df deliveryFlags, cmd *cobra.Command, named bool) (s delivery.Summary, started bool, err error) {
	maxEventSize := g.sec.MaxEventSize
	if cmd.Flags().Changed("max-event-size") || maxEventSize <= 0 {
		maxEventSize, _ = cmd.Flags().GetInt("max-event-size")
	}
	if !cmd.Flags().Changed("vendor-url") {
		df.vendorURL = g.sec.VendorURL
	}
	if !cmd.Flags().Changed("allow-private-addresses") {
		df.allowPriv = g.sec.AllowPrivate
	}
	if err := df.check(cmd); err != nil { // a saved vendor URL is checked too
		return delivery.Summary{}, false, err
	}
	if g.catalog != "" && a.replayCatalog == "" {
		a.catalogDir = g.catalog // the catalog send compiled it from
	} else {
		a.catalogDir = a.replayCatalog
	}
	in, err := a.bindConfig(g.ref, g.variant, g.sec.Config, maxEventSize, df.allowPriv)
	if err != nil {
		return delivery.Summary{}, false, err
	}
	b := binding(in, g.ref)
	if b.Name != g.name {
		return delivery.Summary{}, false, &exitError{code: 1, err: fmt.Errorf("the saved binding %s now names %s", g.name, b.Name)}
	}
	lg, _ := df.logger(a.stderr)
	p, err := delivery.New(q, df.options(lg, nil, maxEventSize), b)
	if err != nil {
		return delivery.Summary{}, false, &exitError{code: 1, err: err}
	}
	defer p.Close()
	if err := p.Start(ctx); err != nil {
		return delivery.Summary{}, false, &exitError{code: 1, err: err}
	}
	rep, err := p.Replay(ctx, b.Name, g.ids)
	var fe *delivery.ForeignError
	switch {
	case errors.As(err, &fe):
		return delivery.Summary{}, false, usageErr("%v: replay it with that --blueprint and --variant, or with neither", fe)
	case errors.Is(err, outbox.ErrNotFound):
		return delivery.Summary{}, false, usageErr("%v", err)
	case err != nil:
		return delivery.Summary{}, false, &exitError{code: 1, err: err}
	}
	if named {
		for _, other := range slices.Sorted(maps.Keys(rep.Others)) {
			fmt.Fprintf(a.stderr, "%d dead letters of %s left alone: replay them with its --blueprint and --variant, or with neither\n", rep.Others[other], other)
		}
	}
	fmt.Fprintf(a.stderr, "replaying %d dead letters of %s\n", rep.Replayed, b.Name)
	started = true
	runErr := p.Drain(ctx)
	if err := p.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		// Saved for the next replay: what this one ran with (the config,
		// and the vendor URL, private addresses and event size as given
		// or saved), so that a replay pointed at a sandbox never leaves a
		// binding that sends the next one to the vendor's real host.
		sec := g.sec
		sec.VendorURL, sec.AllowPrivate, sec.MaxEventSize = df.vendorURL, df.allowPriv, maxEventSize
		if err := saveBinding(state, a.catalogDir, b.Name, savedRef(in, g.ref), g.variant, sec); err != nil {
			fmt.Fprintf(a.stderr, "blueprint: warning: the config was not saved in %s: %v\n", state, err)
		}
	}
	return p.Summary(), started, runErr
}

// bindingName is the name binding gives an integration of bp, before it
// is bound: KEY@VERSION/VARIANT, a file by its absolute path.
func bindingName(bp *engine.Blueprint, ref, variant string) string {
	name := bp.Ref()
	if isFileRef(ref) {
		name = ref
		if abs, err := filepath.Abs(ref); err == nil {
			name = abs
		}
	}
	return name + "/" + variant
}

// addSummary adds the counts of two summaries.
func addSummary(a, b delivery.Summary) delivery.Summary {
	a.Events += b.Events
	a.Delivered += b.Delivered
	a.Skipped += b.Skipped
	a.Rejected += b.Rejected
	a.Dead += b.Dead
	a.AlreadyDelivered += b.AlreadyDelivered
	a.AlreadySkipped += b.AlreadySkipped
	a.AlreadyDead += b.AlreadyDead
	a.Pending += b.Pending
	a.Interrupted = a.Interrupted || b.Interrupted
	return a
}
