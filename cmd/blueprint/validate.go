package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/conformance"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/blueprintdiff"
	"github.com/blueprint-engine/blueprint/internal/compiler"
	"github.com/blueprint-engine/blueprint/internal/syntax"
)

func (a *app) validateCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Compile blueprint files or folders and print every diagnostic",
		Long: `Compile blueprint files, or every *.yaml file under folders except vector
files (*.vectors.yaml, and other YAML files with a top-level cases key). With
no path, the whole embedded catalog is compiled.

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
				// read holds why the file could not be read (too large):
				// it is not compiled.
				read diag.List
				// fsys holds the file at name, for the versions beside it
				// (nil: a path of the operating system).
				fsys fs.FS
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
					// Bounded: a catalog entry may be a pipe or a device.
					src, ds := syntax.ReadFile(fsys, p)
					jobs = append(jobs, job{p, src, ds, fsys})
					return nil
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
					// Bounded, as the catalog reads a file: a path may
					// name a pipe or a device (/dev/stdin, <(...)), whose
					// size says nothing.
					if _, err := os.Stat(f); err != nil {
						return &exitError{code: 1, err: err}
					}
					src, ds := syntax.ReadOSFile(f)
					jobs = append(jobs, job{f, src, ds, nil})
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
				var bp *engine.Blueprint
				ds := j.read
				if len(ds) == 0 {
					bp, ds = engine.Compile(j.name, j.src, engine.WithCatalog(cat))
				}
				if bp != nil {
					ds = append(ds, a.versionBump(j.fsys, j.name, j.src, bp, cat)...)
				}
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

// versionBump checks a catalog file KEY/VERSION.yaml against the version
// it follows, the newest release older than it in the same folder: a bump
// smaller than the changes need is the warning version_bump_too_small.
// fsys holds name (nil: name is a path of the operating system).
func (a *app) versionBump(fsys fs.FS, name string, src []byte, bp *engine.Blueprint, cat *engine.Catalog) diag.List {
	inCatalog := fsys != nil
	dir, base, join := path.Dir(name), path.Base(name), path.Join
	folder := path.Base(dir)
	if inCatalog {
		sub, err := fs.Sub(fsys, dir)
		if err != nil {
			return nil
		}
		fsys = sub
	} else {
		dir, base, join = filepath.Dir(name), filepath.Base(name), filepath.Join
		abs, err := filepath.Abs(dir) // "0.1.1.yaml" given in its own folder
		if err != nil {
			return nil
		}
		folder = filepath.Base(abs)
		fsys = os.DirFS(dir)
	}
	version, ok := versionOfFile(base)
	if !ok || version != bp.Version() || folder != bp.Key() {
		return nil // not laid out as a catalog entry
	}
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil
	}
	prev, prevFile := "", ""
	for _, e := range entries {
		v, ok := versionOfFile(e.Name())
		if !ok || e.IsDir() || blueprintdiff.IsPrerelease(v) || blueprintdiff.CompareVersions(v, version) >= 0 {
			continue
		}
		if prev == "" || blueprintdiff.CompareVersions(v, prev) > 0 {
			prev, prevFile = v, e.Name()
		}
	}
	if prev == "" {
		return nil
	}
	psrc, ds := syntax.ReadFile(fsys, prevFile)
	if ds.HasErrors() {
		return nil
	}
	old, _ := engine.Compile(join(dir, prevFile), psrc, engine.WithCatalog(cat))
	if old == nil || old.Key() != bp.Key() || old.Version() != prev {
		return nil // its own diagnostics say why
	}
	hint := "see: blueprint diff " + shellQuote(join(dir, prevFile)) + " " + shellQuote(name)
	if inCatalog {
		hint = "see: blueprint diff " + old.Ref() + " " + bp.Ref()
		if a.catalogDir != "" {
			hint = "see: blueprint --catalog " + shellQuote(a.catalogDir) + " diff " + old.Ref() + " " + bp.Ref()
		}
	}
	return blueprintdiff.BumpWarning(versionPos(name, src), compiler.Of(old), compiler.Of(bp), hint)
}

// versionOfFile returns VERSION of a file named VERSION.yaml (or .yml).
func versionOfFile(base string) (string, bool) {
	v, ok := strings.CutSuffix(base, ".yaml")
	if !ok {
		v, ok = strings.CutSuffix(base, ".yml")
	}
	return v, ok && blueprintdiff.ValidVersion(v)
}

// versionPos is the position of the top-level version's value in src (the
// file as a whole when it has none of its own).
func versionPos(name string, src []byte) diag.Pos {
	for i, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "version:"); ok {
			col := len("version:") + len(rest) - len(strings.TrimLeft(rest, " \t")) + 1
			return diag.Pos{File: name, Line: i + 1, Col: col}
		}
	}
	return diag.Pos{File: name}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func isBlueprintFile(p string) bool {
	return isYAMLName(p) && !conformance.IsVectorFile(p) && !holdsVectors(p)
}

func isYAMLName(p string) bool { return strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml") }

// isVectorFileInFolder tells the vector files of a folder: those named
// *.vectors.yaml, and any other YAML file that holds vectors (a top-level
// cases key, which no blueprint has), so that a folder of vector files
// named otherwise is not silently "0 passed, 0 failed".
func isVectorFileInFolder(p string) bool {
	return conformance.IsVectorFile(p) || isYAMLName(p) && holdsVectors(p)
}

// holdsVectors reports whether the YAML file p is a mapping with a
// top-level cases key. A file that cannot be read or parsed does not.
func holdsVectors(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, 16<<20))
	if err != nil {
		return false
	}
	var doc yaml.Node
	if yaml.Unmarshal(src, &doc) != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return false
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		return false
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if top.Content[i].Value == "cases" {
			return true
		}
	}
	return false
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
