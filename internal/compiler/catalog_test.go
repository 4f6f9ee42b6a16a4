package compiler_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/blueprint-engine/blueprint/internal/compiler"
)

// catalogOf builds a catalog of the given files (KEY/VERSION.yaml -> YAML);
// "BUTTON" stands for the shipped Button blueprint.
func catalogOf(t *testing.T, files map[string]string) *compiler.Catalog {
	t.Helper()
	button, err := os.ReadFile("../../blueprints/button/0.1.0.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for name, src := range files {
		if src == "BUTTON" {
			src = string(button)
		}
		fsys[name] = &fstest.MapFile{Data: []byte(src)}
	}
	cat, err := compiler.NewCatalog(fsys)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// Finding 13 of issue #11: button/0.2.0.yaml holding "extends: button"
// passed validate (no diagnostic at all), and every other verb then said
// "does not compile" without saying why. A catalog entry extending its own
// key must name an older version; anything else is extends_self (or, for a
// cycle through other keys, extends_cycle), positioned at extends.
func TestExtendsOwnKey(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		ref   string
		want  string // a diagnostic, or "" when ref compiles
	}{
		{"extends itself by key", map[string]string{
			"button/0.1.0.yaml": "BUTTON",
			"button/0.2.0.yaml": "extends: button\nname: Self\n",
		}, "button@0.2.0", "button/0.2.0.yaml:1:10: error extends_self: button@0.2.0 extends button, which is itself: a version can extend only an older version of its key; name an older version: extends: button@0.1.0"},
		{"extends itself by version", map[string]string{
			"button/0.2.0.yaml": "name: Self\nextends: button@0.2.0\n",
		}, "button", "button/0.2.0.yaml:2:10: error extends_self: button@0.2.0 extends button@0.2.0, which is itself: a version can extend only an older version of its key; remove extends"},
		{"extends itself, key in capitals", map[string]string{
			"button/0.1.0.yaml": "BUTTON",
			"button/0.2.0.yaml": "extends: Button\n",
		}, "button@0.2.0", "error extends_self: button@0.2.0 extends Button, which is itself"},
		{"extends a newer version by key", map[string]string{
			"button/0.1.0.yaml": "extends: button\n",
			"button/0.2.0.yaml": "BUTTON",
		}, "button@0.1.0", "button/0.1.0.yaml:1:10: error extends_self: button@0.1.0 extends button, which resolves to button@0.2.0, a newer version of itself: a version can extend only an older version of its key; remove extends"},
		{"extends a newer version by version", map[string]string{
			"button/0.1.0.yaml": "extends: button@0.2.0\n",
			"button/0.2.0.yaml": "BUTTON",
		}, "button@0.1.0", "error extends_self: button@0.1.0 extends button@0.2.0, which resolves to button@0.2.0, a newer version of itself"},
		{"a pre-release extends the newest release by key", map[string]string{
			"button/0.1.0.yaml":      "BUTTON",
			"button/0.2.0-rc.1.yaml": "extends: button\n",
		}, "button@0.2.0-rc.1", "button/0.2.0-rc.1.yaml:1:10: error extends_self: button@0.2.0-rc.1 extends button, the newest version of its own key: today button@0.1.0, but it changes with every version published (and is button@0.2.0-rc.1 itself once it is the newest); name the version: extends: button@0.1.0"},
		{"two versions extend each other", map[string]string{
			"button/0.1.0.yaml": "extends: button@0.2.0\n",
			"button/0.2.0.yaml": "extends: button@0.1.0\n",
		}, "button@0.2.0", "button/0.2.0.yaml:1:10: error extends_invalid: base blueprint button@0.1.0 has errors"},
		{"a cycle through resolving another key", map[string]string{
			"a/1.0.0.yaml": "extends: b\n",
			"a/2.0.0.yaml": "extends: b@1.0.0\n",
			"b/1.0.0.yaml": "extends: a\n",
		}, "a@2.0.0", "a/2.0.0.yaml:1:10: error extends_cycle: extends cycle: a@2.0.0 -> b@1.0.0 -> a@2.0.0"},
		{"an older version by version", map[string]string{
			"button/0.1.0.yaml": "BUTTON",
			"button/0.2.0.yaml": "extends: button@0.1.0\nname: Button Two\n",
		}, "button@0.2.0", ""},
		{"another key by key", map[string]string{
			"button/0.1.0.yaml": "BUTTON",
			"mine/1.0.0.yaml":   "extends: button\nkey: mine\nversion: 1.0.0\n",
		}, "mine", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cat := catalogOf(t, tt.files)
			bp, ds, err := cat.Compile(tt.ref)
			if tt.want == "" {
				if bp == nil || err != nil {
					t.Fatalf("%s does not compile: %v\n%v", tt.ref, err, ds)
				}
				return
			}
			if bp != nil || err == nil {
				t.Fatalf("%s compiles", tt.ref)
			}
			if !strings.Contains(ds.Error(), tt.want) {
				t.Errorf("diagnostics:\n%v\nwant:\n%s", ds, tt.want)
			}
			// The error carries the diagnostics that say why.
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error: %v\nwant it to hold %q", err, tt.want)
			}
		})
	}
}

// minimal is a small valid blueprint.
const minimal = `key: x
version: 1.0.0
name: X
category: analytics
status: alpha
hosts: [api.example.com]
requests:
  track:
    method: POST
    url: https://api.example.com/v1/track
    body:
      order_id: {from: properties.order_id, type: string}
events:
  Order Completed: {vendor_event: purchase, request: track}
`

// Whatever a catalog holds, an entry that does not compile says why: no
// nil blueprint without an error diagnostic.
func TestCatalogNeverFailsSilently(t *testing.T) {
	if bp, ds, err := catalogOf(t, map[string]string{"x/1.0.0.yaml": minimal}).Compile("x"); bp == nil {
		t.Fatalf("the minimal blueprint does not compile: %v\n%v", err, ds)
	}
	exts := []string{"", "x", "x@1.0.0", "x@2.0.0", "y", "y@1.0.0", "X", "x@9.9.9"}
	for _, ex := range exts {
		for _, ey := range exts {
			for _, ex2 := range exts {
				files := map[string]string{"x/1.0.0.yaml": minimal, "x/2.0.0.yaml": minimal, "y/1.0.0.yaml": minimal}
				for name, ext := range map[string]string{"x/1.0.0.yaml": ex, "y/1.0.0.yaml": ey, "x/2.0.0.yaml": ex2} {
					if ext != "" {
						files[name] = "extends: " + ext + "\n"
					}
				}
				cat := catalogOf(t, files)
				for _, ref := range []string{"x@1.0.0", "x@2.0.0", "y@1.0.0"} {
					bp, ds, err := cat.Compile(ref)
					if bp == nil && !ds.HasErrors() {
						t.Errorf("x@1 extends %q, x@2 %q, y@1 %q: %s does not compile (%v) and no diagnostic says why", ex, ex2, ey, ref, err)
					}
				}
			}
		}
	}
}

// A catalog entry over the size limit is refused with its size, without
// being read whole, when compiled or extended.
func TestCatalogEntryTooLarge(t *testing.T) {
	big := minimal + "# " + strings.Repeat("x", 2<<20) + "\n"
	cat := catalogOf(t, map[string]string{"x/1.0.0.yaml": big, "y/1.0.0.yaml": "extends: x\n"})
	want := fmt.Sprintf("x/1.0.0.yaml:1:1: error file_too_large: file is %d bytes; the limit is 1048576 bytes (1 MiB)", len(big))
	if bp, ds, _ := cat.Compile("x"); bp != nil || ds.Error() != want {
		t.Errorf("diagnostics:\n%v\nwant:\n%s", ds, want)
	}
	if bp, ds, _ := cat.Compile("y"); bp != nil || ds.Error() != want+"\ny/1.0.0.yaml:1:10: error extends_invalid: base blueprint x@1.0.0 has errors" {
		t.Errorf("diagnostics of an overlay:\n%v", ds)
	}
}
