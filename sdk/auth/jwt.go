package auth

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// MaxTokenSize is the largest token looked at: the header and payload are
// decoded before the signature can be checked, so that work is bounded for
// unauthenticated input. The user service's tokens are ~500 bytes.
const MaxTokenSize = 4 << 10

// algEdDSA is the only algorithm accepted: letting the token pick opens
// "alg":"none" and HS256-keyed-with-the-public-key forgeries.
const algEdDSA = "EdDSA"

// b64 is unpadded base64url that rejects non-canonical encodings (set
// trailing bits), so only the exact string issued verifies.
var b64 = base64.RawURLEncoding.Strict()

// header is the JOSE header. Crit is kept raw: its presence alone refuses
// the token (RFC 7515 §4.1.11; we understand no extension).
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Crit json.RawMessage `json:"crit"`
}

// payload is the claim set as the user service writes it (internal/token).
// Pointers tell a missing claim from a zero one.
type payload struct {
	Iss      string       `json:"iss"`
	Sub      string       `json:"sub"`
	Aud      audience     `json:"aud"`
	Exp      *numericDate `json:"exp"`
	Nbf      *numericDate `json:"nbf"`
	Iat      *numericDate `json:"iat"`
	Jti      string       `json:"jti"`
	Role     string       `json:"role"`
	SV       *int64       `json:"sv"`
	SID      string       `json:"sid"`
	ClientID string       `json:"client_id"`
	Scope    string       `json:"scope"`
	EV       *bool        `json:"email_verified"`
	AMR      []string     `json:"amr"`
	AuthTime *numericDate `json:"auth_time"`
}

// audience is "aud": a string or a list of strings (RFC 7519 §4.1.3).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return errors.New("aud is neither a string nor a list of strings")
	}
	*a = l
	return nil
}

// numericDate is a JWT NumericDate: seconds since the epoch, maybe
// fractional.
type numericDate struct{ time.Time }

func (d *numericDate) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return errors.New("a date claim is not a number")
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return errors.New("a date claim is out of range")
	}
	sec, frac := math.Modf(f)
	d.Time = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	return nil
}

// verifySignature splits tok, checks its header and signature and returns
// the decoded payload bytes.
func (v *Verifier) verifySignature(ctx context.Context, tok string) ([]byte, error) {
	h64, rest, ok1 := strings.Cut(tok, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return nil, invalid("not a JWS compact serialization")
	}
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return nil, invalid("header: %v", err)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, invalid("header: %v", err)
	}
	switch {
	case h.Alg != algEdDSA:
		return nil, invalid("algorithm %.16q not allowed", h.Alg)
	case h.Crit != nil:
		return nil, invalid(`unsupported "crit" header`)
	case h.Kid == "":
		return nil, invalid("missing kid")
	}
	sig, err := b64.DecodeString(s64)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, invalid("malformed signature")
	}
	key, err := v.keys.lookup(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	if !ed25519.Verify(key, []byte(tok[:len(h64)+1+len(p64)]), sig) {
		return nil, invalid("bad signature")
	}
	pb, err := b64.DecodeString(p64)
	if err != nil {
		return nil, invalid("payload: %v", err)
	}
	return pb, nil
}

// parse verifies tok and builds its principal.
func (v *Verifier) parse(ctx context.Context, tok string, now time.Time) (*Principal, error) {
	pb, err := v.verifySignature(ctx, tok)
	if err != nil {
		return nil, err
	}
	var c payload
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, invalid("claims: %v", err)
	}
	if err := v.checkClaims(&c, now); err != nil {
		return nil, err
	}
	p := &Principal{ID: c.Sub, TokenID: c.Jti, SessionVersion: *c.SV, IssuedAt: c.Iat.Time, ExpiresAt: c.Exp.Time}
	if c.ClientID != "" {
		if c.ClientID != c.Sub {
			return nil, invalid("client_id differs from sub")
		}
		p.Kind = KindServiceAccount
		p.Scopes = strings.Fields(c.Scope)
		return p, nil
	}
	if c.EV == nil || c.Role == "" {
		return nil, invalid("user token without role or email_verified")
	}
	p.Kind, p.Role, p.EmailVerified, p.SessionID, p.AMR = KindUser, c.Role, *c.EV, c.SID, c.AMR
	if c.AuthTime != nil {
		p.AuthTime = c.AuthTime.Time
	}
	return p, nil
}

// checkClaims checks what the user service's own parser checks: issuer,
// audience, times within the leeway, and the claims it always writes.
func (v *Verifier) checkClaims(c *payload, now time.Time) error {
	lw := v.cfg.Leeway
	switch {
	case c.Iss != v.cfg.Issuer:
		return invalid("issuer %.64q", c.Iss)
	case !containsAud(c.Aud, v.cfg.Audience):
		return invalid("audience %.64q", []string(c.Aud))
	case c.Sub == "" || c.Jti == "" || c.SV == nil || c.Iat == nil || c.Exp == nil:
		return invalid("missing one of sub, jti, sv, iat, exp")
	case c.Iat.After(now.Add(lw)):
		return invalid("issued in the future")
	case c.Nbf != nil && c.Nbf.After(now.Add(lw)):
		return invalid("not valid yet")
	case !now.Before(c.Exp.Add(lw)):
		return fmt.Errorf("%w at %v", ErrExpired, c.Exp.Time)
	}
	return nil
}

func containsAud(aud audience, want string) bool {
	for _, a := range aud {
		if a == want {
			return true
		}
	}
	return false
}
