package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Sealer encrypts values with AES-256-GCM under a subkey of a 32-byte key
// (LoadOrCreateKey's), derived with HKDF-SHA256 and an info string, so
// that values sealed for one purpose (the state file, the integrations
// topic) cannot be opened as the other's. Every value gets a random
// nonce and is bound to its additional data (the record and field it
// belongs to): a ciphertext moved to another record does not open. It is
// safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer derives the subkey of key for info.
func NewSealer(key []byte, info string) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("the secret key must be %d bytes, not %d", KeySize, len(key))
	}
	sub, err := hkdf.Key(sha256.New, key, nil, info, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the encryption key: %w", err)
	}
	block, err := aes.NewCipher(sub)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain, binding it to aad: version byte, 12-byte random
// nonce, ciphertext and tag.
func (s *Sealer) Seal(aad string, plain []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:1+nonceSize], plain, []byte(aad)), nil
}

// ErrDecrypt is what Open returns for a value it cannot open: damaged,
// sealed for other additional data, or with another key.
var ErrDecrypt = errors.New("a secret cannot be decrypted (sealed with another key, damaged, or moved from another record)")

// Open decrypts a value Seal made with the same key, info and aad.
func (s *Sealer) Open(aad string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrDecrypt
	}
	plain, err := s.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], []byte(aad))
	if err != nil {
		return nil, ErrDecrypt
	}
	return plain, nil
}
