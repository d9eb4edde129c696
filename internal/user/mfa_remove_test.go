package user_test

import (
	"context"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// removeEnv is a service with TOTP keys and a ten-minute step-up window.
func removeEnv(t *testing.T, cfg user.Config) (*env, *flows.Service) {
	t.Helper()
	e := newEnv(t)
	cfg.ReauthWindow = 10 * time.Minute
	return e, e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, cfg)
}

// tokenActor is the actor of an access token, as a transport builds it.
func tokenActor(t *testing.T, svc *flows.Service, access string) user.Actor {
	t.Helper()
	a, _, err := svc.Authenticate(context.Background(), access)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signInWith signs u in with the password and, when secret is set, the
// TOTP code of the next step, and returns the token's actor.
func signInWith(t *testing.T, e *env, svc *flows.Service, u *user.User, secret string) user.Actor {
	t.Helper()
	if secret == "" {
		sess, err := svc.Auth(context.Background(), u.Email, strongPW)
		if err != nil || sess.AccessToken == "" {
			t.Fatalf("Auth = %+v, %v", sess, err)
		}
		return tokenActor(t, svc, sess.AccessToken)
	}
	e.clock.Add(factor.TOTPPeriod)
	sess, err := svc.CompleteMFA(context.Background(), challenge(t, svc, u.Email).Ticket, "totp", totpNow(t, e, secret))
	if err != nil {
		t.Fatalf("CompleteMFA: %v", err)
	}
	return tokenActor(t, svc, sess.AccessToken)
}

func factorsOf(t *testing.T, svc *flows.Service, u *user.User) ([]user.FactorInfo, int) {
	t.Helper()
	list, left, err := svc.Factors(context.Background(), actorOf(u), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return list, left
}

// TestOwnerRemovesFactors: the owner removes a factor only after a recent
// sign-in with it; the recovery codes stay while a factor is left and go
// with the last; nobody is mailed, since the owner did it.
func TestOwnerRemovesFactors(t *testing.T) {
	e, svc := removeEnv(t, user.Config{})
	ctx := context.Background()
	u := e.create(t, "olga@example.com", user.RoleUser)
	other := e.create(t, "pete@example.com", user.RoleUser)
	pwOnly := signInWith(t, e, svc, u, "")
	secret, _ := enrolTOTP(t, e, svc, u)
	e.clock.Add(factor.TOTPPeriod)
	secret2, _ := enrolTOTP(t, e, svc, u)
	list, left := factorsOf(t, svc, u)
	if len(list) != 2 || left != factor.RecoveryCodeCount {
		t.Fatalf("factors %+v, %d codes", list, left)
	}

	err := svc.RemoveFactor(ctx, pwOnly, u.ID, list[0].ID)
	wantErr(t, err, user.ErrReauthenticationRequired) // signed in without the factor
	wantCode(t, svc.RemoveFactor(ctx, signInWith(t, e, svc, other, ""), u.ID, list[0].ID), user.CodePermissionDenied)
	wantCode(t, svc.RemoveFactor(ctx, user.Actor{}, u.ID, list[0].ID), user.CodeUnauthenticated)

	strong := signInWith(t, e, svc, u, secret)
	wantCode(t, svc.RemoveFactor(ctx, strong, u.ID, other.ID), user.CodeNotFound)
	if err := svc.RemoveFactor(ctx, strong, u.ID, list[0].ID); err != nil {
		t.Fatalf("RemoveFactor: %v", err)
	}
	if l, left := factorsOf(t, svc, u); len(l) != 1 || l[0].ID != list[1].ID || left != factor.RecoveryCodeCount {
		t.Fatalf("after removing one of two: %+v, %d codes", l, left)
	}
	e.clock.Add(11 * time.Minute)
	stale := tokenActor(t, svc, mustRefresh(t, svc, e, u, secret2))
	wantErr(t, svc.RemoveFactors(ctx, stale, u.ID), user.ErrReauthenticationRequired)
	if err := svc.RemoveFactors(ctx, signInWith(t, e, svc, u, secret2), u.ID); err != nil {
		t.Fatalf("RemoveFactors: %v", err)
	}
	if l, left := factorsOf(t, svc, u); len(l) != 0 || left != 0 {
		t.Fatalf("after removing the last: %+v, %d codes", l, left)
	}
	if sess, err := svc.Auth(ctx, u.Email, strongPW); err != nil || sess.MFA != nil {
		t.Errorf("sign-in without factors: %+v, %v", sess, err)
	}
	if n := e.mail.notices(t, user.EventFactorsRemoved, u.Email); len(n) != 0 {
		t.Errorf("the owner's own removal mailed %d notices", len(n))
	}
}

// mustRefresh signs u in with the factor, then returns an access token
// refreshed from it now: a live session whose sign-in is as old as the
// clock says.
func mustRefresh(t *testing.T, svc *flows.Service, e *env, u *user.User, secret string) string {
	t.Helper()
	ctx := context.Background()
	e.clock.Add(factor.TOTPPeriod)
	sess, err := svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "totp", totpNow(t, e, secret))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(11 * time.Minute)
	r, err := svc.Refresh(ctx, sess.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	return r.AccessToken
}

// TestAdminRemovesFactors: an admin removes a user's factors (after their
// own step-up), and the user is mailed; the recovery codes go with the
// last factor; a password reset, by contrast, removes nothing
// (TestFactorSurvivesPasswordReset).
func TestAdminRemovesFactors(t *testing.T) {
	e, svc := removeEnv(t, user.Config{})
	ctx := context.Background()
	u := e.create(t, "quinn@example.com", user.RoleUser)
	admin := e.create(t, "root@example.com", user.RoleAdmin)
	enrolTOTP(t, e, svc, u)
	adminActor := signInWith(t, e, svc, admin, "")
	list, _ := factorsOf(t, svc, u)

	e.clock.Add(11 * time.Minute)
	wantErr(t, svc.RemoveFactor(ctx, adminActor, u.ID, list[0].ID), user.ErrReauthenticationRequired)
	if n := e.mail.notices(t, user.EventFactorsRemoved, u.Email); len(n) != 0 {
		t.Fatalf("a refused removal mailed %d notices", len(n))
	}
	if err := svc.RemoveFactor(ctx, signInWith(t, e, svc, admin, ""), u.ID, list[0].ID); err != nil {
		t.Fatalf("admin RemoveFactor: %v", err)
	}
	if l, left := factorsOf(t, svc, u); len(l) != 0 || left != 0 {
		t.Fatalf("after the admin removed the only factor: %+v, %d codes", l, left)
	}
	n := e.mail.notices(t, user.EventFactorsRemoved, u.Email)
	if len(n) != 1 || n[0].Name != u.Name {
		t.Fatalf("notices %+v, want one to %s", n, u.Email)
	}
	// The CLI removes too (no token, no step-up), and the user is told.
	enrolTOTP(t, e, svc, u)
	if err := svc.RemoveFactors(ctx, user.SystemActor, u.ID); err != nil {
		t.Fatalf("SystemActor RemoveFactors: %v", err)
	}
	if n := e.mail.notices(t, user.EventFactorsRemoved, u.Email); len(n) != 2 {
		t.Errorf("%d notices after the CLI's removal, want 2", len(n))
	}
}

// TestRequireAdminMFALastFactor: with USERSVC_REQUIRE_ADMIN_MFA on, an
// admin may not remove their own last factor (they enrol another first),
// but may remove one of two, and another admin may remove it for them.
func TestRequireAdminMFALastFactor(t *testing.T) {
	e, svc := removeEnv(t, user.Config{RequireAdminMFA: true})
	ctx := context.Background()
	admin := e.create(t, "ada@example.com", user.RoleAdmin)
	peer := e.create(t, "bea@example.com", user.RoleAdmin)
	// An admin with no factor yet may drop an abandoned enrolment.
	abandoned, err := svc.EnrolTOTP(ctx, user.Actor{ID: admin.ID, Role: user.RoleUser}, admin.ID, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RemoveFactor(ctx, signInWith(t, e, svc, admin, ""), admin.ID, abandoned.FactorID); err != nil {
		t.Fatalf("removing an unconfirmed enrolment: %v", err)
	}
	secret, _ := enrolTOTP(t, e, svc, admin)
	e.clock.Add(factor.TOTPPeriod)
	enrolTOTP(t, e, svc, admin)
	list, _ := factorsOf(t, svc, admin)
	strong := signInWith(t, e, svc, admin, secret)
	if err := svc.RemoveFactor(ctx, strong, admin.ID, list[1].ID); err != nil {
		t.Fatalf("removing one of two: %v", err)
	}
	wantCode(t, svc.RemoveFactor(ctx, strong, admin.ID, list[0].ID), user.CodeFailedPrecondition)
	wantCode(t, svc.RemoveFactors(ctx, strong, admin.ID), user.CodeFailedPrecondition)
	if l, left := factorsOf(t, svc, admin); len(l) != 1 || left != factor.RecoveryCodeCount {
		t.Fatalf("a refused removal removed: %+v, %d codes", l, left)
	}
	peerSecret, _ := enrolTOTP(t, e, svc, peer)
	if err := svc.RemoveFactors(ctx, signInWith(t, e, svc, peer, peerSecret), admin.ID); err != nil {
		t.Fatalf("another admin removing it: %v", err)
	}
}

// TestStepUpForAdminWrites: every write of an admin on another account —
// create, update, delete, ending sessions — needs a recent sign-in; their
// own name does not; reads do not; a service account's token has no
// sign-in and is bounded by its scopes instead.
func TestStepUpForAdminWrites(t *testing.T) {
	e, svc := removeEnv(t, user.Config{})
	ctx := context.Background()
	admin := e.create(t, "root@example.com", user.RoleAdmin)
	u := e.create(t, "rosa@example.com", user.RoleUser)
	fresh := signInWith(t, e, svc, admin, "")
	e.clock.Add(11 * time.Minute)
	stale := fresh
	name, role := "Rosa R.", user.RoleAdmin
	in := user.CreateInput{Email: "sam@example.com", Password: strongPW, Name: "Sam"}
	_, err := svc.Create(ctx, stale, in)
	wantErr(t, err, user.ErrReauthenticationRequired)
	_, err = svc.Update(ctx, stale, u.ID, user.UpdateInput{Name: &name})
	wantErr(t, err, user.ErrReauthenticationRequired)
	_, err = svc.Update(ctx, stale, u.ID, user.UpdateInput{Role: &role})
	wantErr(t, err, user.ErrReauthenticationRequired)
	wantErr(t, svc.EndSessions(ctx, stale, u.ID), user.ErrReauthenticationRequired)
	wantErr(t, svc.Delete(ctx, stale, u.ID), user.ErrReauthenticationRequired)
	if _, err := svc.Get(ctx, stale, u.ID); err != nil {
		t.Errorf("a read asked for step-up: %v", err)
	}
	if _, err := svc.Sessions(ctx, stale, u.ID); err != nil {
		t.Errorf("listing sessions asked for step-up: %v", err)
	}
	if _, err := svc.Update(ctx, stale, admin.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Errorf("the admin's own name asked for step-up: %v", err)
	}

	now := signInWith(t, e, svc, admin, "")
	if _, err := svc.Create(ctx, now, in); err != nil {
		t.Errorf("Create after a fresh sign-in: %v", err)
	}
	if _, err := svc.Update(ctx, now, u.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Errorf("Update after a fresh sign-in: %v", err)
	}
	if err := svc.EndSessions(ctx, now, u.ID); err != nil {
		t.Errorf("EndSessions after a fresh sign-in: %v", err)
	}
	if err := svc.Delete(ctx, now, u.ID); err != nil {
		t.Errorf("Delete after a fresh sign-in: %v", err)
	}

	machine := user.Actor{ID: "0190a8e4-0000-7000-8000-0000000000aa", ServiceAccount: true, Scopes: []user.Scope{user.ScopeAdmin}}
	for _, op := range []user.Op{user.OpCreate, user.OpProfile, user.OpDelete, user.OpSessions, user.OpRemoveFactors} {
		if machine.NeedsStepUp(op, u.ID) {
			t.Errorf("a service account's op %d needs step-up", op)
		}
	}
	if stale.NeedsStepUp(user.OpProfile, admin.ID) || !stale.NeedsStepUp(user.OpRemoveFactors, admin.ID) {
		t.Error("the owner's rule: a name change needs no step-up, a factor removal does")
	}
}

// TestRemoveFactorsBehindTheCache: wired as the service is (the cached
// store in front, factors from the database), a removal runs in the
// database's transaction, where the factors, the codes and the mail's
// event go together.
func TestRemoveFactorsBehindTheCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cached := cache.NewStore(e.store, cache.NewLocal(100), cache.Options{})
	svc := e.with(t, func(d *flows.Deps) {
		d.Store, d.Factors, d.MFAKeys = cached, e.store.(factor.Store), mfaKeys(t)
	}, user.Config{})
	u := e.create(t, "uma@example.com", user.RoleUser)
	enrolTOTP(t, e, svc, u)
	if err := svc.RemoveFactors(ctx, user.SystemActor, u.ID); err != nil {
		t.Fatalf("RemoveFactors behind the cache: %v", err)
	}
	if l, left := factorsOf(t, svc, u); len(l) != 0 || left != 0 {
		t.Fatalf("after the removal: %+v, %d codes", l, left)
	}
	if n := e.mail.notices(t, user.EventFactorsRemoved, u.Email); len(n) != 1 {
		t.Errorf("%d notices, want 1", len(n))
	}
}
