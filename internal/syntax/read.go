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
	if err != nil {
		var ds diag.List
		ds.Errorf(diag.Pos{File: name}, "read_error", "%v", err)
		return nil, ds
	}
	defer f.Close()
	return read(name, f)
}

// ReadOSFile is ReadFile for a path of the operating system.
func ReadOSFile(name string) ([]byte, diag.List) {
	f, err := os.Open(name)
	if err != nil {
		var ds diag.List
		ds.Errorf(diag.Pos{File: name}, "read_error", "%v", err)
		return nil, ds
	}
	defer f.Close()
	return read(name, f)
}

func read(name string, f fs.File) ([]byte, diag.List) {
	var ds diag.List
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
