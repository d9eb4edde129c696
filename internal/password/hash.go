package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrMalformedHash is wrapped by every error Verify returns for an encoded
// hash it cannot use. A stored hash that fails to parse is a data problem
// (corruption, a hash from another scheme), not a wrong password, so callers
// should log it loudly rather than just report a failed login.
var ErrMalformedHash = errors.New("password: malformed argon2id hash")

// Parameter bounds. Params.Validate enforces them on the hasher's own
// parameters, and Verify enforces the same bounds on parameters read back from
// an encoded hash. Without a ceiling, a corrupted or attacker-written database
// row could make one Verify call allocate up to 4 TiB (m is a uint32 in KiB)
// or run for hours. Sharing one set of bounds means every hash this package
// produces can also be verified. A corrupted row with an in-range m can still
// cost up to 4 GiB. If deployments never use more than a few hundred MiB,
// lowering maxMemoryKiB closes that gap.
const (
	// maxMemoryKiB is 4 GiB. RFC 9106's first recommended option uses 2 GiB,
	// so valid settings stay well below this ceiling.
	maxMemoryKiB = 4 << 20
	// maxIterations: OWASP's settings use t <= 5. t > 100 at any useful
	// memory cost means multi-second logins, so the value is surely an error.
	maxIterations = 100
	// RFC 9106 recommends a 16-byte salt and a 32-byte tag. The floors stop
	// salts so short that they repeat across users and tags short enough to
	// collide. The ceilings only leave room for growth.
	minSaltLength = 8
	maxSaltLength = 64
	minKeyLength  = 16
	maxKeyLength  = 64
	// maxEncodedLength is well above the longest valid hash (about 220
	// bytes). Checking it first means a huge string is never split or
	// base64-decoded.
	maxEncodedLength = 512
)

const algorithmID = "argon2id"

// phcBase64 is the PHC string format's encoding: standard alphabet, no
// padding. Strict rejects non-zero trailing bits, so each hash has only one
// valid encoding. It is a function so the package has no shared variable.
func phcBase64() *base64.Encoding { return base64.RawStdEncoding.Strict() }

// Params are argon2id cost parameters.
type Params struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLength  uint32 // bytes
	KeyLength   uint32 // bytes
}

// DefaultParams returns the OWASP Password Storage Cheat Sheet's baseline
// argon2id settings (m=19 MiB, t=2, p=1). They are the cheapest settings OWASP
// still recommends, which suits a service that hashes on every login. The
// 16-byte salt and 32-byte key are the sizes RFC 9106 recommends. Raise Memory
// first if the login latency budget allows, because memory is what makes
// GPU/ASIC cracking expensive.
func DefaultParams() Params {
	return Params{
		Memory:      19 * 1024,
		Iterations:  2,
		Parallelism: 1,
		SaltLength:  16,
		KeyLength:   32,
	}
}

// Validate rejects parameters that argon2 would silently adjust or panic on,
// are too weak to be meaningful, or are so large that they point to a
// configuration mistake. Verify applies the same bounds to parameters read
// from encoded hashes. The error names the offending field.
func (p Params) Validate() error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("password: %w", err)
	}
	return nil
}

func (p Params) validate() error {
	switch {
	case p.Parallelism < 1:
		return fmt.Errorf("Params.Parallelism must be at least 1, got %d", p.Parallelism)
	case uint64(p.Memory) < 8*uint64(p.Parallelism):
		// argon2 needs 8 KiB per lane and silently raises m below that,
		// so the encoded m would not match the work actually done.
		return fmt.Errorf("Params.Memory must be at least 8*Parallelism = %d KiB, got %d KiB",
			8*uint64(p.Parallelism), p.Memory)
	case p.Memory > maxMemoryKiB:
		return fmt.Errorf("Params.Memory must be at most %d KiB (4 GiB), got %d KiB", maxMemoryKiB, p.Memory)
	case p.Iterations < 1:
		return fmt.Errorf("Params.Iterations must be at least 1, got %d", p.Iterations)
	case p.Iterations > maxIterations:
		return fmt.Errorf("Params.Iterations must be at most %d, got %d", maxIterations, p.Iterations)
	case p.SaltLength < minSaltLength || p.SaltLength > maxSaltLength:
		return fmt.Errorf("Params.SaltLength must be between %d and %d bytes, got %d",
			minSaltLength, maxSaltLength, p.SaltLength)
	case p.KeyLength < minKeyLength || p.KeyLength > maxKeyLength:
		return fmt.Errorf("Params.KeyLength must be between %d and %d bytes, got %d",
			minKeyLength, maxKeyLength, p.KeyLength)
	}
	return nil
}

// Hasher hashes and verifies passwords with fixed argon2id parameters. It is
// immutable and safe for concurrent use. Create it with NewHasher; the zero
// value refuses to hash.
type Hasher struct {
	params Params
}

// NewHasher checks p once at startup, so that a bad configuration fails at
// boot instead of on the first login.
func NewHasher(p Params) (*Hasher, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Hasher{params: p}, nil
}

// hash computes a new salted argon2id hash; see Hash.
func (h *Hasher) hash(password string) (string, error) {
	// Checked on every call because the zero Hasher has Iterations == 0,
	// which makes argon2 panic.
	if err := h.params.validate(); err != nil {
		return "", fmt.Errorf("password: hasher not created by NewHasher: %w", err)
	}
	salt := make([]byte, h.params.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: generating salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt,
		h.params.Iterations, h.params.Memory, h.params.Parallelism, h.params.KeyLength)
	return h.encode(salt, key), nil
}

// encode formats salt and key with the hasher's parameters as a PHC string.
func (h *Hasher) encode(salt, key []byte) string {
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		algorithmID, argon2.Version,
		h.params.Memory, h.params.Iterations, h.params.Parallelism,
		phcBase64().EncodeToString(salt), phcBase64().EncodeToString(key))
}

// Unmatchable returns an encoded hash with the hasher's parameters, a random
// salt and a random key: verifying any password against it costs exactly
// what verifying against a real hash costs, and fails (the chance of a
// match is that of guessing KeyLength random bytes). It is the dummy a
// login for an unknown email is checked against. Making it needs no argon2
// run: hashing a random password instead took one whole hash (19 MiB,
// tens of ms) on the start-up path of every process.
func (h *Hasher) Unmatchable() (string, error) {
	if err := h.params.validate(); err != nil {
		return "", fmt.Errorf("password: hasher not created by NewHasher: %w", err)
	}
	salt := make([]byte, h.params.SaltLength)
	key := make([]byte, h.params.KeyLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: generating salt: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("password: generating key: %w", err)
	}
	return h.encode(salt, key), nil
}

// verify checks password against encoded; see Verify.
func (h *Hasher) verify(password, encoded string) (ok, needsRehash bool, err error) {
	stored, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got := argon2.IDKey([]byte(password), salt,
		stored.Iterations, stored.Memory, stored.Parallelism, stored.KeyLength)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	rehash := stored.Memory != h.params.Memory ||
		stored.Iterations != h.params.Iterations ||
		stored.Parallelism != h.params.Parallelism ||
		stored.KeyLength != h.params.KeyLength
	return true, rehash, nil
}

// decode parses a PHC argon2id string. It is strict: exact field order, only
// version 19, canonical unpadded base64, and parameters within
// Params.Validate bounds. It never returns a partly parsed result, and every
// error wraps ErrMalformedHash.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	malformed := func(format string, args ...any) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("%w: "+format, append([]any{ErrMalformedHash}, args...)...)
	}
	if len(encoded) > maxEncodedLength {
		return malformed("%d bytes long, longer than any valid hash", len(encoded))
	}
	// "$argon2id$v=19$m=..,t=..,p=..$salt$key" splits into 6 fields, the first empty.
	fields := strings.Split(encoded, "$")
	if len(fields) != 6 || fields[0] != "" {
		return malformed("want 5 '$'-separated fields, got %d", len(fields)-1)
	}
	if fields[1] != algorithmID {
		return malformed("algorithm %q is not %s", fields[1], algorithmID)
	}
	version, ok := strings.CutPrefix(fields[2], "v=")
	if !ok {
		return malformed("missing version field, got %q", fields[2])
	}
	if v, err := parseCanonicalUint(version, 32); err != nil || v != argon2.Version {
		// Only v=19 (0x13) is supported by x/crypto/argon2; 0x10 hashes would verify wrongly.
		return malformed("unsupported version %q, want %d", version, argon2.Version)
	}
	if p, err = parseCost(fields[3]); err != nil {
		return malformed("%w", err)
	}
	if salt, err = phcBase64().DecodeString(fields[4]); err != nil {
		return malformed("salt: %w", err)
	}
	if key, err = phcBase64().DecodeString(fields[5]); err != nil {
		return malformed("key: %w", err)
	}
	p.SaltLength, p.KeyLength = uint32(len(salt)), uint32(len(key))
	if err := p.validate(); err != nil {
		return malformed("%w", err)
	}
	return p, salt, key, nil
}

// parseCost parses "m=<uint32>,t=<uint32>,p=<uint8>" in that exact order.
// Parsing with the fields' own bit sizes turns overflow (e.g. p=256) into an
// error instead of a silent wrap-around.
func parseCost(s string) (Params, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return Params{}, fmt.Errorf("cost parameters %q: want m=,t=,p=", s)
	}
	var vals [3]uint64
	for i, spec := range []struct {
		prefix string
		bits   int
	}{{"m=", 32}, {"t=", 32}, {"p=", 8}} {
		digits, ok := strings.CutPrefix(parts[i], spec.prefix)
		if !ok {
			return Params{}, fmt.Errorf("cost parameter %q: want prefix %q", parts[i], spec.prefix)
		}
		v, err := parseCanonicalUint(digits, spec.bits)
		if err != nil {
			return Params{}, fmt.Errorf("cost parameter %q: %w", parts[i], err)
		}
		vals[i] = v
	}
	return Params{Memory: uint32(vals[0]), Iterations: uint32(vals[1]), Parallelism: uint8(vals[2])}, nil
}

// parseCanonicalUint parses a decimal number written the one way Hash
// writes it (no sign, no leading zeros), so only the exact string we
// produce verifies, not variants of it ("v=019", "m=+64").
func parseCanonicalUint(s string, bits int) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, err
	}
	if strconv.FormatUint(v, 10) != s {
		return 0, fmt.Errorf("%q is not a canonical decimal number", s)
	}
	return v, nil
}
