package user_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/usersvc/usersvc/internal/user"
)

// Nobody may leave the platform without an active admin: not the last
// admin themself, and not another caller (an internal one, or an admin
// whose token predates their own demotion).
func TestLastActiveAdminStays(t *testing.T) {
	ctx := context.Background()
	disabled, demoted := user.StatusDisabled, user.RoleUser
	wantLast := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, user.ErrLastAdmin) {
			t.Fatalf("%s: %v, want %v", what, err, user.ErrLastAdmin)
		}
		if user.CodeOf(err) != user.CodeFailedPrecondition {
			t.Fatalf("%s: code %s, want %s", what, user.CodeOf(err), user.CodeFailedPrecondition)
		}
	}
	e := newEnv(t)
	root := e.create(t, "root@example.com", user.RoleAdmin)
	wantLast(t, "self-delete", e.svc.Delete(ctx, actorOf(root), root.ID))
	for name, actor := range map[string]user.Actor{"system": user.SystemActor, "stale admin token": {ID: "0190a8e4-0000-7000-8000-000000000001", Role: user.RoleAdmin}} {
		wantLast(t, name+" deletes", e.svc.Delete(ctx, actor, root.ID))
		_, err := e.svc.Update(ctx, actor, root.ID, user.UpdateInput{Status: &disabled})
		wantLast(t, name+" disables", err)
		_, err = e.svc.Update(ctx, actor, root.ID, user.UpdateInput{Role: &demoted})
		wantLast(t, name+" demotes", err)
	}
	// A disabled admin is no admin: it does not make root expendable.
	other := e.create(t, "other@example.com", user.RoleAdmin)
	if _, err := e.svc.Update(ctx, user.SystemActor, other.ID, user.UpdateInput{Status: &disabled}); err != nil {
		t.Fatalf("disable the second admin: %v", err)
	}
	wantLast(t, "delete with only a disabled second admin", e.svc.Delete(ctx, user.SystemActor, root.ID))
	// With a second active admin, either may go.
	enabled := user.StatusActive
	if _, err := e.svc.Update(ctx, user.SystemActor, other.ID, user.UpdateInput{Status: &enabled}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, actorOf(root), root.ID); err != nil {
		t.Fatalf("an admin who is not the last deletes themself: %v", err)
	}
	wantLast(t, "the survivor deletes themself", e.svc.Delete(ctx, actorOf(other), other.ID))
	if u, err := e.svc.Get(ctx, user.SystemActor, other.ID); err != nil || u.Role != user.RoleAdmin || u.Status != user.StatusActive {
		t.Fatalf("the last admin changed: %+v, %v", u, err)
	}
}

// Two admins removed at the same moment: the check and the change are one
// step, so exactly one of them goes.
func TestConcurrentAdminRemovalsLeaveOne(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	a := e.create(t, "a@example.com", user.RoleAdmin)
	b := e.create(t, "b@example.com", user.RoleAdmin)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{a.ID, b.ID} {
		wg.Go(func() { errs[i] = e.svc.Delete(ctx, user.SystemActor, id) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, user.ErrLastAdmin):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of two concurrent deletions of the only two admins succeeded, want 1", ok)
	}
}
