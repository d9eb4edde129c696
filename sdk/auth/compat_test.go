package auth_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/sdk/auth"
)

// TestVerifiesWhatTheServiceIssues pins the claim format: tokens issued by
// the user service's own token package (internal/token) verify here with
// every field carried over, and the JWKS it serves is what ParseJWKS reads.
// A change to either side that breaks the other fails here.
func TestVerifiesWhatTheServiceIssues(t *testing.T) {
	key, err := token.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewManager(ring, token.Config{Issuer: "usersvc", Audience: "usersvc", TTL: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Issuer: "usersvc", Audience: "usersvc",
		Keys: auth.KeySourceFunc(func(context.Context) ([]byte, error) { return ring.JWKS() })})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	signIn := token.SignIn{AMR: []string{"pwd", "otp", "mfa"}, AuthTime: time.Now().Add(-time.Minute)}
	tok, c, err := m.Issue(ctx, "u-1", "admin", 7, "fam-9", true, signIn)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != auth.KindUser || p.ID != c.Subject || p.Role != "admin" || p.SessionVersion != 7 || p.SessionID != "fam-9" ||
		!p.EmailVerified || p.TokenID != c.ID || !p.IssuedAt.Equal(c.IssuedAt) || !p.ExpiresAt.Equal(c.ExpiresAt) ||
		!slices.Equal(p.AMR, c.AMR) || !p.AuthTime.Equal(c.AuthTime) || !p.SignedInWithin(time.Now(), 5*time.Minute, true) {
		t.Fatalf("user principal %+v from claims %+v", *p, c)
	}
	tok, _, err = m.Issue(ctx, "u-2", "user", 0, "", false, token.SignIn{})
	if err != nil {
		t.Fatal(err)
	}
	if p, err = v.Verify(ctx, tok); err != nil || p.EmailVerified || p.SessionID != "" || p.SignedInWithin(time.Now(), 0, false) {
		t.Fatalf("unverified user: %+v, %v", p, err)
	}

	tok, c, err = m.IssueClient(ctx, "sa-1", "users:read users:write")
	if err != nil {
		t.Fatal(err)
	}
	p, err = v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != auth.KindServiceAccount || p.ID != "sa-1" || !p.HasScope("users:read") || !p.HasScope("users:write") ||
		p.TokenID != c.ID {
		t.Fatalf("service-account principal %+v", *p)
	}

	// And the other way round: what the SDK refuses, the service refuses.
	other, err := auth.NewVerifier(auth.Config{Issuer: "usersvc", Audience: "billing",
		Keys: auth.KeySourceFunc(func(context.Context) ([]byte, error) { return ring.JWKS() })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Verify(ctx, tok); err == nil {
		t.Fatal("a verifier for another audience accepted the token")
	}
}
