package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/runtime/outbox"
)

// itemJSON shows an outbox item with its event as JSON (an Item's Event
// is bytes, which encoding/json would print as base64).
type itemJSON struct {
	*outbox.Item
	Event json.RawMessage `json:"event,omitempty"`
}

func viewItem(it *outbox.Item) itemJSON {
	v := itemJSON{Item: it}
	switch {
	case len(it.Event) == 0:
	case json.Valid(it.Event):
		v.Event = json.RawMessage(it.Event)
	default:
		v.Event, _ = json.Marshal(string(it.Event))
	}
	return v
}

func (a *app) dlqCmd() *cobra.Command {
	var state, format string
	var limit int
	cmd := &cobra.Command{
		Use:   "dlq list|show ID|replay [--all | ID...]",
		Short: "Inspect and re-drive dead letters in the outbox",
		Long: `Dead letters are requests that failed permanently (a 4xx such as a bad
api_key) or ran out of attempts. They stay in the outbox in --state, with the
event, the attempts, the last status and error (never a secret). 'replay'
re-drives them with the blueprint, variant and config their 'send' saved in
--state (the config encrypted), so it needs no other flag. A --state that
nothing was sent with has no dead letters. Exit 0; 1 when the outbox cannot
be read, 'show' names an unknown ID, or a replay is interrupted; 2 on usage
errors.`,
		Example: `  blueprint dlq list --state /tmp/bp-state
  blueprint dlq replay --all --state /tmp/bp-state`,
	}
	cmd.PersistentFlags().StringVar(&state, "state", defaultStateDir(), "`DIR` holding the durable outbox")
	list := &cobra.Command{
		Use:     "list",
		Short:   "List dead letters, oldest first",
		Example: `  blueprint dlq list --state /tmp/bp-state --format json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if err := intIn("limit", limit, 1, listLimitMax); err != nil {
				return err
			}
			if noOutbox(state) {
				// Nothing was ever sent with this --state: no dead letters
				// (DESIGN §5: dlq exits 0), and a word on stderr in case
				// the --state is mistyped.
				fmt.Fprintf(a.stderr, "no outbox in %s: nothing was sent with this --state\n", state)
				if format == "json" {
					return writeJSON(a, []itemJSON{})
				}
				fmt.Fprintln(a.stdout, "no dead letters")
				return nil
			}
			q, err := openOutbox(state)
			if err != nil {
				return err
			}
			defer q.Close()
			ctx, skipped := countSkips(cmd.Context())
			items, _, err := q.List(ctx, outbox.Dead, "", limit)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			reportSkipped(a.stderr, skipped)
			if format == "json" {
				views := make([]itemJSON, len(items))
				for i, it := range items {
					views[i] = viewItem(it)
				}
				return writeJSON(a, views)
			}
			if len(items) == 0 {
				fmt.Fprintln(a.stdout, "no dead letters")
				return nil
			}
			for _, it := range items {
				// A vendor event may be computed from event data: quoted
				// when a terminal would act on it.
				fmt.Fprintf(a.stdout, "%s  %s  %s  attempts %d  status %d  %s\n", it.ID, it.Integration, printableText(it.VendorEvent), it.Attempts, it.LastStatus, printableText(it.LastError))
			}
			return nil
		},
	}
	list.Flags().StringVar(&format, "format", "text", "output `format`: text or json")
	list.Flags().IntVar(&limit, "limit", 1000, fmt.Sprintf("most dead letters listed (1 to %d)", listLimitMax))
	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one outbox item: event, attempts, last status and error",
		Example: `  blueprint dlq show 3f1c0d9e2b7a4c55a0e1d2c3b4a59687 --state /tmp/bp-state`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := openOutbox(state)
			if err != nil {
				return err
			}
			defer q.Close()
			it, err := q.Get(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("%s: %v", args[0], err)}
			}
			return writeJSON(a, viewItem(it))
		},
	}
	cmd.AddCommand(list, show, a.replayCmd(&state))
	return cmd
}

// printableText is s, or s quoted when it holds characters a terminal
// would act on (escapes, a newline forging a line).
func printableText(s string) string {
	for _, c := range s {
		if !unicode.IsPrint(c) {
			return strconv.Quote(s)
		}
	}
	return s
}
