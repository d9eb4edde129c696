// Package seal encrypts small secrets for storage (a TOTP seed, say) with
// AES-256-GCM under keys from configuration, each named by a key id so the
// keys can rotate: [Keyring.Seal] always uses the current key, and
// [Keyring.Open] opens a value sealed under any key still configured.
//
// It is a thin layer over the standard library's crypto/aes and
// crypto/cipher: no cryptography of its own, only the framing. A sealed
// value is text, safe in any column:
//
//	v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>
//
// The nonce is 96 random bits per value. A random GCM nonce is safe for
// about 2^32 values under one key (NIST SP 800-38D, section 8.3); a
// service seals one value per enrolment, far below that, and rotation
// starts the count again.
//
// Every value is bound to a context string by GCM's additional data (the
// caller passes, for example, "totp:" + the factor's id): a ciphertext
// copied into another row, or another user's, does not open there.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// MaxKeyIDLen bounds a key id, which travels in every sealed value.
const MaxKeyIDLen = 32

// version is the framing of a sealed value; a new framing gets a new one.
const version = "v1"

// maxSealed bounds the input Open parses: the secrets sealed here are tens
// of bytes, so anything near this is not one of ours.
const maxSealed = 64 << 10

// Key is one named key.
type Key struct {
	ID  string
	Key []byte // KeySize bytes
}

// Errors of Open. ErrUnknownKey means the value was sealed under a key that
// is no longer (or not yet) configured: an operator's mistake to fix in the
// configuration, not a forgery.
var (
	ErrMalformed  = errors.New("seal: malformed sealed value")
	ErrUnknownKey = errors.New("seal: sealed under a key that is not configured")
	ErrOpen       = errors.New("seal: value does not open (wrong key, wrong context or altered)")
)

// Keyring seals under its current key and opens under any of its keys. It
// is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a keyring of keys whose current key is the one named
// current ("" = the first of keys).
func NewKeyring(keys []Key, current string) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("seal: no keys")
	}
	if current == "" {
		current = keys[0].ID
	}
	k := &Keyring{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, key := range keys {
		if err := ValidKeyID(key.ID); err != nil {
			return nil, err
		}
		if len(key.Key) != KeySize {
			return nil, fmt.Errorf("seal: key %q is %d bytes, want %d", key.ID, len(key.Key), KeySize)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("seal: key id %q given twice", key.ID)
		}
		block, err := aes.NewCipher(key.Key)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("seal: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
	}
	if _, ok := k.aeads[current]; !ok {
		return nil, fmt.Errorf("seal: current key %q is not among the keys", current)
	}
	return k, nil
}

// ValidKeyID checks a key id: 1 to MaxKeyIDLen of A-Z, a-z, 0-9, '-' and
// '_', so it can never contain the '.' of the framing or the ',' and ':' of
// the configuration's list.
func ValidKeyID(id string) error {
	ok := id != "" && len(id) <= MaxKeyIDLen
	for _, r := range id {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}
	if !ok {
		return fmt.Errorf("seal: key id %q: want 1 to %d of A-Z, a-z, 0-9, - and _", id, MaxKeyIDLen)
	}
	return nil
}

// Current is the id of the key Seal uses.
func (k *Keyring) Current() string { return k.current }

// Seal encrypts plaintext under the current key, bound to context.
func (k *Keyring) Seal(plaintext []byte, context string) (string, error) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: read random nonce: %w", err)
	}
	box := aead.Seal(nonce, nonce, plaintext, []byte(context))
	return version + "." + k.current + "." + base64.RawURLEncoding.EncodeToString(box), nil
}

// Open decrypts a value Seal made under any configured key with the same
// context, and names the key it was sealed under.
func (k *Keyring) Open(sealed, context string) (plaintext []byte, keyID string, err error) {
	keyID, box, err := parse(sealed)
	if err != nil {
		return nil, "", err
	}
	aead, ok := k.aeads[keyID]
	if !ok {
		return nil, keyID, fmt.Errorf("%w: %q", ErrUnknownKey, keyID)
	}
	if len(box) < aead.NonceSize()+aead.Overhead() {
		return nil, keyID, ErrMalformed
	}
	plaintext, err = aead.Open(nil, box[:aead.NonceSize()], box[aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, keyID, ErrOpen
	}
	return plaintext, keyID, nil
}

// Reseal opens sealed and, when it was sealed under another key than the
// current one, seals it again under the current key; changed says whether
// it did. This is the step of a key rotation.
func (k *Keyring) Reseal(sealed, context string) (resealed string, changed bool, err error) {
	plaintext, keyID, err := k.Open(sealed, context)
	if err != nil {
		return "", false, err
	}
	if keyID == k.current {
		return sealed, false, nil
	}
	resealed, err = k.Seal(plaintext, context)
	return resealed, err == nil, err
}

// KeyID names the key a sealed value was sealed under, without opening it.
func KeyID(sealed string) (string, error) {
	id, _, err := parse(sealed)
	return id, err
}

func parse(sealed string) (keyID string, box []byte, err error) {
	if len(sealed) > maxSealed {
		return "", nil, ErrMalformed
	}
	v, rest, ok := strings.Cut(sealed, ".")
	if !ok || v != version {
		return "", nil, ErrMalformed
	}
	keyID, enc, ok := strings.Cut(rest, ".")
	if !ok || ValidKeyID(keyID) != nil {
		return "", nil, ErrMalformed
	}
	box, err = base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil {
		return "", nil, ErrMalformed
	}
	return keyID, box, nil
}

// ParseKeys reads the configuration's list of keys: comma-separated
// "<id>:<key>" entries, each key 32 bytes in standard or URL-safe base64
// (padded or not), e.g. the output of `openssl rand -base64 32`.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, enc, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, errors.New("want comma-separated <id>:<base64 of 32 bytes> entries")
		}
		if err := ValidKeyID(id); err != nil {
			return nil, err
		}
		key, err := decodeKey(strings.TrimSpace(enc))
		if err != nil || len(key) != KeySize {
			return nil, fmt.Errorf("key %q: want the base64 of %d random bytes (openssl rand -base64 32)", id, KeySize)
		}
		for _, k := range keys {
			if k.ID == id {
				return nil, fmt.Errorf("key id %q given twice", id)
			}
		}
		keys = append(keys, Key{ID: id, Key: key})
	}
	return keys, nil
}

func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// NewKey returns a random key, encoded as ParseKeys reads it.
func NewKey() (string, error) {
	b, err := randomKey()
	return base64.StdEncoding.EncodeToString(b), err
}

func randomKey() ([]byte, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("seal: read random key: %w", err)
	}
	return b, nil
}

// NewRandomKeyring returns a keyring of one new random key named id: for
// tests, and for a deployment's first key before it is written down.
func NewRandomKeyring(id string) (*Keyring, error) {
	b, err := randomKey()
	if err != nil {
		return nil, err
	}
	return NewKeyring([]Key{{ID: id, Key: b}}, id)
}
