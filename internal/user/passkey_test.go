package user_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/factor/webauthntest"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

const publicURL = "https://id.example.com"

func passkeyService(t *testing.T, e *env) *flows.Service {
	t.Helper()
	return e.with(t, func(*flows.Deps) {}, user.Config{PublicURL: publicURL + "/"})
}

// registerPasskey registers a passkey of a for u and returns the recovery
// codes the registration handed out.
func registerPasskey(t *testing.T, svc *flows.Service, a *webauthntest.Authenticator, u *user.User, name string) []string {
	t.Helper()
	ctx := context.Background()
	reg, err := svc.BeginPasskey(ctx, actorOf(u), u.ID, name)
	if err != nil {
		t.Fatalf("BeginPasskey: %v", err)
	}
	resp, err := a.Register(reg.Options)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, resp)
	if err != nil {
		t.Fatalf("FinishPasskey: %v", err)
	}
	return codes
}

func newestCredential(a *webauthntest.Authenticator) *webauthntest.Credential {
	c := a.Credentials()
	return c[len(c)-1]
}

// TestPasskeyRegistration: the options ask for user verification and a
// discoverable credential under the public URL's host, with the account id
// as user handle; the attestation activates the factor once; the first
// factor brings recovery codes; a second registration excludes the first.
func TestPasskeyRegistration(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := passkeyService(t, e)
	u := e.create(t, "alice@example.com", user.RoleUser)
	a := webauthntest.New(publicURL)

	reg, err := svc.BeginPasskey(ctx, actorOf(u), u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		PublicKey struct {
			RP                     struct{ ID string } `json:"rp"`
			User                   struct{ ID string } `json:"user"`
			AuthenticatorSelection map[string]any      `json:"authenticatorSelection"`
			Attestation            string              `json:"attestation"`
			Exclude                []map[string]any    `json:"excludeCredentials"`
			Params                 []struct {
				Alg int64 `json:"alg"`
			} `json:"pubKeyCredParams"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(reg.Options, &opts); err != nil {
		t.Fatal(err)
	}
	pk := opts.PublicKey
	if pk.RP.ID != "id.example.com" || pk.User.ID == "" || pk.AuthenticatorSelection["userVerification"] != "required" ||
		pk.AuthenticatorSelection["residentKey"] != "preferred" || pk.Attestation != "none" || len(pk.Exclude) != 0 {
		t.Errorf("creation options %s", reg.Options)
	}
	resp, err := a.Register(reg.Options)
	if err != nil {
		t.Fatal(err)
	}
	if string(newestCredential(a).UserHandle) != u.ID {
		t.Errorf("user handle %q, want the account id", newestCredential(a).UserHandle)
	}
	// Someone else's registration cannot be finished by the attacker.
	bob := e.create(t, "bob@example.com", user.RoleUser)
	_, err = svc.FinishPasskey(ctx, actorOf(bob), u.ID, reg.FactorID, resp)
	wantCode(t, err, user.CodePermissionDenied)
	codes, err := svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, resp)
	if err != nil || len(codes) != factor.RecoveryCodeCount {
		t.Fatalf("FinishPasskey = %d codes, %v", len(codes), err)
	}
	_, err = svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, resp)
	wantCode(t, err, user.CodeFailedPrecondition)
	list, _, err := svc.Factors(ctx, actorOf(u), u.ID)
	if err != nil || len(list) != 1 || list[0].Kind != "webauthn" || list[0].Name != "laptop" || !list[0].Active {
		t.Fatalf("Factors = %+v, %v", list, err)
	}

	// A second one: the first is excluded (the authenticator refuses to
	// make a second credential for the same account), and a second
	// authenticator's is accepted, without new recovery codes.
	reg2, err := svc.BeginPasskey(ctx, actorOf(u), u.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(reg2.Options); err == nil {
		t.Error("the creation options did not exclude the registered passkey")
	}
	if codes := registerPasskey(t, svc, webauthntest.New(publicURL), u, "key"); len(codes) != 0 {
		t.Errorf("a second factor handed out %d recovery codes", len(codes))
	}
}

// TestPasskeyRegistrationRefusals: a response from another origin, one
// without user verification, and garbage are refused as a bad
// "credential"; the ceremony is used once; without a public URL passkeys
// are unavailable.
func TestPasskeyRegistrationRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := passkeyService(t, e)
	u := e.create(t, "alice@example.com", user.RoleUser)
	for name, bend := range map[string]func(a *webauthntest.Authenticator){
		"other origin":         func(a *webauthntest.Authenticator) { a.Origin = "https://evil.example.net" },
		"no user verification": func(a *webauthntest.Authenticator) { a.UserVerified = false },
	} {
		a := webauthntest.New(publicURL)
		bend(a)
		reg, err := svc.BeginPasskey(ctx, actorOf(u), u.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := a.Register(reg.Options)
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, resp)
		if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["credential"] == "" {
			t.Errorf("%s: %v, want the credential field named", name, err)
		}
		// The ceremony was spent: a good response now is refused too.
		good, _ := webauthntest.New(publicURL).Register(reg.Options)
		_, err = svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, good)
		wantCode(t, err, user.CodeInvalidArgument)
	}
	reg, _ := svc.BeginPasskey(ctx, actorOf(u), u.ID, "x")
	// A TOTP code for a passkey factor names the field it needs instead.
	_, err := svc.ConfirmTOTP(ctx, actorOf(u), u.ID, reg.FactorID, "123456")
	if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["credential"] == "" {
		t.Errorf("ConfirmTOTP of a passkey factor: %v", err)
	}
	_, err = svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, json.RawMessage(`{"id":"nope"}`))
	wantCode(t, err, user.CodeInvalidArgument)
	_, err = svc.FinishPasskey(ctx, actorOf(u), u.ID, reg.FactorID, json.RawMessage(strings.Repeat(" ", 17<<10)))
	wantCode(t, err, user.CodeInvalidArgument)
	_, err = svc.BeginPasskey(ctx, actorOf(u), e.create(t, "bob@example.com", user.RoleUser).ID, "x")
	wantCode(t, err, user.CodePermissionDenied)
	_, err = e.svc.BeginPasskey(ctx, actorOf(u), u.ID, "x")
	wantCode(t, err, user.CodeFailedPrecondition)
	if list, _, _ := svc.Factors(ctx, actorOf(u), u.ID); slices.ContainsFunc(list, func(f user.FactorInfo) bool { return f.Active }) {
		t.Errorf("a refused registration left an active factor: %+v", list)
	}
}

// TestPasskeySecondFactor: after the password, the challenge offers the
// passkey with assertion options naming it; the assertion completes the
// ticket with amr pwd hwk mfa; a replayed assertion, a counter gone
// backwards, another origin and another account's passkey are refused.
func TestPasskeySecondFactor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := passkeyService(t, e)
	u := e.create(t, "alice@example.com", user.RoleUser)
	a := webauthntest.New(publicURL)
	registerPasskey(t, svc, a, u, "laptop")
	cred := newestCredential(a)

	ch := challenge(t, svc, u.Email)
	if !slices.Equal(ch.Factors, []string{"webauthn", "recovery_code"}) || len(ch.WebAuthn) == 0 {
		t.Fatalf("challenge %+v", ch)
	}
	if !strings.Contains(string(ch.WebAuthn), `"userVerification":"required"`) || !strings.Contains(string(ch.WebAuthn), `"allowCredentials"`) {
		t.Errorf("assertion options %s", ch.WebAuthn)
	}
	assertion, err := a.Assert(ch.WebAuthn)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(assertion))
	if err != nil || sess.User.ID != u.ID {
		t.Fatalf("CompleteMFA = %+v, %v", sess, err)
	}
	wantSignIn(t, e, sess.AccessToken, []string{"pwd", "hwk", "mfa"}, e.clock.Now())
	if list, _, _ := svc.Factors(ctx, actorOf(u), u.ID); list[0].LastUsedAt == nil {
		t.Error("the passkey's last use was not recorded")
	}
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(assertion))
	wantErr(t, err, user.ErrMFATicketInvalid)
	_, err = svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "webauthn", string(assertion))
	wantErr(t, err, user.ErrBadFactorCode)

	// A clone: its counter lags the one the service saw.
	ch = challenge(t, svc, u.Email)
	a.SetCounter(cred.ID, 0)
	clone, _ := a.Assert(ch.WebAuthn)
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(clone))
	wantErr(t, err, user.ErrBadFactorCode)
	a.SetCounter(cred.ID, 10)

	a.Origin = "https://evil.example.net"
	phished, _ := a.Assert(ch.WebAuthn)
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(phished))
	wantErr(t, err, user.ErrBadFactorCode)
	a.Origin = publicURL

	bob := e.create(t, "bob@example.com", user.RoleUser)
	registerPasskey(t, svc, a, bob, "bob's")
	bobs, err := a.AssertWith(ch.WebAuthn, newestCredential(a).ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(bobs))
	wantErr(t, err, user.ErrBadFactorCode)

	// The ticket survived the refusals; the real passkey completes it.
	good, _ := a.AssertWith(ch.WebAuthn, cred.ID)
	if _, err := svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(good)); err != nil {
		t.Fatalf("CompleteMFA after refusals: %v", err)
	}
	_, err = svc.CompleteMFA(ctx, challenge(t, svc, u.Email).Ticket, "webauthn", strings.Repeat("x", 17<<10))
	wantErr(t, err, user.ErrBadFactorCode)
}

// TestPasswordlessSignIn: a discoverable passkey signs in without a
// password, with amr hwk mfa; the ceremony is used once; an assertion for
// another ceremony, another origin or an unknown credential is refused
// with one error, whether or not an account is behind it.
func TestPasswordlessSignIn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := passkeyService(t, e)
	u := e.create(t, "alice@example.com", user.RoleUser)
	a := webauthntest.New(publicURL)
	registerPasskey(t, svc, a, u, "laptop")

	pc, err := svc.BeginPasswordless(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pc.Ceremony == "" || strings.Contains(string(pc.Options), "allowCredentials") || !strings.Contains(string(pc.Options), `"userVerification":"required"`) {
		t.Errorf("passwordless challenge %+v / %s", pc, pc.Options)
	}
	assertion, err := a.Assert(pc.Options)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := svc.CompletePasswordless(ctx, pc.Ceremony, assertion)
	if err != nil || sess.User.ID != u.ID || sess.RefreshToken == "" {
		t.Fatalf("CompletePasswordless = %+v, %v", sess, err)
	}
	wantSignIn(t, e, sess.AccessToken, []string{"hwk", "mfa"}, e.clock.Now())

	_, err = svc.CompletePasswordless(ctx, pc.Ceremony, assertion)
	if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["ceremony"] == "" {
		t.Errorf("a replayed ceremony: %v", err)
	}
	wantBadCredential := func(what string, err error) {
		t.Helper()
		if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["credential"] == "" {
			t.Errorf("%s: %v, want the credential field named", what, err)
		}
	}
	pc2, _ := svc.BeginPasswordless(ctx)
	_, err = svc.CompletePasswordless(ctx, pc2.Ceremony, assertion)
	wantBadCredential("an assertion of another ceremony", err)

	pc3, _ := svc.BeginPasswordless(ctx)
	a.Origin = "https://evil.example.net"
	phished, _ := a.Assert(pc3.Options)
	a.Origin = publicURL
	_, err = svc.CompletePasswordless(ctx, pc3.Ceremony, phished)
	wantBadCredential("another origin", err)

	// A credential the service never registered (its registration was not
	// finished) says the same as a wrong signature.
	stranger := webauthntest.New(publicURL)
	reg, _ := svc.BeginPasskey(ctx, actorOf(u), u.ID, "unfinished")
	if _, err := stranger.Register(reg.Options); err != nil {
		t.Fatal(err)
	}
	pc4, _ := svc.BeginPasswordless(ctx)
	unknown, _ := stranger.Assert(pc4.Options)
	_, err = svc.CompletePasswordless(ctx, pc4.Ceremony, unknown)
	wantBadCredential("an unknown credential", err)

	// Another account's passkey claiming to be alice's (a hostile client
	// rewrites the user handle): the credential's owner decides.
	bob := e.create(t, "bob@example.com", user.RoleUser)
	b := webauthntest.New(publicURL)
	registerPasskey(t, svc, b, bob, "bob's")
	newestCredential(b).UserHandle = []byte(u.ID)
	pcb, _ := svc.BeginPasswordless(ctx)
	forged, _ := b.Assert(pcb.Options)
	_, err = svc.CompletePasswordless(ctx, pcb.Ceremony, forged)
	wantBadCredential("another account's passkey under alice's user handle", err)

	// A counter gone backwards.
	pc5, _ := svc.BeginPasswordless(ctx)
	a.SetCounter(newestCredential(a).ID, 0)
	clone, _ := a.Assert(pc5.Options)
	_, err = svc.CompletePasswordless(ctx, pc5.Ceremony, clone)
	wantBadCredential("a lagging counter", err)

	// A ceremony lives five minutes.
	pc6, _ := svc.BeginPasswordless(ctx)
	a.SetCounter(newestCredential(a).ID, 100)
	late, _ := a.Assert(pc6.Options)
	e.clock.Add(5*time.Minute + time.Second)
	_, err = svc.CompletePasswordless(ctx, pc6.Ceremony, late)
	if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["ceremony"] == "" {
		t.Errorf("an expired ceremony: %v", err)
	}

	_, err = e.svc.BeginPasswordless(ctx)
	wantCode(t, err, user.CodeFailedPrecondition)
}

// TestPasskeyAttemptsSpendThePasswordBudget: a registration, a
// second-factor assertion and a passwordless one each spend the account's
// password budget, as codes and passwords do.
func TestPasskeyAttemptsSpendThePasswordBudget(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.with(t, func(d *flows.Deps) {
		d.PasswordAttempts = ratelimit.NewLocal(ratelimit.Rule{Limit: 4, Window: time.Minute})
	}, user.Config{PublicURL: publicURL})
	u := e.create(t, "dave@example.com", user.RoleUser)
	a := webauthntest.New(publicURL)
	registerPasskey(t, svc, a, u, "laptop") // attempt 1
	ch := challenge(t, svc, u.Email)        // attempt 2 (the password)
	_, err := svc.CompleteMFA(ctx, ch.Ticket, "webauthn", `{"id":"x","rawId":"x","type":"public-key","response":{}}`)
	wantErr(t, err, user.ErrBadFactorCode) // attempt 3
	pc, _ := svc.BeginPasswordless(ctx)
	pa, _ := a.Assert(pc.Options)
	if _, err := svc.CompletePasswordless(ctx, pc.Ceremony, pa); err != nil { // attempt 4
		t.Fatal(err)
	}
	good, _ := a.Assert(ch.WebAuthn)
	_, err = svc.CompleteMFA(ctx, ch.Ticket, "webauthn", string(good))
	wantErr(t, err, user.ErrTooManyAttempts)
	pc, _ = svc.BeginPasswordless(ctx)
	pa, _ = a.Assert(pc.Options)
	_, err = svc.CompletePasswordless(ctx, pc.Ceremony, pa)
	wantErr(t, err, user.ErrTooManyAttempts)
}
