//go:build unix

package outbox

import (
	"os"
	"syscall"
)

// chownLike gives path the owner of fi, where this process may.
func chownLike(path string, fi os.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		_ = os.Chown(path, int(st.Uid), int(st.Gid))
	}
}
