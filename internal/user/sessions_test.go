package user_test

import (
	"context"
	"errors"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// A user sees their live sessions and ends them all at once: every access
// and refresh token issued before stops working; only the user themself
// and admins may do either.
func TestSessionsListAndEnd(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.create(t, "alice@example.com", user.RoleUser)
	other := e.create(t, "bob@example.com", user.RoleUser)
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	s1, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(1)
	s2, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Sessions(ctx, actorOf(u), u.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("Sessions = %+v, %v; want two", got, err)
	}
	_, err = e.svc.Sessions(ctx, actorOf(other), u.ID)
	wantCode(t, err, user.CodePermissionDenied)
	wantCode(t, e.svc.EndSessions(ctx, actorOf(other), u.ID), user.CodePermissionDenied)
	wantCode(t, e.svc.EndSessions(ctx, actorOf(admin), "not-a-uuid"), user.CodeInvalidArgument)
	if err := e.svc.EndSessions(ctx, actorOf(admin), u.ID); err != nil {
		t.Fatalf("admin EndSessions: %v", err)
	}
	for _, s := range []*user.Session{s1, s2} {
		if _, err := e.svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("access token after EndSessions: %v, want %v", err, user.ErrInvalidToken)
		}
		if _, err := e.svc.Refresh(ctx, s.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("refresh token after EndSessions: %v, want %v", err, user.ErrInvalidToken)
		}
	}
	if got, err := e.svc.Sessions(ctx, actorOf(admin), u.ID); err != nil || len(got) != 0 {
		t.Errorf("Sessions after EndSessions = %+v, %v; want none", got, err)
	}
	// The user ends their own, and signs in again as usual.
	s3, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.EndSessions(ctx, actorOf(u), u.ID); err != nil {
		t.Fatalf("own EndSessions: %v", err)
	}
	if _, err := e.svc.Validate(ctx, s3.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("own access token after EndSessions: %v", err)
	}
}
