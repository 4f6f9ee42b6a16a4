//go:build !(386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm)

package runtime

// bigEndian: words loaded from memory hold their first byte highest.
const bigEndian = true
