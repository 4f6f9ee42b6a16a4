package engine_test

import (
	"testing"
	"testing/fstest"

	"github.com/blueprint-engine/blueprint/engine"
)

// KEY alone resolves to the newest release, by semver order, and to a
// pre-release only when there is no release.
func TestResolveNewest(t *testing.T) {
	file := func() *fstest.MapFile { return &fstest.MapFile{Data: []byte("key: x\n")} }
	for _, tt := range []struct {
		files []string
		want  string
	}{
		{[]string{"0.9.0", "0.10.0", "0.2.0"}, "0.10.0"},
		{[]string{"0.10.0", "0.11.0-rc.1"}, "0.10.0"},
		{[]string{"1.0.0-rc.1", "1.0.0-rc.2"}, "1.0.0-rc.2"},
		{[]string{"1.0.0-rc.1", "1.0.0"}, "1.0.0"},
	} {
		fsys := fstest.MapFS{}
		for _, v := range tt.files {
			fsys["x/"+v+".yaml"] = file()
		}
		cat, err := engine.NewCatalog(fsys)
		if err != nil {
			t.Fatal(err)
		}
		e, err := cat.Resolve("x")
		if err != nil || e.Version != tt.want {
			t.Errorf("%v: Resolve(x) = %v, %v; want %s", tt.files, e, err, tt.want)
		}
		if e, err := cat.Resolve("x@" + tt.files[0]); err != nil || e.Version != tt.files[0] {
			t.Errorf("%v: an explicit version: %v, %v", tt.files, e, err)
		}
	}
}
