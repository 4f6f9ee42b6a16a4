package syntax

import (
	"io"
	"io/fs"
	"os"

	"github.com/blueprint-engine/blueprint/engine/diag"
)

// ReadFile reads a YAML file of fsys for Parse. A file over MaxFileSize is
// not read whole: it is refused (file_too_large, with its size) after
// MaxFileSize+1 bytes.
func ReadFile(fsys fs.FS, name string) ([]byte, diag.List) {
	f, err := fsys.Open(name)
	return read(name, f, err)
}

// ReadOSFile is ReadFile for a path of the operating system.
func ReadOSFile(name string) ([]byte, diag.List) {
	f, err := os.Open(name)
	return read(name, f, err)
}

// read reads f, opened as name (or not: err), within MaxFileSize, and
// closes it.
func read(name string, f fs.File, err error) ([]byte, diag.List) {
	var ds diag.List
	if err != nil {
		ds.Errorf(diag.Pos{File: name}, "read_error", "%v", err)
		return nil, ds
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		ds.Errorf(diag.Pos{File: name}, "read_error", "%v", err)
		return nil, ds
	}
	if len(src) > MaxFileSize {
		size := int64(len(src))
		if st, err := f.Stat(); err == nil && st.Size() > size {
			size = st.Size()
		}
		ds.Errorf(diag.Pos{File: name, Line: 1, Col: 1}, "file_too_large", "file is %d bytes; the limit is %d bytes (1 MiB)", size, MaxFileSize)
		return nil, ds
	}
	return src, nil
}
