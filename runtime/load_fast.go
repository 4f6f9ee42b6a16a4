//go:build amd64 || arm64 || 386 || ppc64le

package runtime

import "unsafe"

// load64 reads the eight bytes of b at i (i+8 <= len(b), checked by the
// caller) as a little-endian word: one unaligned load, which these
// little-endian architectures do in hardware.
func load64(b []byte, i int) uint64 {
	return *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), i))
}
