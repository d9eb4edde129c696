package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// opaqueBytes is the entropy of an opaque token: 256 bits, far beyond what
// can be guessed online or searched offline.
const opaqueBytes = 32

// NewOpaque returns a new opaque token for refresh or password-reset use:
// plain is 32 bytes from crypto/rand encoded as unpadded base64url (43
// characters, safe in URLs, headers and cookies); hash is HashOpaque(plain).
//
// Give plain to the client once and store only hash, so that a leak of the
// database (or of a backup or log of it) does not hand out working tokens.
func NewOpaque() (plain string, hash string, err error) {
	var b [opaqueBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("token: read random bytes: %w", err)
	}
	plain = base64.RawURLEncoding.EncodeToString(b[:])
	return plain, HashOpaque(plain), nil
}

// HashOpaque returns hex(SHA-256(plain)), the value to store and look up.
//
// A fast hash is the right tool here, unlike for passwords: slow KDFs such as
// argon2 or bcrypt exist to make guessing low-entropy human secrets
// expensive, but these tokens carry 256 bits of entropy, so brute-forcing the
// hash is infeasible at any speed. A fast, unsalted, deterministic hash also
// lets the token be found by an indexed equality lookup on the hash. The
// string is hashed as given (not base64-decoded), so any input, well-formed
// or not, maps to a lookup key that matches nothing.
func HashOpaque(plain string) string {
	sum := sha256.Sum256([]byte(plain))
	return hex.EncodeToString(sum[:])
}
