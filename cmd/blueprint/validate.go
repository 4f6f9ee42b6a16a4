package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/engine/diag"
)

func (a *app) validateCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Compile blueprint files or folders and print every diagnostic",
		Long: `Compile blueprint files, or every *.yaml file under folders (vector files
*.vectors.yaml excepted). With no path, the whole embedded catalog is compiled.

Each diagnostic is printed as FILE:LINE:COL: SEVERITY CODE: message; the codes
are listed in docs/diagnostics.md. Exit 0 when there is no error (warnings
allowed), 1 when there is any, 2 on usage errors.`,
		Example: `  blueprint validate
  blueprint validate blueprints/button/0.1.0.yaml
  blueprint validate --format json blueprints/button/overlays/custom-event.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			cat, err := a.catalog()
			if err != nil {
				return err
			}
			type job struct {
				name string
				src  []byte
			}
			var jobs []job
			if len(args) == 0 {
				fsys := fs.FS(blueprints.FS)
				if a.catalogDir != "" {
					fsys = os.DirFS(a.catalogDir)
				}
				err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() || !isBlueprintFile(p) {
						return err
					}
					src, err := fs.ReadFile(fsys, p)
					jobs = append(jobs, job{p, src})
					return err
				})
				if err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			for _, arg := range args {
				files, err := expand(arg)
				if err != nil {
					return usageErr("%v", err)
				}
				for _, f := range files {
					src, err := os.ReadFile(f)
					if err != nil {
						return &exitError{code: 1, err: err}
					}
					jobs = append(jobs, job{f, src})
				}
			}
			var all diag.List
			type fileResult struct {
				File     string `json:"file"`
				OK       bool   `json:"ok"`
				Errors   int    `json:"errors"`
				Warnings int    `json:"warnings"`
			}
			var results []fileResult
			for _, j := range jobs {
				_, ds := engine.Compile(j.name, j.src, engine.WithCatalog(cat))
				fr := fileResult{File: j.name}
				fr.Errors, fr.Warnings = ds.Counts()
				fr.OK = fr.Errors == 0
				results = append(results, fr)
				all = append(all, ds...)
			}
			errs, warns := 0, 0
			for _, r := range results {
				errs += r.Errors
				warns += r.Warnings
			}
			if format == "json" {
				if all == nil {
					all = diag.List{}
				}
				if err := writeJSON(a, map[string]any{"files": results, "diagnostics": all, "errors": errs, "warnings": warns}); err != nil {
					return err
				}
			} else {
				for _, d := range all {
					fmt.Fprintln(a.stdout, d)
				}
				fmt.Fprintf(a.stderr, "%d %s: %d %s, %d %s\n", len(results), plural(len(results), "file", "files"),
					errs, plural(errs, "error", "errors"), warns, plural(warns, "warning", "warnings"))
			}
			if errs > 0 {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: text or json")
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func isBlueprintFile(p string) bool {
	return (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) && !conformance.IsVectorFile(p)
}

// expand turns a path into the blueprint files it names: the file itself,
// or the blueprint files under a folder.
func expand(arg string) ([]string, error) { return walkFiles(arg, isBlueprintFile) }

// walkFiles returns arg itself when it is a file, or the files under the
// folder arg that keep selects, sorted.
func walkFiles(arg string, keep func(string) bool) ([]string, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: no such file or folder", arg)
	}
	if !st.IsDir() {
		return []string{arg}, nil
	}
	var out []string
	err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && keep(p) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}
