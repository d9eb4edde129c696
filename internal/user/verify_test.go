package user_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
)

// withConfig replaces e's service with one built on the same ports and cfg.
func (e *env) withConfig(t *testing.T, cfg user.Config) *env {
	t.Helper()
	svc, err := flows.New(flows.Deps{Store: e.store, Hasher: e.hasher, Policy: password.DefaultPolicy(), Tokens: e.tokens,
		Now: e.clock.Now}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	return e
}

// register signs up anonymously, as POST /user does.
func (e *env) register(t *testing.T, email string) *user.User {
	t.Helper()
	u, err := e.svc.Create(context.Background(), user.Actor{}, user.CreateInput{Email: email, Password: strongPW, Name: "Self " + email})
	if err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return u
}

// emailVerifiedClaim signs in and returns the token's email_verified.
func (e *env) emailVerifiedClaim(t *testing.T, email string) bool {
	t.Helper()
	s, err := e.svc.Auth(context.Background(), email, strongPW)
	if err != nil {
		t.Fatalf("sign in as %s: %v", email, err)
	}
	c, err := e.tokens.Parse(s.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	return c.EmailVerified
}

func TestRegistrationMailsAVerification(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.register(t, "alice@example.com")
	if u.EmailVerified {
		t.Fatal("a self-registered address starts verified")
	}
	tok := e.mail.verification(t, "alice@example.com")
	if tok == "" {
		t.Fatal("no verification mail")
	}
	if e.emailVerifiedClaim(t, "alice@example.com") {
		t.Fatal("token says email_verified before verification")
	}
	if err := e.svc.VerifyEmail(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if !e.emailVerifiedClaim(t, "alice@example.com") {
		t.Fatal("token does not say email_verified after verification")
	}
	// Single use, and nothing else is a token.
	for _, bad := range []string{tok, "", "not-a-token"} {
		if err := e.svc.VerifyEmail(ctx, bad); !errors.Is(err, user.ErrVerifyTokenInvalid) {
			t.Errorf("VerifyEmail(%q) = %v, want ErrVerifyTokenInvalid", bad, err)
		}
	}
	// The CLI's admin (System) vouches for the address: no mail.
	if a := e.create(t, "root@example.com", user.RoleAdmin); !a.EmailVerified {
		t.Error("admin create made an unverified user")
	}
	if tok := e.mail.verification(t, "root@example.com"); tok != "" {
		t.Error("admin create mailed a verification")
	}
}

func TestVerificationTokenExpires(t *testing.T) {
	e := newEnv(t).withConfig(t, user.Config{VerifyTTL: time.Hour})
	e.register(t, "alice@example.com")
	tok := e.mail.verification(t, "alice@example.com")
	e.clock.Add(time.Hour)
	if err := e.svc.VerifyEmail(context.Background(), tok); !errors.Is(err, user.ErrVerifyTokenInvalid) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestRequireVerifiedEmail(t *testing.T) {
	e := newEnv(t).withConfig(t, user.Config{RequireVerifiedEmail: true})
	ctx := context.Background()
	e.register(t, "alice@example.com")
	first := e.mail.verification(t, "alice@example.com")
	// A wrong password says nothing about the address.
	if _, err := e.svc.Auth(ctx, "alice@example.com", "a wrong passphrase"); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	_, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if ue := wantCode(t, err, user.CodeEmailNotVerified); !errors.Is(ue, user.ErrEmailNotVerified) {
		t.Fatalf("unverified sign-in: %v", err)
	}
	if st, _ := user.HTTPStatus(user.CodeEmailNotVerified); st != 403 {
		t.Errorf("email_not_verified is HTTP %d, want 403", st)
	}
	// Resend: a new token replaces the first; unknown addresses answer the same.
	for _, addr := range []string{"alice@example.com", "nobody@example.com"} {
		if err := e.svc.ResendVerification(ctx, addr); err != nil {
			t.Fatalf("resend to %s: %v", addr, err)
		}
	}
	second := e.mail.verification(t, "alice@example.com")
	if second == "" || second == first {
		t.Fatal("resend mailed no new token")
	}
	if err := e.svc.VerifyEmail(ctx, first); !errors.Is(err, user.ErrVerifyTokenInvalid) {
		t.Fatalf("replaced token: %v", err)
	}
	if err := e.svc.VerifyEmail(ctx, second); err != nil {
		t.Fatal(err)
	}
	if !e.emailVerifiedClaim(t, "alice@example.com") {
		t.Fatal("no email_verified after verification")
	}
	// A verified address gets no more mails.
	before := len(e.mail.drain(t))
	if err := e.svc.ResendVerification(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.mail.drain(t)); n != before {
		t.Fatalf("resend to a verified address wrote %d events", n-before)
	}
}

func TestEmailChangeWaitsForVerification(t *testing.T) {
	for _, who := range []string{"self", "admin"} {
		t.Run(who, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			admin := e.create(t, "admin@example.com", user.RoleAdmin)
			u := e.create(t, "alice@example.com", user.RoleUser)
			newEmail, cur := "alice.new@example.com", strongPW
			in, actor := user.UpdateInput{Email: &newEmail, CurrentPassword: &cur}, actorOf(u)
			if who == "admin" {
				in, actor = user.UpdateInput{Email: &newEmail}, actorOf(admin)
			}
			got, err := e.svc.Update(ctx, actor, u.ID, in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Email != "alice@example.com" || got.PendingEmail != newEmail {
				t.Fatalf("after the change: email %q, pending %q", got.Email, got.PendingEmail)
			}
			notices := e.mail.notices(t, user.EventEmailChangeRequested, "alice@example.com")
			if len(notices) != 1 || notices[0].NewEmail != newEmail {
				t.Fatalf("notices to the old address: %+v", notices)
			}
			// Until verified, the old address is the login.
			if _, err := e.svc.Auth(ctx, newEmail, strongPW); !errors.Is(err, user.ErrBadCredentials) {
				t.Fatalf("sign-in with the pending address: %v", err)
			}
			e.emailVerifiedClaim(t, "alice@example.com")
			if err := e.svc.VerifyEmail(ctx, e.mail.verification(t, newEmail)); err != nil {
				t.Fatal(err)
			}
			if !e.emailVerifiedClaim(t, newEmail) {
				t.Fatal("the verified new address is not email_verified")
			}
			if _, err := e.svc.Auth(ctx, "alice@example.com", strongPW); !errors.Is(err, user.ErrBadCredentials) {
				t.Fatalf("sign-in with the old address: %v", err)
			}
		})
	}
}

// A pending address is not reserved: whoever verifies first gets it, and
// the other verification fails cleanly.
func TestVerifyAfterPendingAddressTaken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.create(t, "alice@example.com", user.RoleUser)
	want, cur := "wanted@example.com", strongPW
	if _, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Email: &want, CurrentPassword: &cur}); err != nil {
		t.Fatal(err)
	}
	tok := e.mail.verification(t, want)
	e.register(t, want)
	if err := e.svc.VerifyEmail(ctx, tok); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("verify a taken pending address: %v", err)
	}
	if got, _ := e.svc.Get(ctx, user.SystemActor, u.ID); got.Email != "alice@example.com" {
		t.Fatalf("email became %q", got.Email)
	}
	// Asking for a taken address is refused up front, as before.
	if _, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Email: &want, CurrentPassword: &cur}); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("change to a taken address: %v", err)
	}
}

func TestEnumerationSafeSignup(t *testing.T) {
	e := newEnv(t).withConfig(t, user.Config{SignupEnumerationSafe: true})
	ctx := context.Background()
	owner := e.create(t, "owner@example.com", user.RoleUser)
	hashes := func(fn func()) int {
		h := &hashCounter{PasswordHasher: e.hasher}
		svc, err := flows.New(flows.Deps{Store: e.store, Hasher: h, Policy: password.DefaultPolicy(), Tokens: e.tokens,
			Now: e.clock.Now}, user.Config{SignupEnumerationSafe: true})
		if err != nil {
			t.Fatal(err)
		}
		e.svc, h.n = svc, 0
		fn()
		return h.n
	}
	var results [][2]any
	counts := []int{}
	for _, addr := range []string{"new@example.com", "owner@example.com"} {
		counts = append(counts, hashes(func() {
			u, err := e.svc.Create(ctx, user.Actor{}, user.CreateInput{Email: addr, Password: strongPW, Name: "Someone"})
			results = append(results, [2]any{u, err})
		}))
	}
	for i, r := range results {
		if r[0].(*user.User) != nil || r[1] != nil {
			t.Errorf("registration %d answered %v, %v; want nil, nil", i, r[0], r[1])
		}
	}
	if counts[0] != counts[1] {
		t.Errorf("password hashes: new address %d, taken address %d", counts[0], counts[1])
	}
	if n := e.mail.notices(t, user.EventSignupAttempted, owner.Email); len(n) != 1 {
		t.Fatalf("owner got %d sign-up notices, want 1", len(n))
	}
	if e.mail.verification(t, "new@example.com") == "" {
		t.Fatal("the new address got no verification")
	}
	// A signed-in plain user is no more entitled to the answer than an
	// anonymous caller: the same nil, nil for a new and a taken address.
	plain := e.create(t, "plain@example.com", user.RoleUser)
	for _, addr := range []string{"newer@example.com", "owner@example.com"} {
		if u, err := e.svc.Create(ctx, actorOf(plain), user.CreateInput{Email: addr, Password: strongPW, Name: "Someone"}); u != nil || err != nil {
			t.Errorf("a plain user's registration of %s answered %v, %v; want nil, nil", addr, u, err)
		}
	}
	// A signed-in caller who creates accounts for others (an admin, who may
	// list users anyway) gets the answer.
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	_, err := e.svc.Create(ctx, actorOf(admin), user.CreateInput{Email: "owner@example.com", Password: strongPW, Name: "X"})
	if !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("an admin's duplicate: %v", err)
	}
}

// With SignupEnumerationSafe a plain user's change of address to a taken
// one answers as for a free one (pending), sends no verification (it could
// never complete) and tells the owner; an admin still gets ErrEmailTaken.
func TestEnumerationSafeEmailChange(t *testing.T) {
	e := newEnv(t).withConfig(t, user.Config{SignupEnumerationSafe: true})
	ctx := context.Background()
	owner := e.create(t, "owner@example.com", user.RoleUser)
	u := e.create(t, "alice@example.com", user.RoleUser)
	cur := strongPW
	for _, addr := range []string{"free@example.com", owner.Email} {
		got, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Email: &addr, CurrentPassword: &cur})
		if err != nil || got.PendingEmail != addr || got.Email != "alice@example.com" {
			t.Fatalf("change to %s: %v, %+v", addr, err, got)
		}
	}
	if e.mail.verification(t, "free@example.com") == "" || e.mail.verification(t, owner.Email) != "" {
		t.Fatal("want a verification for the free address and none for the taken one")
	}
	if n := e.mail.notices(t, user.EventSignupAttempted, owner.Email); len(n) != 1 {
		t.Fatalf("owner got %d notices, want 1", len(n))
	}
	if n := e.mail.notices(t, user.EventEmailChangeRequested, "alice@example.com"); len(n) != 2 {
		t.Fatalf("the current address got %d change notices, want 2 (one per request)", len(n))
	}
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	taken := owner.Email
	if _, err := e.svc.Update(ctx, actorOf(admin), u.ID, user.UpdateInput{Email: &taken}); !errors.Is(err, user.ErrEmailTaken) {
		t.Fatalf("an admin's change to a taken address: %v", err)
	}
}

// Repeated sign-ups with a taken address mail its owner only within the
// per-address budget, and answer the same beyond it.
func TestSignupAttemptNoticesAreLimited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc, err := flows.New(flows.Deps{Store: e.store, Hasher: e.hasher, Policy: password.DefaultPolicy(), Tokens: e.tokens,
		ResetRequests: ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: time.Hour}), Now: e.clock.Now},
		user.Config{SignupEnumerationSafe: true})
	if err != nil {
		t.Fatal(err)
	}
	e.create(t, "owner@example.com", user.RoleUser)
	for range 5 {
		u, err := svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "owner@example.com", Password: strongPW, Name: "X"})
		if u != nil || err != nil {
			t.Fatalf("sign-up with a taken address: %v, %v", u, err)
		}
	}
	if n := len(e.mail.notices(t, user.EventSignupAttempted, "owner@example.com")); n != 2 {
		t.Fatalf("%d notices to the owner, want 2 (the budget)", n)
	}
}

// hashCounter counts Hash calls.
type hashCounter struct {
	user.PasswordHasher
	n int
}

func (h *hashCounter) Hash(ctx context.Context, pw string) (string, error) {
	h.n++
	return h.PasswordHasher.Hash(ctx, pw)
}

// The answer must not tell by its timing either: registrations of new and
// of taken addresses, alternated so drift in the machine's load hits both
// alike, take the same median time within a generous bound. The password
// hash (the same on both paths) dominates, as in production; the bound
// only catches a path that skips it or does much more work. An anonymous
// caller and a signed-in plain user are measured alike.
func TestEnumerationSafeSignupTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing samples")
	}
	dir := t.TempDir()
	st := openStore(t, dir)
	params := password.Params{Memory: 8 << 10, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	e := newEnvOn(t, st, dir, params).withConfig(t, user.Config{SignupEnumerationSafe: true})
	ctx := context.Background()
	e.register(t, "taken@example.com")
	plain := e.create(t, "plain@example.com", user.RoleUser)
	for _, caller := range []struct {
		name  string
		actor user.Actor
	}{{"anonymous", user.Actor{}}, {"plain user", actorOf(plain)}} {
		const samples = 40
		var fresh, taken []time.Duration
		for i := range 2 * samples {
			addr := "taken@example.com"
			if i%2 == 0 {
				addr = fmt.Sprintf("new-%d-%s@example.com", i, strings.Fields(caller.name)[0])
			}
			start := time.Now()
			if _, err := e.svc.Create(ctx, caller.actor, user.CreateInput{Email: addr, Password: strongPW, Name: "Someone"}); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); i%2 == 0 {
				fresh = append(fresh, d)
			} else {
				taken = append(taken, d)
			}
		}
		mf, mt := median(fresh), median(taken)
		t.Logf("%s: median registration: new address %v, taken address %v (taken/new %.2f)", caller.name, mf, mt, float64(mt)/float64(mf))
		if diff := (mf - mt).Abs(); diff > max(mf, mt)/2 {
			t.Errorf("%s: medians differ by %v (new %v, taken %v): more than half", caller.name, diff, mf, mt)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
