// Package webauthntest is a software WebAuthn authenticator for tests: it
// answers the options a relying party hands the browser with real
// responses — a "none" attestation with an ES256 (P-256) key, and
// assertions signed by that key, with clientDataJSON, rpIdHash, flags and
// signature counter as a browser and authenticator make them — so tests
// run the relying party's whole verification (go-webauthn's) rather than
// a stand-in. Tests may bend it (Origin, SetCounter, UserVerified) to make
// the responses a misbehaving or hostile client would.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator holds discoverable credentials, like a platform
// authenticator or a security key with resident keys.
type Authenticator struct {
	mu sync.Mutex
	// Origin is what the "browser" puts in clientDataJSON; the RP id comes
	// from the options, as a browser checks it against the origin.
	Origin string
	// UserVerified sets the UV flag (default true: the person unlocked it).
	UserVerified bool
	creds        []*Credential
}

// Credential is one key pair the authenticator made.
type Credential struct {
	ID         []byte
	UserHandle []byte
	RPID       string
	key        *ecdsa.PrivateKey
	counter    uint32
}

// New returns an authenticator whose responses come from origin
// (e.g. "https://id.example.com").
func New(origin string) *Authenticator { return &Authenticator{Origin: origin, UserVerified: true} }

var b64 = base64.RawURLEncoding

// creationOptions is the part of protocol.CredentialCreation read here.
type creationOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Exclude []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
	} `json:"publicKey"`
}

// Register answers creation options (protocol.CredentialCreation JSON)
// with a new credential's attestation response, as
// navigator.credentials.create would.
func (a *Authenticator) Register(options []byte) (json.RawMessage, error) {
	var o creationOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: creation options: %w", err)
	}
	userHandle, err := b64.DecodeString(o.PublicKey.User.ID)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: user id: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ex := range o.PublicKey.Exclude {
		for _, c := range a.creds {
			if b64.EncodeToString(c.ID) == ex.ID {
				return nil, errors.New("webauthntest: InvalidStateError: a credential of the exclude list is here")
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	c := &Credential{ID: make([]byte, 32), UserHandle: userHandle, RPID: o.PublicKey.RP.ID, key: key}
	_, _ = rand.Read(c.ID)
	a.creds = append(a.creds, c)
	authData, err := a.attestedAuthData(c)
	if err != nil {
		return nil, err
	}
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		return nil, err
	}
	cdj := a.clientData("webauthn.create", o.PublicKey.Challenge)
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cdj), "attestationObject": b64.EncodeToString(att),
			"transports": []string{"internal"}},
	})
}

func (a *Authenticator) clientData(typ, challenge string) []byte {
	cdj, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return cdj
}

// flags are the authenticator data flags: user present, user verified
// (unless switched off), attested credential data with at.
func (a *Authenticator) flags(at bool) byte {
	f := byte(0x01) // UP
	if a.UserVerified {
		f |= 0x04 // UV
	}
	if at {
		f |= 0x40 // AT
	}
	return f
}

func (a *Authenticator) authData(c *Credential, at bool) []byte {
	rpHash := sha256.Sum256([]byte(c.RPID))
	out := append(rpHash[:], a.flags(at))
	return binary.BigEndian.AppendUint32(out, c.counter)
}

// attestedAuthData is the registration's authenticator data: with the
// AAGUID (zero, as a "none" attestation may), the credential id and its
// COSE public key.
func (a *Authenticator) attestedAuthData(c *Credential) ([]byte, error) {
	out := a.authData(c, true)
	out = append(out, make([]byte, 16)...) // AAGUID
	out = binary.BigEndian.AppendUint16(out, uint16(len(c.ID)))
	out = append(out, c.ID...)
	point, err := c.key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		return nil, err
	}
	x, y := point[1:33], point[33:65]
	mode, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	cose, err := mode.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y}) // EC2, ES256, P-256
	if err != nil {
		return nil, err
	}
	return append(out, cose...), nil
}

// requestOptions is the part of protocol.CredentialAssertion read here.
type requestOptions struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		Allow     []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// Assert answers request options (protocol.CredentialAssertion JSON) as
// navigator.credentials.get would: with the first credential of this RP
// in allowCredentials (or, without that list, the newest discoverable
// one), its counter moved forward by one.
func (a *Authenticator) Assert(options []byte) (json.RawMessage, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, fmt.Errorf("webauthntest: request options: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.pick(o)
	if c == nil {
		return nil, errors.New("webauthntest: NotAllowedError: no credential for these options")
	}
	c.counter++
	return a.sign(c, o.PublicKey.Challenge)
}

// AssertWith answers request options with credential id, whatever the
// options allow (a hostile client's choice), its counter moved forward.
func (a *Authenticator) AssertWith(options []byte, id []byte) (json.RawMessage, error) {
	var o requestOptions
	if err := json.Unmarshal(options, &o); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if slices.Equal(c.ID, id) {
			c.counter++
			return a.sign(c, o.PublicKey.Challenge)
		}
	}
	return nil, errors.New("webauthntest: no such credential")
}

func (a *Authenticator) pick(o requestOptions) *Credential {
	for i := len(a.creds) - 1; i >= 0; i-- {
		c := a.creds[i]
		if c.RPID != o.PublicKey.RPID {
			continue
		}
		if len(o.PublicKey.Allow) == 0 {
			return c
		}
		for _, al := range o.PublicKey.Allow {
			if al.ID == b64.EncodeToString(c.ID) {
				return c
			}
		}
	}
	return nil
}

// sign makes the assertion response of c for challenge.
func (a *Authenticator) sign(c *Credential, challenge string) (json.RawMessage, error) {
	authData := a.authData(c, false)
	cdj := a.clientData("webauthn.get", challenge)
	cdHash := sha256.Sum256(cdj)
	digest := sha256.Sum256(append(slices.Clone(authData), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, c.key, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(c.ID), "rawId": b64.EncodeToString(c.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"clientExtensionResults":  map[string]any{},
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cdj), "authenticatorData": b64.EncodeToString(authData),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(c.UserHandle)},
	})
}

// Credentials returns the authenticator's credentials, oldest first.
func (a *Authenticator) Credentials() []*Credential {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.creds)
}

// SetCounter sets credential id's signature counter (the next assertion
// sends n+1): a cloned authenticator's counter lags the original's.
func (a *Authenticator) SetCounter(id []byte, n uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.creds {
		if slices.Equal(c.ID, id) {
			c.counter = n
		}
	}
}

// OriginOf is the origin (scheme://host[:port]) of a URL, as a browser
// puts it in clientDataJSON.
func OriginOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	return u.Scheme + "://" + u.Host
}
