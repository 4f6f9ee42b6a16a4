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
	return ReadFileMax(fsys, name, MaxFileSize)
}

// ReadFileMax is ReadFile with a size limit of max bytes.
func ReadFileMax(fsys fs.FS, name string, max int) ([]byte, diag.List) {
	f, err := fsys.Open(name)
	return read(name, f, err, max)
}

// ReadOSFile is ReadFile for a path of the operating system.
func ReadOSFile(name string) ([]byte, diag.List) { return ReadOSFileMax(name, MaxFileSize) }

// ReadOSFileMax is ReadOSFile with a size limit of max bytes.
func ReadOSFileMax(name string, max int) ([]byte, diag.List) {
	f, err := os.Open(name)
	return read(name, f, err, max)
}

// read reads f, opened as name (or not: err), within max bytes, and
// closes it.
func read(name string, f fs.File, err error, max int) ([]byte, diag.List) {
	var ds diag.List
	if err != nil {
		ds.Errorf(diag.Pos{File: name}, "read_error", "%v", err)
		return nil, ds
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		ds.Errorf(diag.Pos{File: name}, "read_error", "%v", err)
		return nil, ds
	}
	if len(src) > max {
		size := int64(len(src))
		if st, err := f.Stat(); err == nil && st.Size() > size {
			size = st.Size()
		}
		ds.Errorf(diag.Pos{File: name, Line: 1, Col: 1}, "file_too_large", "file is %d bytes; the limit is %d bytes (%s)", size, max, sizeText(max))
		return nil, ds
	}
	return src, nil
}
