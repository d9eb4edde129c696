// Package authtest mints access tokens shaped like the user service's, for
// tests of services that use package auth: no user service needed.
package authtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
)

// Issuer signs tokens with its own Ed25519 key.
type Issuer struct {
	KeyID            string
	Issuer, Audience string // default "usersvc"
	// Now is the clock for iat/exp; nil means time.Now.
	Now  func() time.Time
	priv ed25519.PrivateKey
	seq  atomic.Int64
}

// NewIssuer returns an issuer with a fresh key named kid.
func NewIssuer(kid string) *Issuer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(fmt.Sprintf("authtest: generate key: %v", err)) // the system's randomness failed
	}
	return &Issuer{KeyID: kid, Issuer: "usersvc", Audience: "usersvc", priv: priv}
}

// JWK is the issuer's public key as a JWKS entry.
func (i *Issuer) JWK() map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": i.KeyID, "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(i.priv.Public().(ed25519.PublicKey))}
}

// JWKS is the document listing the issuers' keys.
func JWKS(issuers ...*Issuer) []byte {
	keys := make([]map[string]string, 0, len(issuers))
	for _, i := range issuers {
		keys = append(keys, i.JWK())
	}
	b, _ := json.Marshal(map[string]any{"keys": keys}) // maps of strings always marshal
	return b
}

// Keys is a KeySource serving this issuer's JWKS.
func (i *Issuer) Keys() auth.KeySource {
	return auth.KeySourceFunc(func(context.Context) ([]byte, error) { return JWKS(i), nil })
}

// Sign signs claims. The header is {"alg":"EdDSA","typ":"JWT","kid":KeyID}
// with hdr's entries set over it (a nil value deletes one), so tests can
// forge any header.
func (i *Issuer) Sign(hdr, claims map[string]any) string {
	h := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": i.KeyID}
	for k, v := range hdr {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	in := encode(h) + "." + encode(claims)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(i.priv, []byte(in)))
}

func encode(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("authtest: marshal %T: %v", v, err)) // a test passed unmarshalable claims
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (i *Issuer) now() time.Time {
	if i.Now != nil {
		return i.Now()
	}
	return time.Now()
}

// UserClaims are a user token's claims as the user service writes them
// (15-minute lifetime, session "sid-<id>", sv 0, email verified), with
// over's entries set over them (a nil value deletes one).
func (i *Issuer) UserClaims(id, role string, over map[string]any) map[string]any {
	now := i.now()
	c := map[string]any{"iss": i.Issuer, "aud": i.Audience, "sub": id, "role": role, "sv": 0, "sid": "sid-" + id,
		"jti": fmt.Sprintf("jti-%s-%d", id, i.seq.Add(1)), "email_verified": true,
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// UserToken is a signed token of UserClaims.
func (i *Issuer) UserToken(id, role string, over map[string]any) string {
	return i.Sign(nil, i.UserClaims(id, role, over))
}

// ServiceToken is a signed service-account token granting scopes.
func (i *Issuer) ServiceToken(clientID string, scopes ...string) string {
	now := i.now()
	return i.Sign(nil, map[string]any{"iss": i.Issuer, "aud": i.Audience, "sub": clientID, "client_id": clientID,
		"scope": strings.Join(scopes, " "), "sv": 0, "jti": fmt.Sprintf("jti-%s-%d", clientID, i.seq.Add(1)),
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()})
}
