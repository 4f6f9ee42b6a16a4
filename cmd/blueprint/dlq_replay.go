package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime/delivery"
	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

func (a *app) replayCmd(state *string) *cobra.Command {
	var fl integrationFlags
	var df deliveryFlags
	var all bool
	replay := &cobra.Command{
		Use:   "replay [--all | ID...] --blueprint KEY --config KEY=VALUE ...",
		Short: "Re-drive dead letters with the current config, and deliver them",
		Long: `Turn dead letters back into pending requests (attempts reset) and deliver
them now with the given blueprint and config: after fixing a config (a
corrected api_key, say), replayed requests are rebuilt from their events and
sent. Only the dead letters of the integration given (--blueprint and
--variant, as send named them) are replayed; others are left alone, and
an ID of another is a usage error. The last line is "N delivered, N
skipped, N rejected, N dead-lettered", counting the requests replayed; an
ID given that is not a dead letter is not replayed, and is counted on a
line before it ("already final from an earlier run (not sent again): ...").
The run waits for the replayed requests only, not for other pending ones.`,
		Example: `  blueprint dlq replay --all --state /tmp/bp-state --blueprint button --variant retail --config-file examples/button/config.json --vendor-url http://127.0.0.1:8787`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageErr("give --all or the IDs to replay (not both)")
			}
			if err := df.check(cmd); err != nil {
				return err
			}
			log, err := df.logger(a.stderr)
			if err != nil {
				return err
			}
			fl.allowPrivate = df.allowPriv
			in, err := a.bind(&fl)
			if err != nil {
				return err
			}
			df.state = *state
			q, err := df.openQueue()
			if err != nil {
				return err
			}
			defer q.Close()
			b := binding(in, fl.blueprint)
			p, err := delivery.New(q, df.options(log, nil, fl.maxEventSize), b)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer p.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := p.Start(ctx); err != nil {
				return &exitError{code: 1, err: err}
			}
			var ids []string // nil: all
			if !all {
				ids = args
			}
			rep, err := p.Replay(ctx, b.Name, ids)
			var fe *delivery.ForeignError
			switch {
			case errors.As(err, &fe):
				return usageErr("%v: replay it with that --blueprint and --variant", fe)
			case errors.Is(err, outbox.ErrNotFound):
				return usageErr("%v", err)
			case err != nil:
				return &exitError{code: 1, err: err}
			}
			for _, other := range slices.Sorted(maps.Keys(rep.Others)) {
				fmt.Fprintf(a.stderr, "%d dead letters of %s left alone: replay them with its --blueprint and --variant\n", rep.Others[other], other)
			}
			fmt.Fprintf(a.stderr, "replaying %d dead letters\n", rep.Replayed)
			runErr := p.Drain(ctx)
			if err := p.Close(); err != nil && runErr == nil {
				runErr = err
			}
			s := p.Summary()
			if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
				runErr, s.Interrupted = nil, true
			}
			return a.finish(s, runErr, *state)
		},
	}
	fl.register(replay)
	df.register(replay, false)
	replay.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	return replay
}
