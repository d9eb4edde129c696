package user_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/seal"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

func mfaKeys(t *testing.T) *seal.Keyring {
	t.Helper()
	ring, err := seal.NewRandomKeyring("k1")
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// enrolTOTP enrols and confirms a TOTP factor for u and returns its secret
// and the recovery codes the confirmation handed out.
func enrolTOTP(t *testing.T, e *env, svc *flows.Service, u *user.User) (string, []string) {
	t.Helper()
	ctx := context.Background()
	enrol, err := svc.EnrolTOTP(ctx, actorOf(u), u.ID, "phone")
	if err != nil {
		t.Fatalf("EnrolTOTP: %v", err)
	}
	if len(enrol.QRPNG) == 0 || enrol.URI == "" || enrol.Secret == "" {
		t.Fatalf("enrolment %+v", enrol)
	}
	codes, err := svc.ConfirmTOTP(ctx, actorOf(u), u.ID, enrol.FactorID, totpNow(t, e, enrol.Secret))
	if err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	return enrol.Secret, codes
}

func totpNow(t *testing.T, e *env, secret string) string {
	t.Helper()
	c, err := factor.TOTPCode(secret, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func challenge(t *testing.T, svc *flows.Service, email string) *user.MFAChallenge {
	t.Helper()
	sess, err := svc.Auth(context.Background(), email, strongPW)
	if err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if sess.MFA == nil || sess.AccessToken != "" || sess.RefreshToken != "" || sess.User != nil {
		t.Fatalf("Auth of an account with a factor: %+v, want only a challenge", sess)
	}
	return sess.MFA
}

// TestTOTPSignIn walks the whole flow: enrolment is inactive until one code
// confirms it; a password sign-in then answers a challenge, not tokens; the
// ticket with a code starts a session whose tokens carry amr and auth_time
// (through a refresh too); the same code is refused the second time, and
// the ticket is good once.
func TestTOTPSignIn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{})
	u := e.create(t, "alice@example.com", user.RoleUser)

	enrol, err := svc.EnrolTOTP(ctx, actorOf(u), u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if sess, err := svc.Auth(ctx, u.Email, strongPW); err != nil || sess.MFA != nil || sess.AccessToken == "" {
		t.Fatalf("an unconfirmed enrolment asked for a factor: %+v, %v", sess, err)
	}
	_, err = svc.ConfirmTOTP(ctx, actorOf(u), u.ID, enrol.FactorID, "000000")
	if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["code"] == "" {
		t.Errorf("a wrong confirmation code: %v, want the field named", err)
	}
	codes, err := svc.ConfirmTOTP(ctx, actorOf(u), u.ID, enrol.FactorID, totpNow(t, e, enrol.Secret))
	if err != nil || len(codes) != factor.RecoveryCodeCount {
		t.Fatalf("ConfirmTOTP = %d codes, %v", len(codes), err)
	}
	list, left, err := svc.Factors(ctx, actorOf(u), u.ID)
	if err != nil || len(list) != 1 || !list[0].Active || list[0].Name != "authenticator" || left != factor.RecoveryCodeCount {
		t.Fatalf("Factors = %+v, %d, %v", list, left, err)
	}

	// The confirming code's step is spent: the next step's code signs in.
	e.clock.Add(factor.TOTPPeriod)
	ch := challenge(t, svc, u.Email)
	if !slices.Equal(ch.Factors, []string{"totp", "recovery_code"}) || !ch.ExpiresAt.Equal(e.clock.Now().Add(5*time.Minute)) {
		t.Errorf("challenge %+v", ch)
	}
	code := totpNow(t, e, enrol.Secret)
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "totp", "123")
	wantErr(t, err, user.ErrBadFactorCode)
	signedIn := e.clock.Now()
	sess, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", code)
	if err != nil || sess.AccessToken == "" || sess.User.ID != u.ID {
		t.Fatalf("CompleteMFA = %+v, %v", sess, err)
	}
	wantSignIn(t, e, sess.AccessToken, []string{"pwd", "otp", "mfa"}, signedIn)
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "totp", code)
	wantErr(t, err, user.ErrMFATicketInvalid)

	// Replay of the same code with a new ticket: refused.
	_, err = svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "totp", code)
	wantErr(t, err, user.ErrBadFactorCode)

	// A refresh keeps the sign-in's amr and auth_time.
	e.clock.Add(2 * time.Minute)
	refreshed, err := svc.Refresh(ctx, sess.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	wantSignIn(t, e, refreshed.AccessToken, []string{"pwd", "otp", "mfa"}, signedIn)
}

func wantSignIn(t *testing.T, e *env, access string, amr []string, at time.Time) {
	t.Helper()
	c, err := e.tokens.Parse(access)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.AMR, amr) || !c.AuthTime.Equal(at.UTC().Truncate(time.Second)) {
		t.Errorf("token amr %v auth_time %v, want %v %v", c.AMR, c.AuthTime, amr, at.UTC().Truncate(time.Second))
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// TestPasswordOnlySignInCarriesPwd: an account without a factor signs in
// as before, its tokens saying so.
func TestPasswordOnlySignInCarriesPwd(t *testing.T) {
	e := newEnv(t)
	u := e.create(t, "bob@example.com", user.RoleUser)
	sess, err := e.svc.Auth(context.Background(), u.Email, strongPW)
	if err != nil || sess.MFA != nil {
		t.Fatalf("Auth = %+v, %v", sess, err)
	}
	wantSignIn(t, e, sess.AccessToken, []string{token.AMRPassword}, e.clock.Now())
}

// TestRecoveryCodeWorksOnce: a code completes one sign-in; the same code
// again is refused; regenerating replaces all of them.
func TestRecoveryCodeWorksOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{})
	u := e.create(t, "carol@example.com", user.RoleUser)
	_, codes := enrolTOTP(t, e, svc, u)

	sess, err := svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "recovery_code", codes[3])
	if err != nil {
		t.Fatal(err)
	}
	wantSignIn(t, e, sess.AccessToken, []string{"pwd", "rcode", "mfa"}, e.clock.Now())
	_, err = svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "recovery_code", codes[3])
	wantErr(t, err, user.ErrBadFactorCode)
	if _, left, _ := svc.Factors(ctx, actorOf(u), u.ID); left != factor.RecoveryCodeCount-1 {
		t.Errorf("%d codes left, want %d", left, factor.RecoveryCodeCount-1)
	}

	fresh, err := svc.RegenerateRecoveryCodes(ctx, actorOf(u), u.ID)
	if err != nil || len(fresh) != factor.RecoveryCodeCount {
		t.Fatalf("RegenerateRecoveryCodes = %v, %v", fresh, err)
	}
	_, err = svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "recovery_code", codes[4])
	wantErr(t, err, user.ErrBadFactorCode)
	if _, err := svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "recovery_code", fresh[0]); err != nil {
		t.Errorf("a regenerated code: %v", err)
	}
}

// TestFactorAttemptsSpendThePasswordBudget: code guesses and password
// guesses share one per-account budget.
func TestFactorAttemptsSpendThePasswordBudget(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) {
		d.MFAKeys = mfaKeys(t)
		d.PasswordAttempts = ratelimit.NewLocal(ratelimit.Rule{Limit: 4, Window: time.Minute})
	}, user.Config{})
	u := e.create(t, "dave@example.com", user.RoleUser)
	secret, _ := enrolTOTP(t, e, svc, u) // attempt 1 (the confirmation)
	e.clock.Add(factor.TOTPPeriod)
	ch := challenge(t, svc, u.Email) // attempt 2 (the password)
	for range 2 {                    // attempts 3 and 4
		_, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", "000000")
		wantErr(t, err, user.ErrBadFactorCode)
	}
	_, err := svc.CompleteMFA(ctx, ch.Ticket, "totp", totpNow(t, e, secret))
	wantErr(t, err, user.ErrTooManyAttempts)
	_, err = svc.Auth(ctx, u.Email, strongPW)
	wantErr(t, err, user.ErrTooManyAttempts)
}

// TestFactorsAreTheOwnersAlone: nobody else, admins included, enrols or
// lists a user's factors; without keys TOTP is unavailable; a ticket
// expires.
func TestFactorsAreTheOwnersAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{})
	u := e.create(t, "erin@example.com", user.RoleUser)
	admin := e.create(t, "root@example.com", user.RoleAdmin)
	_, err := svc.EnrolTOTP(ctx, actorOf(admin), u.ID, "x")
	wantCode(t, err, user.CodePermissionDenied)
	_, _, err = svc.Factors(ctx, actorOf(admin), u.ID)
	wantCode(t, err, user.CodePermissionDenied)
	_, err = svc.EnrolTOTP(ctx, user.Actor{}, u.ID, "x")
	wantErr(t, err, user.ErrNoCredential)
	_, err = svc.RegenerateRecoveryCodes(ctx, actorOf(u), u.ID)
	wantCode(t, err, user.CodeFailedPrecondition)
	_, err = e.svc.EnrolTOTP(ctx, actorOf(u), u.ID, "x") // e.svc has no keys
	wantErr(t, err, user.ErrMFAUnavailable)

	secret, _ := enrolTOTP(t, e, svc, u)
	ch := challenge(t, svc, u.Email)
	e.clock.Add(5*time.Minute + time.Second)
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "totp", totpNow(t, e, secret))
	wantErr(t, err, user.ErrMFATicketInvalid)
	_, err = svc.CompleteMFA(ctx, "", "sms", "")
	wantCode(t, err, user.CodeInvalidArgument)
}

// TestStepUp: a change of password or email, or a deletion, by a user's
// token needs a sign-in within the window and, once the account has a
// factor, one made with it; the name needs neither; a refresh does not
// make a sign-in recent.
func TestStepUp(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{ReauthWindow: 10 * time.Minute})
	u := e.create(t, "frank@example.com", user.RoleUser)
	actorOfToken := func(access string) user.Actor {
		t.Helper()
		a, _, err := svc.Authenticate(ctx, access)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	pw, n := strongPW, 0
	// An email change (it waits as pending, and ends no session, so the
	// test's tokens live on); a password change is the same operation.
	changeEmail := func(a user.Actor) error {
		n++
		email := fmt.Sprintf("frank%d@example.com", n)
		_, err := svc.Update(ctx, a, u.ID, user.UpdateInput{Email: &email, CurrentPassword: &pw})
		return err
	}
	sess, err := svc.Auth(ctx, u.Email, strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := changeEmail(actorOfToken(sess.AccessToken)); err != nil {
		t.Fatalf("a fresh sign-in: %v", err)
	}
	e.clock.Add(11 * time.Minute)
	refreshed, err := svc.Refresh(ctx, sess.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	old := actorOfToken(refreshed.AccessToken)
	wantErr(t, changeEmail(old), user.ErrReauthenticationRequired)
	wantErr(t, svc.Delete(ctx, old, u.ID), user.ErrReauthenticationRequired)
	name := "Frank F."
	if _, err := svc.Update(ctx, old, u.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Errorf("a name change asked for step-up: %v", err)
	}

	fresh, err := svc.Auth(ctx, u.Email, strongPW)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := enrolTOTP(t, e, svc, u)
	// Signed in a moment ago, but without the factor it now has.
	wantErr(t, changeEmail(actorOfToken(fresh.AccessToken)), user.ErrReauthenticationRequired)
	e.clock.Add(factor.TOTPPeriod)
	withFactor, err := svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "totp", totpNow(t, e, secret))
	if err != nil {
		t.Fatal(err)
	}
	if err := changeEmail(actorOfToken(withFactor.AccessToken)); err != nil {
		t.Errorf("a recent sign-in with the factor: %v", err)
	}
	// The CLI's in-process actor is not a token's: no step-up.
	if err := svc.Delete(ctx, user.SystemActor, u.ID); err != nil {
		t.Errorf("SystemActor delete: %v", err)
	}
}

// TestRequireAdminMFA: with the switch on, an admin signed in without a
// factor administers nothing but may enrol one on their own account; after
// a sign-in with it the admin is an admin again.
func TestRequireAdminMFA(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{RequireAdminMFA: true})
	admin := e.create(t, "boss@example.com", user.RoleAdmin)
	other := e.create(t, "gina@example.com", user.RoleUser)
	tokenActor := func(access string) user.Actor {
		t.Helper()
		a, _, err := svc.Authenticate(ctx, access)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	sess, err := svc.Auth(ctx, admin.Email, strongPW)
	if err != nil {
		t.Fatal(err)
	}
	weak := tokenActor(sess.AccessToken)
	_, err = svc.Get(ctx, weak, other.ID)
	wantCode(t, err, user.CodePermissionDenied)
	_, err = svc.List(ctx, weak, user.ListInput{})
	wantCode(t, err, user.CodePermissionDenied)
	enrol, err := svc.EnrolTOTP(ctx, weak, admin.ID, "key")
	if err != nil {
		t.Fatalf("an admin without a factor may enrol one: %v", err)
	}
	if _, err := svc.ConfirmTOTP(ctx, weak, admin.ID, enrol.FactorID, totpNow(t, e, enrol.Secret)); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(factor.TOTPPeriod)
	strong, err := svc.CompleteMFA(ctx, challenge(t, svc, admin.Email).Ticket, "totp", totpNow(t, e, enrol.Secret))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Get(ctx, tokenActor(strong.AccessToken), other.ID); err != nil {
		t.Errorf("an admin signed in with the factor: %v", err)
	}
	if _, err := e.svc.Get(ctx, mustActor(t, e, sess.AccessToken), other.ID); err != nil {
		t.Errorf("with the switch off the password-only token administers: %v", err)
	}
}

func mustActor(t *testing.T, e *env, access string) user.Actor {
	t.Helper()
	a, _, err := e.svc.Authenticate(context.Background(), access)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestFactorSurvivesPasswordReset: a reset proves only the mailbox, so it
// changes the password and ends sessions but never removes a factor: the
// new password still answers with a challenge.
func TestFactorSurvivesPasswordReset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{})
	u := e.create(t, "hank@example.com", user.RoleUser)
	enrolTOTP(t, e, svc, u)
	if err := svc.CreatePasswordReset(ctx, u.Email); err != nil {
		t.Fatal(err)
	}
	const fresh = "a brand new passphrase"
	if err := svc.ResetPassword(ctx, e.mail.last(t, u.Email), fresh); err != nil {
		t.Fatal(err)
	}
	sess, err := svc.Auth(ctx, u.Email, fresh)
	if err != nil || sess.MFA == nil || sess.AccessToken != "" {
		t.Fatalf("sign-in after a reset: %+v, %v; want a challenge", sess, err)
	}
	if list, _, _ := svc.Factors(ctx, actorOf(u), u.ID); len(list) != 1 || !list[0].Active {
		t.Errorf("factors after a reset: %+v", list)
	}
}

// TestExpiredTicketsAreSwept: issuing a ticket also deletes the expired
// ones (at most once a minute), so the table holds minutes of sign-ins,
// not every one ever made.
func TestExpiredTicketsAreSwept(t *testing.T) {
	e := newEnv(t)
	svc := e.with(t, func(d *flows.Deps) { d.MFAKeys = mfaKeys(t) }, user.Config{})
	u := e.create(t, "erin@example.com", user.RoleUser)
	enrolTOTP(t, e, svc, u)
	tickets := func() int {
		var n int
		if err := e.store.(*sqlstore.Store).DB().QueryRow("SELECT COUNT(*) FROM mfa_tickets").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	challenge(t, svc, u.Email)
	challenge(t, svc, u.Email) // within the minute: no sweep, both kept
	if n := tickets(); n != 2 {
		t.Fatalf("%d tickets after two challenges, want 2", n)
	}
	e.clock.Add(time.Hour) // both expired, and the sweep interval over
	challenge(t, svc, u.Email)
	if n := tickets(); n != 1 {
		t.Errorf("%d tickets after a challenge an hour later, want 1 (the expired ones swept)", n)
	}
}
