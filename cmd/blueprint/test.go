package main

import (
	"fmt"
	"io/fs"
	"os"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
)

func (a *app) testCmd() *cobra.Command {
	var format, runRE string
	cmd := &cobra.Command{
		Use:   "test [PATH...]",
		Short: "Run conformance vector files and print each failure with a diff",
		Long: `Run conformance vectors: files named on the command line are read as vector
files whatever their name; folders are searched for *.vectors.yaml, and for
other YAML files that hold vectors (a top-level cases key). With no
path, every vector file shipped in the catalog runs.

Each failing case is printed with its file:line, its name and one line per
difference (with the JSON path of each body difference). The last line is
exactly "N passed, N failed". Exit 0 when every case passes, 1 when any fails
or a vector file is in error (its cases do not run), 2 on usage errors (a
bad flag, a path that does not exist).`,
		Example: `  blueprint test
  blueprint test blueprints/button/0.1.0.vectors.yaml --run 'money'
  blueprint test --format json blueprints/button/overlays/custom-event.vectors.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			var filter *regexp.Regexp
			if runRE != "" {
				re, err := regexp.Compile(runRE)
				if err != nil {
					return usageErr("--run: %v", err)
				}
				filter = re
			}
			cat, err := a.catalog()
			if err != nil {
				return err
			}
			var files []*conformance.File
			failed := 0
			report := func(ds []string) {
				for _, d := range ds {
					fmt.Fprintln(a.stdout, d)
				}
			}
			var loadErrors []string
			if len(args) == 0 {
				fsys := fs.FS(blueprints.FS)
				if a.catalogDir != "" {
					fsys = os.DirFS(a.catalogDir)
				}
				fs, ds := conformance.LoadAllFS(fsys)
				files = fs
				for _, d := range ds {
					loadErrors = append(loadErrors, d.String())
				}
				if ds.HasErrors() {
					failed++
				}
			}
			for _, arg := range args {
				names, err := vectorFiles(arg)
				if err != nil {
					return usageErr("%v", err)
				}
				for _, n := range names {
					f, ds := conformance.LoadFile(n)
					for _, d := range ds {
						loadErrors = append(loadErrors, d.String())
					}
					if ds.HasErrors() {
						failed++
					}
					if f != nil {
						files = append(files, f)
					}
				}
			}
			r := &conformance.Runner{Catalog: cat}
			passed := 0
			type caseJSON struct {
				File     string   `json:"file"`
				Line     int      `json:"line"`
				Name     string   `json:"name"`
				Passed   bool     `json:"passed"`
				Problems []string `json:"problems,omitempty"`
			}
			var cases []caseJSON
			if format == "text" {
				report(loadErrors)
			}
			for _, f := range files {
				for _, res := range r.Run(f, filter) {
					cases = append(cases, caseJSON{File: f.Path, Line: res.Case.Line, Name: res.Case.Name, Passed: res.Passed(), Problems: res.Problems})
					if res.Passed() {
						passed++
						continue
					}
					failed++
					if format == "text" {
						fmt.Fprintf(a.stdout, "FAIL %s:%d: %s\n", f.Path, res.Case.Line, res.Case.Name)
						for _, p := range res.Problems {
							fmt.Fprintf(a.stdout, "    %s\n", p)
						}
					}
				}
			}
			if format == "json" {
				if cases == nil {
					cases = []caseJSON{}
				}
				if loadErrors == nil {
					loadErrors = []string{}
				}
				if err := writeJSON(a, map[string]any{"cases": cases, "errors": loadErrors, "passed": passed, "failed": failed}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "%d passed, %d failed\n", passed, failed)
			}
			if failed > 0 {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output `format`: text or json")
	cmd.Flags().StringVar(&runRE, "run", "", "run only the cases whose name matches `REGEX`")
	return cmd
}

// vectorFiles: a file is a vector file whatever its name; a folder holds
// *.vectors.yaml files, and other YAML files that hold vectors.
func vectorFiles(arg string) ([]string, error) { return walkFiles(arg, isVectorFileInFolder) }
