package user_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// Guessing the current password through Update is guessing the password:
// it spends the same per-account budget as signing in, and once that is
// spent both are refused until the window moves on.
func TestCurrentPasswordGuessesSpendTheLoginBudget(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc, err := flows.New(flows.Deps{Store: e.store, Hasher: e.hasher, Policy: password.DefaultPolicy(), Tokens: e.tokens,
		PasswordAttempts: ratelimit.NewLocal(ratelimit.Rule{Limit: 3, Window: time.Minute}), Now: e.clock.Now}, user.Config{})
	if err != nil {
		t.Fatal(err)
	}
	u := e.create(t, "alice@example.com", user.RoleUser)
	if _, err := svc.Auth(ctx, "alice@example.com", strongPW); err != nil { // attempt 1
		t.Fatal(err)
	}
	newEmail, wrong, right := "mallory@example.com", "not the password", strongPW
	for range 2 { // attempts 2 and 3
		_, err := svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Email: &newEmail, CurrentPassword: &wrong})
		wantCode(t, err, user.CodeInvalidArgument)
	}
	before := e.hasher.verifies
	_, err = svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Email: &newEmail, CurrentPassword: &right})
	if !errors.Is(err, user.ErrTooManyAttempts) {
		t.Fatalf("guess past the budget: %v, want %v", err, user.ErrTooManyAttempts)
	}
	if ue := user.AsError(err); ue.RetryAfter <= 0 || ue.RetryAfter > time.Minute {
		t.Errorf("RetryAfter %v, want within the window", ue.RetryAfter)
	}
	if _, err := svc.Auth(ctx, "ALICE@example.com", strongPW); !errors.Is(err, user.ErrTooManyAttempts) {
		t.Errorf("sign-in after the guesses spent the budget: %v, want %v", err, user.ErrTooManyAttempts)
	}
	if e.hasher.verifies != before {
		t.Error("a refused attempt still verified a password")
	}
	// Changes that need no password are not limited.
	name := "Alice L"
	if _, err := svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Errorf("name change: %v", err)
	}
	// Another account has its own budget.
	e.create(t, "bob@example.com", user.RoleUser)
	if _, err := svc.Auth(ctx, "bob@example.com", strongPW); err != nil {
		t.Errorf("another account: %v", err)
	}
}
