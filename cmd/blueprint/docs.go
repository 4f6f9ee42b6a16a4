package main

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/docgen"
)

func (a *app) docsCmd() *cobra.Command {
	var variant string
	cmd := &cobra.Command{
		Use:   "docs KEY[@VERSION]|FILE",
		Short: "Print an integration's Markdown reference, generated from its blueprint",
		Long: `Print the Markdown reference of an integration: prerequisites, configuration
(secrets marked), variants and event map, every request with its field table
(vendor field, source, rule, required, what happens when absent) and the
response rules that can match, the identities and shared values each variant
sends, consent, hosts, warnings, how to verify it and troubleshooting.
Everything comes from the blueprint (the page's own sections from its docs:).`,
		Example: `  blueprint docs button
  blueprint docs button@0.1.0 --variant retail
  blueprint docs blueprints/button/overlays/custom-event.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bp, err := a.loadRef(args[0], "")
			if err != nil {
				return err
			}
			md, err := docgen.Markdown(bp, variant)
			if err != nil {
				return usageErr("%v", err)
			}
			fmt.Fprint(a.stdout, md)
			return nil
		},
	}
	cmd.Flags().StringVar(&variant, "variant", "", "document only this `VARIANT`")
	return cmd
}

func (a *app) listCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the catalog: key, versions, status and variants",
		Example: `  blueprint list`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := a.catalog()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tVERSIONS\tSTATUS\tVARIANTS\tNAME")
			failed := false
			for _, key := range cat.Keys() {
				var versions []string
				for _, e := range cat.Entries(key) {
					versions = append(versions, e.Version)
				}
				bp, ds, _ := cat.Compile(key)
				if bp == nil {
					// Say why on stderr, as the other verbs do.
					failed = true
					for _, d := range ds {
						fmt.Fprintln(a.stderr, d)
					}
					errs, _ := ds.Counts()
					fmt.Fprintf(tw, "%s\t%s\t(does not compile: %d %s)\t\t\n", key, strings.Join(versions, ", "), errs, plural(errs, "error", "errors"))
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", key, strings.Join(versions, ", "), bp.Status(), strings.Join(bp.VariantKeys(), ", "), bp.Name())
			}
			tw.Flush()
			if failed {
				return &exitError{code: 1, err: fmt.Errorf("some blueprints do not compile; run blueprint validate")}
			}
			return nil
		},
	}
}

func (a *app) catalogCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "catalog [KEY[@VERSION]]",
		Short: "Print the platform's Catalog Vendor Objects, generated from blueprints",
		Long: `Print the platform's Catalog Vendor Object of a blueprint (newest version by
default), or of every blueprint in the catalog as a JSON list. The platform's
integration catalog is generated from this output, never kept by hand. In the
catalog an alpha blueprint shows as beta, the nearest status it has.`,
		Example: `  blueprint catalog button --format json
  blueprint catalog --format json > catalog.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "json" {
				return usageErr("--format %q: the catalog is printed as json", format)
			}
			cat, err := a.catalog()
			if err != nil {
				return err
			}
			compile := func(ref string) (*engine.Blueprint, error) {
				if _, err := cat.Resolve(ref); err != nil {
					return nil, usageErr("%v", err)
				}
				bp, ds, _ := cat.Compile(ref) // not compiling: bp is nil, below
				if bp == nil {
					for _, d := range ds {
						fmt.Fprintln(a.stderr, d)
					}
					return nil, &exitError{code: 1, err: fmt.Errorf("%s does not compile", ref)}
				}
				return bp, nil
			}
			if len(args) == 1 {
				bp, err := compile(args[0])
				if err != nil {
					return err
				}
				return writeJSON(a, docgen.Vendor(bp))
			}
			keys := cat.Keys()
			sort.Strings(keys)
			out := []docgen.VendorObject{}
			for _, k := range keys {
				bp, err := compile(k)
				if err != nil {
					return err
				}
				out = append(out, docgen.Vendor(bp))
			}
			return writeJSON(a, out)
		},
	}
	cmd.Flags().StringVar(&format, "format", "json", "output `format`: json")
	return cmd
}
