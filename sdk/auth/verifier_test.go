package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authtest"
)

func TestVerifyUserToken(t *testing.T) {
	f := newFixture(t, nil)
	p, err := f.v.Verify(context.Background(), f.token(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Principal{Kind: auth.KindUser, ID: "user-1", Role: "user", EmailVerified: true, SessionID: "fam-1",
		TokenID: "jti-1", SessionVersion: 3, IssuedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}
	if p.Kind != want.Kind || p.ID != want.ID || p.Role != want.Role || !p.EmailVerified || p.SessionID != want.SessionID ||
		p.TokenID != want.TokenID || p.SessionVersion != 3 || !p.IssuedAt.Equal(t0) || !p.ExpiresAt.Equal(want.ExpiresAt) ||
		p.Scopes != nil {
		t.Fatalf("principal = %+v, want %+v", *p, want)
	}
	if f.jwks.count() != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", f.jwks.count())
	}
}

func TestVerifyServiceAccountToken(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t, map[string]any{"sub": "sa-1", "client_id": "sa-1", "scope": "users:read orders:write",
		"role": nil, "sid": nil, "email_verified": nil, "sv": 0})
	p, err := f.v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != auth.KindServiceAccount || p.ID != "sa-1" || !p.HasScope("orders:write") || p.HasScope("users:write") || p.IsUser() {
		t.Fatalf("principal = %+v", *p)
	}
}

// TestVerifyRefuses covers every way a token must be refused, each with
// the error class a caller acts on.
func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t, nil)
	other := authtest.NewIssuer("k1") // same kid, different key: a forgery
	now := f.clk.Now()
	cases := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", auth.ErrNoToken},
		{"garbage", "not.a.jwt", auth.ErrInvalidToken},
		{"two parts", "a.b", auth.ErrInvalidToken},
		{"oversized", strings.Repeat("a", auth.MaxTokenSize+1), auth.ErrInvalidToken},
		{"forged signature", other.Sign(nil, userClaims(now, nil)), auth.ErrInvalidToken},
		{"alg none", f.key.Sign(map[string]any{"alg": "none"}, userClaims(now, nil)), auth.ErrInvalidToken},
		{"alg HS256", f.key.Sign(map[string]any{"alg": "HS256"}, userClaims(now, nil)), auth.ErrInvalidToken},
		{"no kid", f.key.Sign(map[string]any{"kid": nil}, userClaims(now, nil)), auth.ErrInvalidToken},
		{"crit header", f.key.Sign(map[string]any{"crit": []string{"exp"}}, userClaims(now, nil)), auth.ErrInvalidToken},
		{"wrong issuer", f.token(t, map[string]any{"iss": "evil"}), auth.ErrInvalidToken},
		{"wrong audience", f.token(t, map[string]any{"aud": "billing"}), auth.ErrInvalidToken},
		{"wrong audience list", f.token(t, map[string]any{"aud": []string{"a", "b"}}), auth.ErrInvalidToken},
		{"expired", f.token(t, map[string]any{"exp": now.Add(-11 * time.Second).Unix()}), auth.ErrExpired},
		{"not yet valid", f.token(t, map[string]any{"nbf": now.Add(time.Minute).Unix()}), auth.ErrInvalidToken},
		{"issued in the future", f.token(t, map[string]any{"iat": now.Add(time.Minute).Unix()}), auth.ErrInvalidToken},
		{"no exp", f.token(t, map[string]any{"exp": nil}), auth.ErrInvalidToken},
		{"no sv", f.token(t, map[string]any{"sv": nil}), auth.ErrInvalidToken},
		{"no jti", f.token(t, map[string]any{"jti": nil}), auth.ErrInvalidToken},
		{"user without role", f.token(t, map[string]any{"role": nil}), auth.ErrInvalidToken},
		{"client id not subject", f.token(t, map[string]any{"client_id": "sa-2"}), auth.ErrInvalidToken},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.v.Verify(context.Background(), c.tok)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// The signature is checked before the claims: tampering with a valid
	// token's payload is a bad signature, not an expired token.
	parts := strings.Split(f.token(t, nil), ".")
	tampered := parts[0] + "." + enc(t, userClaims(now, map[string]any{"role": "admin"})) + "." + parts[2]
	if _, err := f.v.Verify(context.Background(), tampered); !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("tampered payload: err = %v", err)
	}
}

func TestVerifyLeeway(t *testing.T) {
	f := newFixture(t, nil)
	tok := f.token(t, nil)
	f.clk.Add(15*time.Minute + 9*time.Second)
	if _, err := f.v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	f.clk.Add(time.Second)
	// The verified cache must not outlive the expiry either.
	if _, err := f.v.Verify(context.Background(), tok); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("past leeway: err = %v, want ErrExpired", err)
	}
}

// TestUnknownKidRefetchFloor: an unknown kid refetches the JWKS once, and
// further unknown kids within the floor cost nothing; after the floor a
// rotated-in key is picked up.
func TestUnknownKidRefetchFloor(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.token(t, nil)); err != nil {
		t.Fatal(err)
	}
	// Past the floor since the first fetch: the first forged kid may ask.
	f.clk.Add(30 * time.Second)
	forged := authtest.NewIssuer("forged")
	for i := range 100 {
		_, err := f.v.Verify(ctx, forged.Sign(nil, userClaims(f.clk.Now(), map[string]any{"jti": i})))
		if !errors.Is(err, auth.ErrUnknownKey) {
			t.Fatalf("forged kid: err = %v, want ErrUnknownKey", err)
		}
	}
	if n := f.jwks.count(); n != 2 {
		t.Fatalf("JWKS fetched %d times for 100 forged kids, want 2 (start + one refetch)", n)
	}
	// Rotation: the service starts signing with k2 within the floor.
	k2 := authtest.NewIssuer("k2")
	f.jwks.set(f.key, k2)
	rotated := k2.Sign(nil, userClaims(f.clk.Now(), nil))
	if _, err := f.v.Verify(ctx, rotated); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("within the floor: err = %v, want ErrUnknownKey", err)
	}
	f.clk.Add(30 * time.Second)
	if _, err := f.v.Verify(ctx, rotated); err != nil {
		t.Fatalf("after the floor: %v", err)
	}
	if n := f.jwks.count(); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}
	// The old key still verifies (tokens signed before the rotation).
	if _, err := f.v.Verify(ctx, f.token(t, map[string]any{"jti": "old"})); err != nil {
		t.Fatal(err)
	}
}

func TestKeysUnavailable(t *testing.T) {
	f := newFixture(t, nil)
	f.jwks.fail = errors.New("connection refused")
	if _, err := f.v.Verify(context.Background(), f.token(t, nil)); !errors.Is(err, auth.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	f.jwks.fail = nil
	f.clk.Add(30 * time.Second)
	if _, err := f.v.Verify(context.Background(), f.token(t, nil)); err != nil {
		t.Fatalf("after the service came back: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	for _, doc := range []string{`{}`, `{"keys":[]}`, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AAAA"}]}`, `[`} {
		if _, err := auth.ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted", doc)
		}
	}
	keys, err := auth.ParseJWKS([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"x","e":"AQAB"},` +
		`{"kty":"OKP","crv":"Ed25519","kid":"e","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	if err != nil || len(keys) != 1 || keys["e"] == nil {
		t.Fatalf("keys = %v, err = %v", keys, err)
	}
}

func TestConfigRequired(t *testing.T) {
	for _, cfg := range []auth.Config{{}, {Keys: &jwksServer{}}, {Keys: &jwksServer{}, Issuer: "i"},
		{Keys: &jwksServer{}, Issuer: "i", Audience: "a", Leeway: -1}} {
		if _, err := auth.NewVerifier(cfg); err == nil {
			t.Errorf("NewVerifier(%+v) accepted", cfg)
		}
	}
}

// TestRetiredKeyStopsVerifying: once the keys are older than KeyMaxAge, a
// token signed with a key the service no longer publishes is refused; a
// failed refetch keeps the old keys.
func TestRetiredKeyStopsVerifying(t *testing.T) {
	f := newFixture(t, func(c *auth.Config) { c.KeyMaxAge = time.Hour })
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, f.token(t, nil)); err != nil {
		t.Fatal(err)
	}
	f.jwks.fail = errors.New("connection refused")
	f.clk.Add(time.Hour)
	if _, err := f.v.Verify(ctx, f.token(t, map[string]any{"jti": "during-outage"})); err != nil {
		t.Fatalf("stale keys, JWKS unreachable: %v (want the old keys kept)", err)
	}
	f.jwks.fail = nil
	f.jwks.set(authtest.NewIssuer("k2"))
	f.clk.Add(30 * time.Second) // past the floor since the failed attempt
	if _, err := f.v.Verify(ctx, f.token(t, map[string]any{"jti": "after-retirement"})); !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("retired key: err = %v, want ErrUnknownKey", err)
	}
	if n := f.jwks.count(); n != 3 {
		t.Fatalf("JWKS fetched %d times, want 3", n)
	}
}
