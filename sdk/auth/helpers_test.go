package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// clock is a settable fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// signer mints tokens the way any issuer could, including malformed ones.
type signer struct {
	kid  string
	priv ed25519.PrivateKey
}

func newSigner(t testing.TB, kid string) signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, priv: priv}
}

func (s signer) jwk() map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": s.kid, "alg": "EdDSA", "use": "sig",
		"x": base64.RawURLEncoding.EncodeToString(s.priv.Public().(ed25519.PublicKey))}
}

func enc(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign signs claims under header (alg and kid filled in unless set).
func (s signer) sign(t testing.TB, hdr map[string]any, claims map[string]any) string {
	t.Helper()
	h := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": s.kid}
	for k, v := range hdr {
		if v == nil {
			delete(h, k)
		} else {
			h[k] = v
		}
	}
	in := enc(t, h) + "." + enc(t, claims)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.priv, []byte(in)))
}

// userClaims are a valid user token's claims at now, with overrides (a nil
// value deletes the claim).
func userClaims(now time.Time, over map[string]any) map[string]any {
	c := map[string]any{"iss": "usersvc", "aud": "usersvc", "sub": "user-1", "role": "user", "sv": 3,
		"sid": "fam-1", "jti": "jti-1", "email_verified": true,
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

// jwksServer is a KeySource serving the JWKS of its signers, counting
// fetches.
type jwksServer struct {
	mu      sync.Mutex
	signers []signer
	fetches int
	fail    error
}

func (j *jwksServer) set(s ...signer) { j.mu.Lock(); defer j.mu.Unlock(); j.signers = s }
func (j *jwksServer) count() int      { j.mu.Lock(); defer j.mu.Unlock(); return j.fetches }

func (j *jwksServer) FetchJWKS(context.Context) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fetches++
	if j.fail != nil {
		return nil, j.fail
	}
	keys := []map[string]string{}
	for _, s := range j.signers {
		keys = append(keys, s.jwk())
	}
	return json.Marshal(map[string]any{"keys": keys})
}

// fixture is a verifier on a fake clock and a JWKS of one signer.
type fixture struct {
	clk  *clock
	jwks *jwksServer
	key  signer
	v    *auth.Verifier
}

func newFixture(t testing.TB, mod func(*auth.Config)) *fixture {
	t.Helper()
	f := &fixture{clk: &clock{now: t0}, jwks: &jwksServer{}, key: newSigner(t, "k1")}
	f.jwks.set(f.key)
	cfg := auth.Config{Keys: f.jwks, Issuer: "usersvc", Audience: "usersvc", Now: f.clk.Now,
		Leeway: 10 * time.Second, RefetchFloor: 30 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	return f
}

func (f *fixture) token(t testing.TB, over map[string]any) string {
	return f.key.sign(t, nil, userClaims(f.clk.Now(), over))
}
