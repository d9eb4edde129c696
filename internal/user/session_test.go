package user_test

import (
	"context"
	"errors"
	"testing"

	"github.com/usersvc/usersvc/internal/revocation"
	"github.com/usersvc/usersvc/internal/user"
)

// denylist is the production denylist on the env's database.
func (e *env) denylist(t *testing.T) *revocation.List {
	t.Helper()
	l, err := revocation.New(context.Background(), e.mail.st, revocation.Options{Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// withDenylist builds a second service on the same store with a denylist.
func (e *env) withDenylist(t *testing.T, d user.Denylist) *user.Service {
	t.Helper()
	return e.with(t, func(deps *user.Deps) { deps.Denylist = d }, user.Config{})
}

// Disabling an account ends its sessions: enabling it again must not bring
// the tokens issued before back to life.
func TestDisableEndsSessions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.create(t, "alice@example.com", user.RoleUser)
	s, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	disabled, active := user.StatusDisabled, user.StatusActive
	for _, st := range []*user.Status{&disabled, &active} {
		if _, err := e.svc.Update(ctx, user.SystemActor, u.ID, user.UpdateInput{Status: st}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("access token from before the disable, after re-enabling: %v, want %v", err, user.ErrInvalidToken)
	}
	if _, err := e.svc.Refresh(ctx, s.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("refresh token from before the disable, after re-enabling: %v, want %v", err, user.ErrInvalidToken)
	}
	// The owner signs in again as usual.
	s2, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Validate(ctx, s2.AccessToken); err != nil {
		t.Errorf("new session: %v", err)
	}
}

// A refresh token presented twice means it leaked; the family is revoked,
// and the access tokens the family handed out die with it (they carry the
// family as their session id), not only its refresh tokens.
func TestRefreshReuseEndsTheFamilysAccessTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.withDenylist(t, e.denylist(t))
	e.create(t, "alice@example.com", user.RoleUser)
	s1, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	other, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := svc.Refresh(ctx, s1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Refresh(ctx, s1.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("reuse: %v", err)
	}
	for name, tok := range map[string]string{"first": s1.AccessToken, "rotated": s2.AccessToken} {
		if _, err := svc.Validate(ctx, tok); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("%s access token of a revoked family: %v, want %v", name, err, user.ErrInvalidToken)
		}
	}
	if _, err := svc.Validate(ctx, other.AccessToken); err != nil {
		t.Errorf("another session's access token: %v", err)
	}
	v, err := svc.Validate(ctx, other.AccessToken)
	if err == nil && v.Claims.SessionID == "" {
		t.Error("access token without a session id")
	}
}

// Logging out ends the session's refresh tokens and the access token
// presented with it, on every instance; the session's other access tokens
// live out their short lifetime (the documented contract of logout).
func TestLogoutDeniesThePresentedAccessToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.withDenylist(t, e.denylist(t))
	other := e.withDenylist(t, e.denylist(t)) // a second instance on the same database
	e.create(t, "alice@example.com", user.RoleUser)
	s1, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Revoke(ctx, s1.RefreshToken, s1.AccessToken); err != nil {
		t.Fatal(err)
	}
	for name, inst := range map[string]*user.Service{"this instance": svc, "another instance": other} {
		if _, err := inst.Validate(ctx, s1.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("%s: logged-out access token: %v, want %v", name, err, user.ErrInvalidToken)
		}
	}
	if _, err := other.Refresh(ctx, s1.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("logged-out refresh token: %v", err)
	}
}
