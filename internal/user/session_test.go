package user_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/revocation"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
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
func (e *env) withDenylist(t *testing.T, d user.Denylist) *flows.Service {
	t.Helper()
	return e.with(t, func(deps *flows.Deps) { deps.Denylist = d }, user.Config{})
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
	for name, inst := range map[string]*flows.Service{"this instance": svc, "another instance": other} {
		if _, err := inst.Validate(ctx, s1.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("%s: logged-out access token: %v, want %v", name, err, user.ErrInvalidToken)
		}
	}
	if _, err := other.Refresh(ctx, s1.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("logged-out refresh token: %v", err)
	}
}

// A session ends on the server when it was not refreshed for the idle
// timeout, and at its absolute lifetime however active it is; the refresh
// token says when it will end at the latest.
func TestSessionIdleTimeoutAndMaxLifetime(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc, err := flows.New(flows.Deps{Store: e.store, Hasher: e.hasher, Policy: password.DefaultPolicy(), Tokens: e.tokens,
		Now: e.clock.Now}, user.Config{SessionIdleTimeout: time.Hour, SessionMaxLifetime: 150 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e.create(t, "alice@example.com", user.RoleUser)

	idle, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(time.Hour); !idle.RefreshExpiresAt.Equal(want) {
		t.Errorf("refresh token expires %v, want the idle timeout %v", idle.RefreshExpiresAt, want)
	}
	e.clock.Add(time.Hour)
	if _, err := svc.Refresh(ctx, idle.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("refresh after an hour idle: %v, want %v", err, user.ErrInvalidToken)
	}

	active, err := svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	start := e.clock.Now()
	for range 2 { // 50 and 100 minutes in
		e.clock.Add(50 * time.Minute)
		if active, err = svc.Refresh(ctx, active.RefreshToken); err != nil {
			t.Fatalf("refresh of an active session: %v", err)
		}
	}
	// The store keeps microseconds.
	if want := start.Add(150 * time.Minute).Truncate(time.Microsecond); !active.RefreshExpiresAt.Equal(want) {
		t.Errorf("refresh token expires %v, want the session's end %v", active.RefreshExpiresAt, want)
	}
	e.clock.Add(50 * time.Minute)
	if _, err := svc.Refresh(ctx, active.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("refresh at the absolute lifetime: %v, want %v", err, user.ErrInvalidToken)
	}
}
