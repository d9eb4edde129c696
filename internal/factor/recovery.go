package factor

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// RecoveryCodeCount is how many recovery codes a person gets at a time.
const RecoveryCodeCount = 10

// A recovery code is recoveryCodeLen characters of Crockford's base32
// alphabet: 5 bits each, 80 bits in all, shown in groups of four
// ("7k3q-…"). The alphabet has no I, L, O or U, so nothing a person copies
// from paper is ambiguous, and reading it back forgives case, hyphens,
// spaces and the look-alikes I, L (1) and O (0).
const (
	recoveryCodeLen   = 16
	recoveryGroup     = 4
	crockfordAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
)

// recoveryHashLabel separates these hashes from every other SHA-256 the
// service stores.
const recoveryHashLabel = "usersvc recovery code v1\x00"

// NewRecoveryCodes returns RecoveryCodeCount fresh codes, formatted for
// showing (once) to their owner.
func NewRecoveryCodes() ([]string, error) {
	codes := make([]string, RecoveryCodeCount)
	buf := make([]byte, recoveryCodeLen)
	for i := range codes {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("factor: read random recovery code: %w", err)
		}
		var b strings.Builder
		for j, r := range buf {
			if j > 0 && j%recoveryGroup == 0 {
				b.WriteByte('-')
			}
			// 256 is a multiple of 32: masking to 5 bits is uniform.
			b.WriteByte(crockfordAlphabet[r&31])
		}
		codes[i] = b.String()
	}
	return codes, nil
}

// NormalizeRecoveryCode reads a code as a person types it: case, hyphens
// and spaces do not matter, and I, L and O read as 1, 1 and 0. It reports
// false for anything that cannot be a code.
func NormalizeRecoveryCode(s string) (string, bool) {
	if len(s) > 4*recoveryCodeLen { // bounds the work on junk
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch r {
		case '-', ' ':
			continue
		case 'i', 'l':
			r = '1'
		case 'o':
			r = '0'
		}
		if r > 0x7f || !strings.ContainsRune(crockfordAlphabet, r) {
			return "", false
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryCodeLen {
		return "", false
	}
	return b.String(), true
}

// HashRecoveryCode is what is stored for a code of userID, and what a typed
// code is looked up by: hex(SHA-256(label ‖ userID ‖ 0 ‖ normalised code)).
// It reports false when input cannot be a code.
//
// A fast hash is enough here, as for the refresh tokens: argon2 slows the
// guessing of low-entropy human secrets, and these codes carry 80 random
// bits, beyond any offline search of SHA-256. The user ID in the input
// makes each account's hashes its own, so a search could not try one
// guess against every stored code at once, and two accounts' equal codes
// (never expected) would not show as equal rows.
func HashRecoveryCode(userID, input string) (string, bool) {
	code, ok := NormalizeRecoveryCode(input)
	if !ok {
		return "", false
	}
	sum := sha256.Sum256([]byte(recoveryHashLabel + userID + "\x00" + code))
	return hex.EncodeToString(sum[:]), true
}
