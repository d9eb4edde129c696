package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authtest"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// userClaims are a valid user token's claims at now (user-1, session
// fam-1, sv 3, jti-1), with overrides (a nil value deletes the claim).
func userClaims(now time.Time, over map[string]any) map[string]any {
	claims := map[string]any{"sv": 3, "sid": "fam-1", "jti": "jti-1"}
	maps.Copy(claims, over)
	shape := authtest.NewIssuer("")
	shape.Now = func() time.Time { return now }
	return shape.UserClaims("user-1", auth.RoleUser, claims)
}

func enc(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// jwksServer is a KeySource serving the JWKS of its issuers, counting
// fetches.
type jwksServer struct {
	mu      sync.Mutex
	issuers []*authtest.Issuer
	fetches int
	fail    error
}

func (j *jwksServer) set(s ...*authtest.Issuer) { j.mu.Lock(); defer j.mu.Unlock(); j.issuers = s }
func (j *jwksServer) count() int                { j.mu.Lock(); defer j.mu.Unlock(); return j.fetches }

func (j *jwksServer) FetchJWKS(context.Context) ([]byte, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fetches++
	if j.fail != nil {
		return nil, j.fail
	}
	return authtest.JWKS(j.issuers...), nil
}

// fixture is a verifier on a fake clock and a JWKS of one issuer.
type fixture struct {
	clk  *testenv.Clock
	jwks *jwksServer
	key  *authtest.Issuer
	v    *auth.Verifier
}

func newFixture(t testing.TB, mod func(*auth.Config)) *fixture {
	t.Helper()
	f := &fixture{clk: testenv.NewClock(t0), jwks: &jwksServer{}, key: authtest.NewIssuer("k1")}
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

func (f *fixture) token(_ testing.TB, over map[string]any) string {
	return f.key.Sign(nil, userClaims(f.clk.Now(), over))
}
