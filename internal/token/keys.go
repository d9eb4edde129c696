// Package token issues and verifies the service's credentials:
//
//   - short-lived JWT access tokens signed with Ed25519 (alg "EdDSA"), whose
//     public keys are published as a JWKS so other services can verify them
//     without calling us;
//   - opaque random tokens (refresh tokens, password-reset tokens) of which
//     only a hash is ever stored.
//
// Ed25519 is used because it has no parameters to get wrong (no curve or hash
// choice, no padding modes), signatures are deterministic (no nonce-reuse
// failure mode as with ECDSA), keys and signatures are small, and verification
// is fast. Accepting exactly one algorithm also closes the classic JWT
// algorithm-confusion holes ("alg":"none", HS256 keyed with a public key).
//
// All types in this package are immutable after construction and safe for
// concurrent use.
package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Key is one Ed25519 key pair identified by its key ID ("kid" in JWT headers
// and JWKS entries).
type Key struct {
	ID      string             // kid
	Private ed25519.PrivateKey // nil for a verification-only key
	Public  ed25519.PublicKey
}

// GenerateKey returns a fresh Ed25519 key whose ID is its RFC 7638 JWK
// thumbprint: the unpadded base64url SHA-256 of
// {"crv":"Ed25519","kty":"OKP","x":"<public key>"} (43 characters).
//
// A thumbprint rather than a random ID is used because it is derived from the
// key material: anyone holding the JWKS can recompute it, two different keys
// can never share a kid by accident, and it only contains [A-Za-z0-9_-] so it
// is safe as a file name (LoadDir stores keys as "<kid>.pem").
func GenerateKey() (Key, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("token: generate ed25519 key: %w", err)
	}
	return Key{ID: thumbprint(pub), Private: priv, Public: pub}, nil
}

// thumbprint computes the RFC 7638 JWK thumbprint of an Ed25519 public key
// (RFC 8037 §2 defines the required members: crv, kty, x, in that
// lexicographic order and without whitespace).
func thumbprint(pub ed25519.PublicKey) string {
	canonical := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// normalize checks a key's consistency and returns a deep copy of it, so the
// keyring cannot be changed behind its back by a caller reusing the slices.
// A missing public half is derived from the private half.
func (k Key) normalize() (Key, error) {
	if k.ID == "" {
		return Key{}, errors.New("key has an empty ID")
	}
	out := Key{ID: k.ID}
	if k.Private != nil {
		if len(k.Private) != ed25519.PrivateKeySize {
			return Key{}, fmt.Errorf("key %q: private key is %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
		}
		out.Private = slices.Clone(k.Private)
		derived := out.Private.Public().(ed25519.PublicKey)
		if k.Public != nil && !bytes.Equal(k.Public, derived) {
			return Key{}, fmt.Errorf("key %q: public key does not match private key", k.ID)
		}
		out.Public = derived
		return out, nil
	}
	if len(k.Public) != ed25519.PublicKeySize {
		return Key{}, fmt.Errorf("key %q: public key is %d bytes, want %d", k.ID, len(k.Public), ed25519.PublicKeySize)
	}
	out.Public = slices.Clone(k.Public)
	return out, nil
}

// Keyring holds one signing key and any number of verification keys.
//
// It exists for key rotation: after a new signing key is introduced, the old
// one stays in the ring as a verification key so that access tokens it signed
// keep verifying until they expire; once that has happened (one access-token
// TTL plus leeway) it can be removed. A Keyring is immutable; to rotate, build
// a new one (and a new Manager).
type Keyring struct {
	signing Key
	public  map[string]ed25519.PublicKey // every kid, including the signing key's
	jwks    []byte
}

// NewKeyring builds a keyring. The signing key must have a private half; the
// verification keys may or may not. Key IDs must be unique, since the kid is
// the only thing a token carries to pick its verification key.
func NewKeyring(signing Key, verifyOnly ...Key) (*Keyring, error) {
	if signing.Private == nil {
		return nil, fmt.Errorf("token: signing key %q has no private key", signing.ID)
	}
	s, err := signing.normalize()
	if err != nil {
		return nil, fmt.Errorf("token: signing key: %w", err)
	}
	kr := &Keyring{
		signing: s,
		public:  map[string]ed25519.PublicKey{s.ID: s.Public},
	}
	for _, v := range verifyOnly {
		n, err := v.normalize()
		if err != nil {
			return nil, fmt.Errorf("token: verification key: %w", err)
		}
		if _, dup := kr.public[n.ID]; dup {
			return nil, fmt.Errorf("token: duplicate key ID %q", n.ID)
		}
		kr.public[n.ID] = n.Public
	}
	if kr.jwks, err = kr.buildJWKS(); err != nil {
		return nil, err
	}
	return kr, nil
}

// SigningKeyID returns the kid that Issue puts in new tokens.
func (k *Keyring) SigningKeyID() string { return k.signing.ID }

// lookup returns the verification key for kid.
func (k *Keyring) lookup(kid string) (ed25519.PublicKey, bool) {
	pub, ok := k.public[kid]
	return pub, ok
}

// jwk is one RFC 8037 OKP public key in a JWKS. Field order is the output
// order; json.Marshal keeps it stable.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the RFC 7517 JSON Web Key Set holding every public key in the
// ring (signing and verification), sorted by kid so the output is stable and
// can be cached or diffed. Verifiers need the old keys too, for tokens signed
// before the last rotation. The document is computed once; each call returns
// a fresh copy the caller may modify.
func (k *Keyring) JWKS() ([]byte, error) {
	return slices.Clone(k.jwks), nil
}

func (k *Keyring) buildJWKS() ([]byte, error) {
	kids := make([]string, 0, len(k.public))
	for kid := range k.public {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(kids))}
	for _, kid := range kids {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP",
			Crv: "Ed25519",
			X:   base64.RawURLEncoding.EncodeToString(k.public[kid]),
			Kid: kid,
			Alg: "EdDSA",
			Use: "sig",
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: marshal JWKS: %w", err)
	}
	return b, nil
}
