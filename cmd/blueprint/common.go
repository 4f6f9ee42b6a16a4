package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/blueprint-engine/blueprint/blueprints"
	"github.com/blueprint-engine/blueprint/engine"
	"github.com/blueprint-engine/blueprint/internal/syntax"
)

// catalog returns the embedded catalog, or the one in --catalog.
func (a *app) catalog() (*engine.Catalog, error) {
	if a.catalogDir != "" {
		st, err := os.Stat(a.catalogDir)
		if err != nil || !st.IsDir() {
			return nil, usageErr("--catalog %s is not a folder", a.catalogDir)
		}
		return engine.NewCatalog(os.DirFS(a.catalogDir))
	}
	return engine.NewCatalog(blueprints.FS)
}

// isFileRef tells a blueprint file from a catalog reference.
func isFileRef(ref string) bool {
	return strings.ContainsAny(ref, `/\`) || strings.HasSuffix(ref, ".yaml") || strings.HasSuffix(ref, ".yml")
}

// loadBlueprint compiles KEY[@VERSION] from the catalog, or a file. Compile
// errors are printed and make the command fail.
func (a *app) loadBlueprint(ref string) (*engine.Blueprint, error) {
	return a.loadRef(ref, "--blueprint ")
}

// loadRef is loadBlueprint for a reference given by flag (its name and a
// space) or, with flag "", as an argument.
func (a *app) loadRef(ref, flag string) (*engine.Blueprint, error) {
	cat, err := a.catalog()
	if err != nil {
		return nil, err
	}
	var bp *engine.Blueprint
	var ds engine.Diagnostics
	// A blueprint that is not there is a usage error (2), as an unknown
	// variant is, in every verb; one that does not compile is a failure (1).
	if isFileRef(ref) {
		_, err := os.Stat(ref)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usageErr("%s%s: no such file", flag, ref)
		}
		if err != nil {
			return nil, &exitError{code: 1, err: err}
		}
		// Read within the size limit, as the catalog reads a file: a
		// pipe or a device (/dev/stdin, <(...)) has no size to check
		// first, and /dev/zero was read until memory ran out.
		src, rds := syntax.ReadOSFile(ref)
		if ds = rds; len(ds) == 0 {
			bp, ds = engine.Compile(ref, src, engine.WithCatalog(cat))
		}
	} else {
		if _, err := cat.Resolve(ref); err != nil {
			return nil, usageErr("%v", err)
		}
		bp, ds, _ = cat.Compile(ref) // not compiling: bp is nil, below
	}
	if bp == nil {
		for _, d := range ds {
			fmt.Fprintln(a.stderr, d)
		}
		return nil, &exitError{code: 1, err: fmt.Errorf("%s does not compile", ref)}
	}
	return bp, nil
}

// parseConfig reads --config-file (JSON or YAML mapping) and then --config
// KEY=VALUE pairs over it. The file is read as blueprints are: at most
// 1 MiB and 64 levels of nesting, checked before any parser reads it, and
// plain data (no anchors, aliases, tags or duplicate keys); a file that
// breaks a rule is a usage error naming the line, the column and the code.
func parseConfig(pairs []string, file string) (map[string]any, error) {
	cfg := map[string]any{}
	if file != "" {
		src, ds := syntax.ReadOSFile(file)
		var f *syntax.File
		if !ds.HasErrors() {
			f, ds = syntax.Parse(file, src)
		}
		if ds.HasErrors() {
			return nil, usageErr("--config-file: %v", ds.Sorted())
		}
		if f.Root != nil {
			m, ok := syntax.Value(f.Root).(map[string]any)
			if !ok {
				return nil, usageErr("--config-file %s must hold a mapping of config keys, not %s", file, syntax.Describe(f.Root))
			}
			for k, v := range m {
				cfg[k] = v
			}
		}
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, usageErr("--config %q: expected KEY=VALUE", redactPair(p))
		}
		cfg[k] = v
	}
	return cfg, nil
}

// redactPair never echoes a value given on the command line.
func redactPair(p string) string {
	if k, _, ok := strings.Cut(p, "="); ok {
		return k + "=***"
	}
	if len(p) > 3 {
		return "***"
	}
	return p
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return &exitError{code: 1, err: fmt.Errorf("writing the output: %w", err)}
	}
	return nil
}

func checkFormat(f string) error {
	if f != "text" && f != "json" {
		return usageErr("--format %q: expected text or json", f)
	}
	return nil
}
