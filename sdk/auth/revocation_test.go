package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/sdk/auth"
)

func TestRevocationSet(t *testing.T) {
	clk := testenv.NewClock(t0)
	set := auth.NewRevocationSet(clk.Now)
	user := func(jti, sid string, sv int64, iat time.Time) *auth.Principal {
		return &auth.Principal{Kind: auth.KindUser, ID: "u-1", TokenID: jti, SessionID: sid, SessionVersion: sv, IssuedAt: iat}
	}
	until := t0.Add(16 * time.Minute)
	set.Apply(auth.Revocation{ID: "1", At: t0, Until: until, TokenID: "jti-a", SessionID: "fam-a", Reason: auth.ReasonLogout})
	set.Apply(auth.Revocation{ID: "2", At: t0, Until: until, Subject: "u-1", SessionVersionBelow: 5, Reason: auth.ReasonPasswordChanged})
	set.Apply(auth.Revocation{ID: "3", At: t0, Until: until, Subject: "sa-1", IssuedThrough: t0, Reason: auth.ReasonClientRevoked})
	set.Apply(auth.Revocation{ID: "4", At: t0, Until: t0, TokenID: "already-expired"})

	cases := []struct {
		name    string
		p       *auth.Principal
		revoked bool
	}{
		{"logged-out token", user("jti-a", "fam-x", 5, t0), true},
		{"another token of the ended session", user("jti-b", "fam-a", 5, t0), true},
		{"older session version", user("jti-c", "fam-c", 4, t0), true},
		{"current session version", user("jti-d", "fam-d", 5, t0), false},
		{"service account token of that second", &auth.Principal{Kind: auth.KindServiceAccount, ID: "sa-1", TokenID: "x", IssuedAt: t0}, true},
		{"service account token of the next second", &auth.Principal{Kind: auth.KindServiceAccount, ID: "sa-1", TokenID: "y", IssuedAt: t0.Add(time.Second)}, false},
		{"expired revocation ignored", user("already-expired", "", 5, t0), false},
	}
	for _, c := range cases {
		err := set.Check(c.p)
		if c.revoked != errors.Is(err, auth.ErrRevoked) || (!c.revoked && err != nil) {
			t.Errorf("%s: err = %v, want revoked %v", c.name, err, c.revoked)
		}
	}
	// Idempotent, and a later rule of a subject only widens it.
	set.Apply(auth.Revocation{ID: "2", At: t0, Until: until, Subject: "u-1", SessionVersionBelow: 5})
	set.Apply(auth.Revocation{ID: "5", At: t0, Until: until, Subject: "u-1", SessionVersionBelow: 2})
	if err := set.Check(user("jti-e", "", 4, t0)); !errors.Is(err, auth.ErrRevoked) {
		t.Fatalf("a lower sv_below narrowed the rule: %v", err)
	}
}

func TestRevocationSweep(t *testing.T) {
	clk := testenv.NewClock(t0)
	set := auth.NewRevocationSet(clk.Now)
	for i := range 1000 {
		set.Apply(auth.Revocation{ID: "a", At: t0, Until: t0.Add(time.Minute), TokenID: string(rune('a'+i%26)) + time.Duration(i).String()})
	}
	clk.Add(2 * time.Minute)
	for i := range 1100 {
		set.Apply(auth.Revocation{ID: "b", At: clk.Now(), Until: clk.Now().Add(time.Minute), TokenID: "b" + time.Duration(i).String()})
	}
	if n := set.Len(); n > 1100 {
		t.Fatalf("expired revocations kept: %d entries", n)
	}
}

func TestParseRevocation(t *testing.T) {
	for _, body := range []string{`{`, `{"id":"1"}`, `{"id":"1","at":"2026-01-01T00:00:00Z","until":"2026-01-01T00:16:00Z"}`,
		`{"id":"1","at":"2026-01-01T00:00:00Z","until":"2026-01-01T00:16:00Z","sub":"u"}`} {
		if _, err := auth.ParseRevocation([]byte(body)); err == nil {
			t.Errorf("ParseRevocation(%s) accepted", body)
		}
	}
	r, err := auth.ParseRevocation([]byte(`{"id":"1","reason":"logout","at":"2026-01-01T00:00:00Z","until":"2026-01-01T00:16:00Z","jti":"j"}`))
	if err != nil || r.TokenID != "j" || r.Reason != auth.ReasonLogout {
		t.Fatalf("r = %+v, err = %v", r, err)
	}
}

// TestVerifierAsksRevocations: a revoked token is refused even when its
// verification is cached.
func TestVerifierAsksRevocations(t *testing.T) {
	set := auth.NewRevocationSet(nil)
	f := newFixture(t, func(c *auth.Config) { c.Revocations = set })
	tok := f.token(t, nil)
	ctx := context.Background()
	if _, err := f.v.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	set.Apply(auth.Revocation{ID: "1", At: time.Now(), Until: time.Now().Add(time.Hour), SessionID: "fam-1"})
	if _, err := f.v.Verify(ctx, tok); !errors.Is(err, auth.ErrRevoked) || !errors.Is(err, auth.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrRevoked", err)
	}
}
