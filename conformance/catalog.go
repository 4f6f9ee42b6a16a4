package conformance

import (
	"io/fs"
	"sort"

	"github.com/blueprint-engine/blueprint/engine/diag"
)

// FindFS lists the vector files (*.vectors.yaml) in a file system, sorted.
func FindFS(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && IsVectorFile(p) {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out, err
}

// LoadAllFS loads every vector file of a file system.
func LoadAllFS(fsys fs.FS) ([]*File, diag.List) {
	names, err := FindFS(fsys)
	var ds diag.List
	if err != nil {
		ds.Errorf(diag.Pos{}, "read_error", "%v", err)
		return nil, ds
	}
	var files []*File
	for _, n := range names {
		f, fds := LoadFS(fsys, n)
		ds = append(ds, fds...)
		if f != nil {
			files = append(files, f)
		}
	}
	return files, ds
}
