//go:build !(amd64 || arm64 || 386 || ppc64le)

package runtime

import "encoding/binary"

// load64 reads the eight bytes of b at i as a little-endian word, byte by
// byte where unaligned loads trap, are emulated, or are big-endian.
func load64(b []byte, i int) uint64 { return binary.LittleEndian.Uint64(b[i:]) }
