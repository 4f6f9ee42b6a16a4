package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/internal/blueprintdiff"
	"github.com/blueprint-engine/blueprint/internal/compiler"
)

func (a *app) diffCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "diff OLD NEW",
		Short: "Compare two versions of a blueprint and say which semver bump their changes need",
		Long: `Compile two versions of a blueprint (each a catalog KEY@VERSION or a file) and
list the changes that matter to installs and senders, each with the bump it
needs: major when something that worked can fail or disappear (a config key
removed or made required, a body field removed, renamed or retyped, an event
mapping or variant dropped), minor for additions and relaxed rules (new
optional config, fields, mappings; hosts changed), patch for text only
(descriptions, labels). The rules are in docs/authoring.md#versions.

Each change is a line "LEVEL: change (where)"; the last line is
"needs: LEVEL; OLD -> NEW is a MAJOR|MINOR|PATCH bump" (or "is not a bump").
Exit 0 when NEW's version is bumped at least as much as its changes need, 1
when the bump is too small (or either does not compile), 2 on usage errors.`,
		Example: `  # A catalog version against a file (your edited copy of it, say):
  blueprint diff button@0.1.0 blueprints/button/0.1.0.yaml
  # Two catalog versions (KEY alone is the newest), as JSON:
  blueprint diff --format json button@0.1.0 button`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			old, err := a.loadRef(args[0], "")
			if err != nil {
				return err
			}
			new, err := a.loadRef(args[1], "")
			if err != nil {
				return err
			}
			r := blueprintdiff.Compare(compiler.Of(old), compiler.Of(new))
			if format == "json" {
				if err := writeJSON(a, r); err != nil {
					return err
				}
			} else {
				for _, c := range r.Changes {
					fmt.Fprintln(a.stdout, c)
				}
				fmt.Fprintln(a.stdout, r.Verdict())
			}
			if !r.OK {
				return &exitError{code: 1, err: fmt.Errorf("the changes need a %s bump: version %s or later", r.Needs, blueprintdiff.NextVersion(r.Old.Version, r.Needs))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: text or json")
	return cmd
}
