package compiler

import (
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/blueprint-engine/blueprint/engine/diag"
	"github.com/blueprint-engine/blueprint/internal/suggest"
	"github.com/blueprint-engine/blueprint/internal/syntax"
)

// Catalog is a set of blueprints laid out as KEY/VERSION.yaml in a file
// system: the embedded catalog (package blueprints) is one, a folder on disk
// (os.DirFS) is another. Files whose base name is not a semantic version
// (vectors, overlays, notes) are not catalog entries. Compiled entries are
// cached; a Catalog is safe for concurrent use.
type Catalog struct {
	fsys    fs.FS
	entries map[string][]*Entry // by key, oldest version first
	byFile  map[string]*Entry

	mu       sync.Mutex
	compiled map[string]*compiled
}

type compiled struct {
	once sync.Once
	bp   *Blueprint
	ds   diag.List
}

// Entry is one blueprint file of a catalog.
type Entry struct {
	Key     string
	Version string
	File    string // path inside the catalog's file system
}

// Ref returns KEY@VERSION.
func (e *Entry) Ref() string { return e.Key + "@" + e.Version }

var entryRE = regexp.MustCompile(`^([a-z][a-z0-9_]*)/([^/]+)\.ya?ml$`)

// NewCatalog scans fsys for KEY/VERSION.yaml files.
func NewCatalog(fsys fs.FS) (*Catalog, error) {
	c := &Catalog{fsys: fsys, entries: map[string][]*Entry{}, byFile: map[string]*Entry{}, compiled: map[string]*compiled{}}
	files, err := fs.Glob(fsys, "*/*.y*ml")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		m := entryRE.FindStringSubmatch(f)
		if m == nil || !semverRE.MatchString(m[2]) {
			continue
		}
		e := &Entry{Key: m[1], Version: m[2], File: f}
		c.entries[m[1]] = append(c.entries[m[1]], e)
		c.byFile[f] = e
	}
	for _, es := range c.entries {
		slices.SortFunc(es, func(a, b *Entry) int { return compareSemver(a.Version, b.Version) })
	}
	return c, nil
}

// Keys lists the catalog keys, sorted.
func (c *Catalog) Keys() []string {
	keys := keysOf(c.entries)
	slices.Sort(keys)
	return keys
}

// Entries lists the versions of a key, oldest first.
func (c *Catalog) Entries(key string) []*Entry { return c.entries[key] }

// Resolve finds KEY@VERSION, or the newest version of KEY: its newest
// release, or its newest pre-release when it has no release. KEY matches
// case-insensitively.
func (c *Catalog) Resolve(ref string) (*Entry, error) {
	key, version, hasVersion := strings.Cut(ref, "@")
	key = strings.ToLower(key) // keys are lower case; "Button" is "button"
	es := c.entries[key]
	if len(es) == 0 {
		return nil, fmt.Errorf("no blueprint %s in the catalog%s", key, suggest.DidYouMean(key, c.Keys()))
	}
	if !hasVersion || version == "" {
		// The newest release; a pre-release (1.0.0-rc.1) only when the key
		// has no release, as Go's "latest" does: naming no version should
		// not pick up a release candidate.
		for i := len(es) - 1; i >= 0; i-- {
			if !strings.Contains(strings.SplitN(es[i].Version, "+", 2)[0], "-") {
				return es[i], nil
			}
		}
		return es[len(es)-1], nil
	}
	for _, e := range es {
		if e.Version == version {
			return e, nil
		}
	}
	var vs []string
	for _, e := range es {
		vs = append(vs, e.Version)
	}
	return nil, fmt.Errorf("no version %s of blueprint %s in the catalog (versions: %s)", version, key, strings.Join(vs, ", "))
}

// entryAt returns the entry whose file is name (its path in the catalog), or nil.
func (c *Catalog) entryAt(name string) *Entry { return c.byFile[name] }

// readBounded reads an entry to compile it: over the size limit, it is
// refused without being read whole.
func (c *Catalog) readBounded(e *Entry) ([]byte, diag.List) { return syntax.ReadFile(c.fsys, e.File) }

// Source returns the YAML text of an entry.
func (c *Catalog) Source(e *Entry) ([]byte, error) { return fs.ReadFile(c.fsys, e.File) }

// Compile compiles (once) and returns the blueprint at ref (KEY@VERSION or
// KEY). Diagnostics name files by their path in the catalog; when the
// blueprint does not compile, the error says so (and the blueprint is
// nil). The blueprint is shared by every caller: it must not be modified.
func (c *Catalog) Compile(ref string) (*Blueprint, diag.List, error) {
	e, err := c.Resolve(ref)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	cc := c.compiled[e.File]
	if cc == nil {
		cc = &compiled{}
		c.compiled[e.File] = cc
	}
	c.mu.Unlock()
	cc.once.Do(func() {
		src, ds := c.readBounded(e)
		if ds.HasErrors() {
			cc.ds = ds
			return
		}
		cc.bp, cc.ds = Compile(e.File, src, WithCatalog(c))
	})
	if cc.bp == nil {
		if !cc.ds.HasErrors() {
			// Compile returns no blueprint only with an error that says
			// why (TestCatalogNeverFailsSilently): never print %!w(<nil>).
			return nil, cc.ds, fmt.Errorf("%s does not compile, and no diagnostic says why (a compiler bug)", e.Ref())
		}
		return nil, cc.ds, fmt.Errorf("%s does not compile: %w", e.Ref(), cc.ds.Err())
	}
	return cc.bp, cc.ds, nil
}

// compareSemver orders MAJOR.MINOR.PATCH[-pre] versions.
func compareSemver(a, b string) int {
	ca, pa, _ := strings.Cut(strings.SplitN(a, "+", 2)[0], "-")
	cb, pb, _ := strings.Cut(strings.SplitN(b, "+", 2)[0], "-")
	xa, xb := strings.Split(ca, "."), strings.Split(cb, ".")
	for i := 0; i < 3 && i < len(xa) && i < len(xb); i++ {
		na, _ := strconv.Atoi(xa[i])
		nb, _ := strconv.Atoi(xb[i])
		if na != nb {
			if na < nb {
				return -1
			}
			return 1
		}
	}
	switch {
	case pa == pb:
		return 0
	case pa == "":
		return 1
	case pb == "":
		return -1
	}
	return strings.Compare(pa, pb)
}
