package user_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
	"github.com/usersvc/usersvc/sdk/auth"
)

// The domain tests run on the real SQLite store: it is fast, and a fake
// store would test the fake's idea of uniqueness and transactions.

const strongPW = "correct horse battery staple"

// outbox reads the events the service committed, straight from the store's
// outbox table (the relay's view), and keeps them for the test.
type outbox struct {
	st          *sqlstore.Store
	mu          sync.Mutex
	events      []user.Event
	revocations []auth.Revocation // the token.revoked rows, for other services
}

func (o *outbox) drain(t *testing.T) []user.Event {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for {
		n, err := o.st.DrainOutbox(context.Background(), 100, func(_ context.Context, rows []events.Message) error {
			for _, r := range rows {
				if r.RoutingKey == auth.RevocationRoutingKey {
					rev, err := auth.ParseRevocation(r.Body)
					if err != nil {
						return err
					}
					o.revocations = append(o.revocations, rev)
					continue
				}
				e, err := user.ParseEvent(r.Body)
				if err != nil {
					return err
				}
				if string(e.Type) != r.RoutingKey || e.ID != r.ID {
					t.Errorf("outbox row %s/%s holds event %s/%s", r.ID, r.RoutingKey, e.ID, e.Type)
				}
				o.events = append(o.events, e)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("drain outbox: %v", err)
		}
		if n == 0 {
			return o.events
		}
	}
}

// last returns the newest reset token mailed to email, "" if none.
func (o *outbox) last(t *testing.T, email string) string {
	return o.newest(t, email, func(e user.Event) *user.EventReset { return e.Reset })
}

// verification returns the newest verification token mailed to email, ""
// if none.
func (o *outbox) verification(t *testing.T, email string) string {
	return o.newest(t, email, func(e user.Event) *user.EventReset { return e.Verification })
}

// newest returns the token of the newest event whose pick is mailed to
// email.
func (o *outbox) newest(t *testing.T, email string, pick func(user.Event) *user.EventReset) string {
	evs := o.drain(t)
	for i := len(evs) - 1; i >= 0; i-- {
		if r := pick(evs[i]); r != nil && r.Email == email {
			return r.Token
		}
	}
	return ""
}

// notices returns the notices of type typ mailed to email.
func (o *outbox) notices(t *testing.T, typ user.EventType, email string) []user.EventNotice {
	var out []user.EventNotice
	for _, e := range o.drain(t) {
		if e.Type == typ && e.Notice != nil && e.Notice.Email == email {
			out = append(out, *e.Notice)
		}
	}
	return out
}

// countingHasher counts verifications, to show Auth does the same work for
// known and unknown emails.
type countingHasher struct {
	*password.Hasher
	mu       sync.Mutex
	verifies int
	hashes   int
}

func (c *countingHasher) Hash(ctx context.Context, pw string) (string, error) {
	c.mu.Lock()
	c.hashes++
	c.mu.Unlock()
	return c.Hasher.Hash(ctx, pw)
}

func (c *countingHasher) Verify(ctx context.Context, pw, enc string) (bool, bool, error) {
	c.mu.Lock()
	c.verifies++
	c.mu.Unlock()
	return c.Hasher.Verify(ctx, pw, enc)
}

type env struct {
	svc    *flows.Service
	store  user.Store
	mail   *outbox
	hasher *countingHasher
	clock  *testenv.Clock
	tokens *token.Manager
	dir    string
}

var cheap = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	return newEnvOn(t, openStore(t, dir), dir, cheap)
}

// openStore opens and migrates an SQLite store in dir, closed when the
// test ends.
func openStore(t testing.TB, dir string) *sqlstore.Store {
	t.Helper()
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite", filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func newEnvOn(t testing.TB, st *sqlstore.Store, dir string, params password.Params) *env {
	t.Helper()
	h, err := password.NewHasher(params)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := token.LoadDir(filepath.Join(dir, "keys"), "", true)
	if err != nil {
		t.Fatal(err)
	}
	clk := testenv.NewClock(time.Now().UTC())
	tm, err := token.NewManager(kr, token.Config{Issuer: "test", Audience: "test", TTL: 15 * time.Minute, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, mail: &outbox{st: st}, hasher: &countingHasher{Hasher: h}, clock: clk, tokens: tm, dir: dir}
	e.svc, err = flows.New(flows.Deps{Store: st, Hasher: e.hasher, Policy: password.DefaultPolicy(), Tokens: tm,
		Now: clk.Now}, user.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) create(t *testing.T, email string, role user.Role) *user.User {
	t.Helper()
	u, err := e.svc.Create(context.Background(), user.SystemActor, user.CreateInput{Email: email, Password: strongPW, Name: "Test " + email, Role: role})
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	return u
}

func wantCode(t *testing.T, err error, code user.Code) *user.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	if got := user.CodeOf(err); got != code {
		t.Fatalf("got %v (code %s), want %s", err, got, code)
	}
	var ue *user.Error
	errors.As(err, &ue)
	return ue
}

func actorOf(u *user.User) user.Actor { return user.Actor{ID: u.ID, Role: u.Role} }

func TestCreateValidatesAndNormalises(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u, err := e.svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "  Alice@Example.COM ", Password: strongPW, Name: " Alice "})
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "alice@example.com" || u.Name != "Alice" || u.Role != user.RoleUser || u.Status != user.StatusActive {
		t.Fatalf("unexpected user %+v", u)
	}
	if len(u.ID) != 36 || u.ID[14] != '7' {
		t.Fatalf("id %q is not a UUIDv7", u.ID)
	}
	_, err = e.svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "ALICE@example.com", Password: strongPW, Name: "Other"})
	wantCode(t, err, user.CodeAlreadyExists)

	ue := wantCode(t, func() error {
		_, err := e.svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "not-an-email", Password: "password", Name: ""})
		return err
	}(), user.CodeInvalidArgument)
	for _, f := range []string{"email", "password", "name"} {
		if ue.Fields[f] == "" {
			t.Errorf("field %s not named in %v", f, ue)
		}
	}
	_, err = e.svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "bob@example.com", Password: "bob@example.com", Name: "Bob"})
	if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["password"] == "" {
		t.Fatalf("own email accepted as password: %v", ue)
	}
	long := make([]byte, user.MaxPasswordBytes+1)
	for i := range long {
		long[i] = 'a'
	}
	_, err = e.svc.Create(ctx, user.Actor{}, user.CreateInput{Email: "bob@example.com", Password: string(long), Name: "Bob"})
	wantCode(t, err, user.CodeInvalidArgument)
	_, err = e.svc.Create(ctx, user.Actor{ID: u.ID, Role: user.RoleUser}, user.CreateInput{Email: "eve@example.com", Password: strongPW, Name: "Eve", Role: user.RoleAdmin})
	wantCode(t, err, user.CodePermissionDenied)
}

func TestConcurrentCreateOneEmail(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := e.svc.Create(context.Background(), user.Actor{}, user.CreateInput{Email: "race@example.com", Password: strongPW, Name: "Race"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok, exists := 0, 0
	for err := range errs {
		switch user.CodeOf(err) {
		case user.CodeAlreadyExists:
			exists++
		default:
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			ok++
		}
	}
	if ok != 1 || exists != 9 {
		t.Fatalf("got %d created and %d already exists, want 1 and 9", ok, exists)
	}
}

func TestAuthSameWorkForUnknownEmail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if e.hasher.hashes != 0 {
		t.Errorf("NewService hashed %d times; the dummy hash needs no hashing (Unmatchable), it is on the start-up path", e.hasher.hashes)
	}
	e.create(t, "alice@example.com", user.RoleUser)
	before := e.hasher.verifies
	_, errUnknown := e.svc.Auth(ctx, "nobody@example.com", strongPW)
	_, _ = e.svc.Auth(ctx, "nobody2@example.com", strongPW)
	before++ // the second unknown-email login, against the same dummy hash
	_, errWrong := e.svc.Auth(ctx, "alice@example.com", "wrong password here")
	if !errors.Is(errUnknown, user.ErrBadCredentials) || !errors.Is(errWrong, user.ErrBadCredentials) {
		t.Fatalf("errors differ: %v / %v", errUnknown, errWrong)
	}
	if errUnknown.Error() != errWrong.Error() {
		t.Fatalf("messages differ: %q / %q", errUnknown, errWrong)
	}
	if got := e.hasher.verifies - before; got != 2 {
		t.Fatalf("%d verifications for two logins, want one each", got)
	}
	if e.hasher.hashes != 1 { // alice's password; the dummy is made without hashing
		t.Errorf("%d hashes, want 1: alice's password only (an unknown email costs one verification, not a hash)", e.hasher.hashes)
	}
	s, err := e.svc.Auth(ctx, "ALICE@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessToken == "" || s.RefreshToken == "" || s.User.Email != "alice@example.com" {
		t.Fatalf("bad session %+v", s)
	}
	wantCode(t, func() error { _, err := e.svc.Auth(ctx, "", ""); return err }(), user.CodeInvalidArgument)
}

func TestAuthRehashesOutdatedHash(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st := openStore(t, dir)
	old := newEnvOn(t, st, dir, cheap)
	u := old.create(t, "alice@example.com", user.RoleUser)
	stronger := cheap
	stronger.Memory, stronger.Iterations = 128, 2
	upgraded := newEnvOn(t, st, dir, stronger)
	if _, err := upgraded.svc.Auth(ctx, "alice@example.com", strongPW); err != nil {
		t.Fatal(err)
	}
	got, err := st.UserByID(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PasswordHash == u.PasswordHash {
		t.Fatal("hash was not upgraded")
	}
	if _, rehash, _ := upgraded.hasher.Verify(context.Background(), strongPW, got.PasswordHash); rehash {
		t.Fatal("new hash still uses old parameters")
	}
	if _, err := upgraded.svc.Auth(ctx, "alice@example.com", strongPW); err != nil {
		t.Fatalf("login after rehash: %v", err)
	}
}

func TestValidate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.create(t, "alice@example.com", user.RoleUser)
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	s, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.svc.Validate(ctx, s.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if v.User.ID != u.ID || v.Claims.Subject != u.ID {
		t.Fatalf("validated %+v", v)
	}
	// Tampered in the middle of the signature: its last byte is the top
	// byte of Ed25519's S, below 0x10, so "AA" at the end was the original
	// one time in sixteen.
	i := len(s.AccessToken) - 20
	flipped := byte('A')
	if s.AccessToken[i] == 'A' {
		flipped = 'B'
	}
	tampered := s.AccessToken[:i] + string(flipped) + s.AccessToken[i+1:]
	for name, tok := range map[string]string{"empty": "", "garbage": "abc.def.ghi", "tampered": tampered} {
		if _, err := e.svc.Validate(ctx, tok); !errors.Is(err, user.ErrInvalidToken) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// Expired.
	e.clock.Add(16 * time.Minute)
	if _, err := e.svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("expired token: %v", err)
	}
	e.clock.Add(-16 * time.Minute)
	// Disabled user.
	disabled := user.StatusDisabled
	if _, err := e.svc.Update(ctx, actorOf(admin), u.ID, user.UpdateInput{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("disabled user's token: %v", err)
	}
	if _, err := e.svc.Auth(ctx, "alice@example.com", strongPW); !errors.Is(err, user.ErrAccountDisabled) {
		t.Fatalf("disabled login: %v", err)
	}
	// Deleted user (not the last admin, who may not go).
	e.create(t, "admin2@example.com", user.RoleAdmin)
	s2, err := e.svc.Auth(ctx, "admin@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, actorOf(admin), admin.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Validate(ctx, s2.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("deleted user's token: %v", err)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "alice@example.com", user.RoleUser)
	s1, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := e.svc.Refresh(ctx, s1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if s2.RefreshToken == s1.RefreshToken || s2.AccessToken == "" {
		t.Fatal("refresh did not rotate")
	}
	// Reusing s1's token: rejected, and s2's token (same family) dies too.
	if _, err := e.svc.Refresh(ctx, s1.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("reuse: %v", err)
	}
	if _, err := e.svc.Refresh(ctx, s2.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("family not revoked after reuse: %v", err)
	}
	// Another login's family is unaffected by that, but Revoke ends it.
	s3, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	s4, err := e.svc.Refresh(ctx, s3.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Revoke(ctx, s4.RefreshToken, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Refresh(ctx, s4.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("revoked token refreshed: %v", err)
	}
	if err := e.svc.Revoke(ctx, "unknown-token", ""); err != nil {
		t.Fatalf("revoking an unknown token: %v", err)
	}
	// Expiry.
	s5, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(31 * 24 * time.Hour)
	if _, err := e.svc.Refresh(ctx, s5.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("expired refresh token: %v", err)
	}
}

func TestConcurrentRefreshOneWinner(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "alice@example.com", user.RoleUser)
	s, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			if _, err := e.svc.Refresh(ctx, s.RefreshToken); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent refreshes of one token succeeded, want 1", wins)
	}
}

func TestPasswordResetLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.create(t, "alice@example.com", user.RoleUser)
	s, err := e.svc.Auth(ctx, "alice@example.com", strongPW)
	if err != nil {
		t.Fatal(err)
	}
	// Unknown email: same answer, no mail.
	if err := e.svc.CreatePasswordReset(ctx, "nobody@example.com"); err != nil {
		t.Fatal(err)
	}
	if e.mail.last(t, "nobody@example.com") != "" {
		t.Fatal("mail sent for an unknown email")
	}
	wantCode(t, e.svc.CreatePasswordReset(ctx, "not an email"), user.CodeInvalidArgument)

	// Replaced: the first token stops working when a second is issued.
	if err := e.svc.CreatePasswordReset(ctx, "Alice@Example.com"); err != nil {
		t.Fatal(err)
	}
	first := e.mail.last(t, "alice@example.com")
	if err := e.svc.CreatePasswordReset(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	second := e.mail.last(t, "alice@example.com")
	if first == "" || second == "" || first == second {
		t.Fatalf("tokens %q %q", first, second)
	}
	if err := e.svc.ResetPassword(ctx, first, "a brand new passphrase"); !errors.Is(err, user.ErrResetTokenInvalid) {
		t.Fatalf("replaced token: %v", err)
	}
	// Policy failure leaves the token usable.
	wantCode(t, e.svc.ResetPassword(ctx, second, "password"), user.CodeInvalidArgument)
	if err := e.svc.ResetPassword(ctx, second, "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	// Used: single use.
	if err := e.svc.ResetPassword(ctx, second, "another new passphrase"); !errors.Is(err, user.ErrResetTokenInvalid) {
		t.Fatalf("reused token: %v", err)
	}
	// Sessions from before the reset are over.
	if _, err := e.svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("access token from before the reset: %v", err)
	}
	if _, err := e.svc.Refresh(ctx, s.RefreshToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("refresh token from before the reset: %v", err)
	}
	if _, err := e.svc.Auth(ctx, "alice@example.com", strongPW); !errors.Is(err, user.ErrBadCredentials) {
		t.Fatalf("old password: %v", err)
	}
	s2, err := e.svc.Auth(ctx, "alice@example.com", "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.svc.Validate(ctx, s2.AccessToken); err != nil || v.User.ID != u.ID {
		t.Fatalf("new session: %v", err)
	}
	// Expired.
	if err := e.svc.CreatePasswordReset(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	third := e.mail.last(t, "alice@example.com")
	e.clock.Add(31 * time.Minute)
	if err := e.svc.ResetPassword(ctx, third, "yet another passphrase"); !errors.Is(err, user.ErrResetTokenInvalid) {
		t.Fatalf("expired token: %v", err)
	}
	if err := e.svc.ResetPassword(ctx, "", "x"); !errors.Is(err, user.ErrResetTokenInvalid) {
		t.Fatalf("empty token: %v", err)
	}
}

func TestUpdatePermissions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.create(t, "alice@example.com", user.RoleUser)
	bob := e.create(t, "bob@example.com", user.RoleUser)
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	name := "Alice Liddell"
	u, err := e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Name: &name})
	if err != nil || u.Name != name {
		t.Fatalf("own name: %v %+v", err, u)
	}
	_, err = e.svc.Update(ctx, actorOf(bob), alice.ID, user.UpdateInput{Name: &name})
	wantCode(t, err, user.CodePermissionDenied)
	_, err = e.svc.Get(ctx, actorOf(bob), alice.ID)
	wantCode(t, err, user.CodePermissionDenied)
	adminRole := user.RoleAdmin
	_, err = e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Role: &adminRole})
	wantCode(t, err, user.CodePermissionDenied)
	_, err = e.svc.Update(ctx, actorOf(admin), admin.ID, user.UpdateInput{Role: &adminRole})
	wantCode(t, err, user.CodePermissionDenied)
	if u, err := e.svc.Update(ctx, actorOf(admin), bob.ID, user.UpdateInput{Role: &adminRole}); err != nil || u.Role != user.RoleAdmin {
		t.Fatalf("admin promotes: %v", err)
	}
	// Email and password changes need the current password.
	email := "alice2@example.com"
	_, err = e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Email: &email})
	if ue := wantCode(t, err, user.CodeInvalidArgument); ue.Fields["current_password"] == "" {
		t.Fatalf("current_password not named: %v", ue)
	}
	wrong := "not my password"
	_, err = e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Email: &email, CurrentPassword: &wrong})
	wantCode(t, err, user.CodeInvalidArgument)
	cur := strongPW
	if u, err := e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Email: &email, CurrentPassword: &cur}); err != nil || u.PendingEmail != email {
		t.Fatalf("email change: %v", err)
	}
	if err := e.svc.VerifyEmail(ctx, e.mail.verification(t, email)); err != nil {
		t.Fatalf("verify the new email: %v", err)
	}
	taken := "bob@example.com"
	_, err = e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Email: &taken, CurrentPassword: &cur})
	wantCode(t, err, user.CodeAlreadyExists)
	s, err := e.svc.Auth(ctx, email, strongPW)
	if err != nil {
		t.Fatal(err)
	}
	newPW := "an entirely different passphrase"
	if _, err := e.svc.Update(ctx, actorOf(alice), alice.ID, user.UpdateInput{Password: &newPW, CurrentPassword: &cur}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Validate(ctx, s.AccessToken); !errors.Is(err, user.ErrInvalidToken) {
		t.Fatalf("session survived a password change: %v", err)
	}
	if _, err := e.svc.Auth(ctx, email, newPW); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Update(ctx, actorOf(alice), "not-a-uuid", user.UpdateInput{Name: &name})
	wantCode(t, err, user.CodeInvalidArgument)
	_, err = e.svc.Get(ctx, actorOf(admin), "0190a8e4-0000-7000-8000-000000000000")
	wantCode(t, err, user.CodeNotFound)
}

func TestListPagesAndCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.create(t, "admin@example.com", user.RoleAdmin)
	var ids []string
	for i := range 25 {
		u := e.create(t, "user"+string(rune('a'+i))+"@example.com", user.RoleUser)
		ids = append(ids, u.ID)
	}
	_, err := e.svc.List(ctx, user.Actor{ID: ids[0], Role: user.RoleUser}, user.ListInput{})
	wantCode(t, err, user.CodePermissionDenied)
	p, err := e.svc.List(ctx, actorOf(admin), user.ListInput{PageSize: 10, Role: user.RoleUser})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 25 || len(p.Users) != 10 || p.NextCursor == "" || p.Page != 1 {
		t.Fatalf("page 1: total %d, %d users, cursor %q", p.Total, len(p.Users), p.NextCursor)
	}
	var seen []string
	for cur := ""; ; {
		p, err := e.svc.List(ctx, actorOf(admin), user.ListInput{PageSize: 10, Cursor: cur, Role: user.RoleUser})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range p.Users {
			seen = append(seen, u.ID)
		}
		if p.NextCursor == "" {
			break
		}
		cur = p.NextCursor
	}
	if len(seen) != 25 {
		t.Fatalf("cursor walk saw %d users, want 25", len(seen))
	}
	for i := range seen {
		if seen[i] != ids[i] {
			t.Fatalf("cursor order differs from creation order at %d", i)
		}
	}
	p3, err := e.svc.List(ctx, actorOf(admin), user.ListInput{Page: 3, PageSize: 10, Role: user.RoleUser})
	if err != nil || len(p3.Users) != 5 || p3.NextCursor != "" {
		t.Fatalf("page 3: %v %d", err, len(p3.Users))
	}
	pq, err := e.svc.List(ctx, actorOf(admin), user.ListInput{Query: "USERC"})
	if err != nil || pq.Total != 1 || pq.Users[0].Email != "userc@example.com" {
		t.Fatalf("query: %v %+v", err, pq)
	}
	_, err = e.svc.List(ctx, actorOf(admin), user.ListInput{PageSize: 101, Page: -1, Cursor: "bogus!", Role: "root"})
	ue := wantCode(t, err, user.CodeInvalidArgument)
	for _, f := range []string{"page_size", "page", "cursor", "role"} {
		if ue.Fields[f] == "" {
			t.Errorf("field %s not named: %v", f, ue)
		}
	}
}

// TestEveryChangeWritesItsEvent checks the outbox holds one event per
// change, with the documented body, and never a password hash.
func TestEveryChangeWritesItsEvent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.create(t, "alice@example.com", user.RoleUser)
	name, cur, pw := "Alice L", strongPW, "a different passphrase entirely"
	if _, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Password: &pw, CurrentPassword: &cur}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.CreatePasswordReset(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := e.mail.last(t, "alice@example.com")
	if err := e.svc.ResetPassword(ctx, tok, "yet another good passphrase"); err != nil {
		t.Fatal(err)
	}
	// A failed change writes nothing.
	bad := "x"
	if _, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Name: &bad, Email: &bad}); err == nil {
		t.Fatal("invalid update accepted")
	}
	if err := e.svc.Delete(ctx, actorOf(u), u.ID); err != nil {
		t.Fatal(err)
	}
	evs := e.mail.drain(t)
	want := []user.EventType{user.EventCreated, user.EventUpdated, user.EventUpdated, user.EventPasswordChanged,
		user.EventPasswordResetRequested, user.EventPasswordChanged, user.EventDeleted}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		if ev.Type != want[i] || ev.UserID != u.ID || ev.ID == "" || ev.OccurredAt.IsZero() {
			t.Errorf("event %d: %+v, want type %s for user %s", i, ev, want[i], u.ID)
		}
		if i > 0 && ev.ID <= evs[i-1].ID {
			t.Errorf("event IDs not ordered: %s after %s", ev.ID, evs[i-1].ID)
		}
		body, _ := ev.Body()
		if strings.Contains(string(body), "argon2") || strings.Contains(string(body), "password_hash") {
			t.Errorf("event %s leaks a password hash: %s", ev.Type, body)
		}
		if ev.Type != user.EventPasswordResetRequested && ev.Reset != nil {
			t.Errorf("event %s carries a reset token", ev.Type)
		}
	}
	if evs[0].User == nil || evs[0].User.Email != "alice@example.com" {
		t.Errorf("created event user %+v", evs[0].User)
	}
	if evs[1].User.Name != "Alice L" || len(evs[1].Changed) != 1 || evs[1].Changed[0] != "name" {
		t.Errorf("updated event: %+v changed %v", evs[1].User, evs[1].Changed)
	}
	if evs[2].Changed[0] != "password" {
		t.Errorf("password update event changed %v", evs[2].Changed)
	}
	r := evs[4].Reset
	if r == nil || r.Token != tok || r.Email != "alice@example.com" || r.ExpiresAt.Sub(evs[4].OccurredAt) != 30*time.Minute {
		t.Errorf("reset event %+v", r)
	}
}

// withSearcher builds a second service on the same store with a searcher.
func (e *env) withSearcher(t *testing.T, s user.Searcher) *flows.Service {
	t.Helper()
	return e.with(t, func(d *flows.Deps) { d.Searcher = s }, user.Config{})
}

// with builds a second service on the same store, clock and keys, with the
// env's deps as changed by set and the config cfg.
func (e *env) with(t *testing.T, set func(*flows.Deps), cfg user.Config) *flows.Service {
	t.Helper()
	d := flows.Deps{Store: e.store, Hasher: e.hasher, Policy: password.DefaultPolicy(), Tokens: e.tokens, Now: e.clock.Now}
	set(&d)
	svc, err := flows.New(d, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
