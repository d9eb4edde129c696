package user_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// published drains the outbox and returns the revocations written since
// the last call.
func (o *outbox) published(t *testing.T) []auth.Revocation {
	t.Helper()
	o.drain(t)
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.revocations
	o.revocations = nil
	return out
}

// principalOf is what the SDK's verifier makes of a token the service
// issued (its claims), without the key plumbing.
func principalOf(t *testing.T, tm *token.Manager, access string) *auth.Principal {
	t.Helper()
	c, err := tm.Parse(access)
	if err != nil {
		t.Fatal(err)
	}
	return &auth.Principal{Kind: auth.KindUser, ID: c.Subject, Role: c.Role, TokenID: c.ID, SessionID: c.SessionID,
		SessionVersion: c.SessionVersion, IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt}
}

// TestEveryRevocationIsPublished: each way a token stops being honoured
// publishes one revocation, which refuses in the SDK exactly the tokens
// the service's own Validate refuses: the old ones, not the new.
func TestEveryRevocationIsPublished(t *testing.T) {
	e := newEnv(t)
	svc := e.withDenylist(t, e.denylist(t))
	ctx := context.Background()
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	u := e.create(t, "ann@example.com", user.RoleUser)
	e.mail.published(t)

	pw := strongPW
	steps := []struct {
		reason string
		do     func(old *user.Session) error
	}{
		{auth.ReasonLogout, func(old *user.Session) error { return svc.Revoke(ctx, old.RefreshToken, old.AccessToken) }},
		{auth.ReasonSessionEnded, func(old *user.Session) error {
			if _, err := svc.Refresh(ctx, old.RefreshToken); err != nil {
				return err
			}
			_, err := svc.Refresh(ctx, old.RefreshToken) // reuse
			if !errors.Is(err, user.ErrInvalidToken) {
				t.Fatalf("reuse: %v", err)
			}
			return nil
		}},
		{auth.ReasonRoleChanged, func(*user.Session) error {
			r := user.RoleAdmin
			_, err := svc.Update(ctx, actorOf(admin), u.ID, user.UpdateInput{Role: &r})
			return err
		}},
		{auth.ReasonSessionsEnded, func(*user.Session) error { return svc.EndSessions(ctx, actorOf(admin), u.ID) }},
		{auth.ReasonPasswordChanged, func(*user.Session) error {
			next := "a different passphrase entirely"
			_, err := svc.Update(ctx, actorOf(admin), u.ID, user.UpdateInput{Password: &next})
			pw = next
			return err
		}},
		{auth.ReasonDisabled, func(*user.Session) error {
			st := user.StatusDisabled
			if _, err := svc.Update(ctx, actorOf(admin), u.ID, user.UpdateInput{Status: &st}); err != nil {
				return err
			}
			st = user.StatusActive
			_, err := svc.Update(ctx, actorOf(admin), u.ID, user.UpdateInput{Status: &st})
			return err
		}},
	}
	for _, step := range steps {
		old, err := svc.Auth(ctx, "ann@example.com", pw)
		if err != nil {
			t.Fatalf("%s: sign in: %v", step.reason, err)
		}
		e.mail.published(t)
		if err := step.do(old); err != nil {
			t.Fatalf("%s: %v", step.reason, err)
		}
		revs := e.mail.published(t)
		if len(revs) != 1 || revs[0].Reason != step.reason {
			t.Fatalf("%s: published %+v, want one %s", step.reason, revs, step.reason)
		}
		set := auth.NewRevocationSet(e.clock.Now)
		set.Apply(revs[0])
		if err := set.Check(principalOf(t, e.tokens, old.AccessToken)); !errors.Is(err, auth.ErrRevoked) {
			t.Errorf("%s: the SDK still honours the old token (%+v)", step.reason, revs[0])
		}
		if _, err := svc.Validate(ctx, old.AccessToken); !errors.Is(err, user.ErrInvalidToken) && step.reason != auth.ReasonRoleChanged {
			t.Errorf("%s: the service still honours the old token: %v", step.reason, err)
		}
		e.clock.Add(time.Second)
		fresh, err := svc.Auth(ctx, "ann@example.com", pw)
		if err != nil {
			t.Fatalf("%s: sign in again: %v", step.reason, err)
		}
		if err := set.Check(principalOf(t, e.tokens, fresh.AccessToken)); err != nil {
			t.Errorf("%s: the SDK refuses a token issued after the change: %v", step.reason, err)
		}
		if !revs[0].Until.After(old.AccessExpiresAt) {
			t.Errorf("%s: revocation kept until %v, before the old token expires at %v", step.reason, revs[0].Until, old.AccessExpiresAt)
		}
	}

	// A password reset and a deletion, each a revocation of everything.
	if err := svc.CreatePasswordReset(ctx, "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := e.mail.last(t, "ann@example.com")
	e.mail.published(t)
	if err := svc.ResetPassword(ctx, tok, "yet another good passphrase"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, actorOf(admin), u.ID); err != nil {
		t.Fatal(err)
	}
	acct, _, err := svc.CreateServiceAccount(ctx, user.SystemActor, "orders", []user.Scope{user.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeServiceAccount(ctx, user.SystemActor, acct.ID); err != nil {
		t.Fatal(err)
	}
	revs := e.mail.published(t)
	if len(revs) != 3 || revs[0].Reason != auth.ReasonPasswordChanged || revs[0].Subject != u.ID ||
		revs[1].Reason != auth.ReasonDeleted || revs[1].Subject != u.ID ||
		revs[2].Reason != auth.ReasonClientRevoked || revs[2].Subject != acct.ID {
		t.Fatalf("reset, delete, revoke account published %+v", revs)
	}
}
