package rpc_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	userv1 "github.com/usersvc/usersvc/api/user/v1"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/factor/webauthntest"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/reqmeta"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// TestPasskeysOverTheWire drives the client methods the pages use:
// register a passkey, complete a password sign-in with it (the challenge's
// assertion options cross the wire), sign in passwordless, and see a
// replayed assertion and a replayed ceremony refused with typed errors.
func TestPasskeysOverTheWire(t *testing.T) {
	st := stack.New(t, stack.Options{NoEvents: true})
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg}, rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	users := rpc.NewUsers(rpc.ClientConfig{Registry: reg, Timeout: 10 * time.Second})
	ctx := t.Context()
	u, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "pat@example.com", Password: pw, Name: "Pat"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := users.Auth(ctx, u.Email, pw)
	if err != nil {
		t.Fatal(err)
	}
	asPat := reqmeta.With(ctx, reqmeta.Call{Bearer: s.AccessToken})

	a := webauthntest.New(stack.PublicURL)
	r, err := users.BeginPasskey(asPat, u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	att, err := a.Register(r.Options)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.FinishPasskey(ctx, u.ID, r.FactorID, att); user.CodeOf(err) != user.CodeUnauthenticated {
		t.Errorf("FinishPasskey without a token: %v", err)
	}
	codes, err := users.FinishPasskey(asPat, u.ID, r.FactorID, att)
	if err != nil || len(codes) != factor.RecoveryCodeCount {
		t.Fatalf("FinishPasskey = %v, %v", codes, err)
	}

	ch, err := users.Auth(ctx, u.Email, pw)
	if err != nil || ch.MFA == nil || !slices.Contains(ch.MFA.Factors, "webauthn") || len(ch.MFA.WebAuthn) == 0 {
		t.Fatalf("Auth of an account with a passkey = %+v, %v", ch, err)
	}
	assertion, err := a.Assert(ch.MFA.WebAuthn)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := users.CompleteMFA(ctx, ch.MFA.Ticket, "webauthn", string(assertion))
	if err != nil || sess.AccessToken == "" {
		t.Fatalf("CompleteMFA = %+v, %v", sess, err)
	}
	wantAMR(t, st, sess.AccessToken, []string{"pwd", "hwk", "mfa"})
	ch2, _ := users.Auth(ctx, u.Email, pw)
	if _, err := users.CompleteMFA(ctx, ch2.MFA.Ticket, "webauthn", string(assertion)); user.CodeOf(err) != user.CodeUnauthenticated {
		t.Errorf("a replayed assertion: %v", err)
	}

	pc, err := users.BeginPasswordless(ctx)
	if err != nil || pc.Ceremony == "" || !pc.ExpiresAt.After(time.Now()) {
		t.Fatalf("BeginPasswordless = %+v, %v", pc, err)
	}
	pa, err := a.Assert(pc.Options)
	if err != nil {
		t.Fatal(err)
	}
	sess, err = users.CompletePasswordless(ctx, pc.Ceremony, pa)
	if err != nil || sess.RefreshToken == "" || sess.User == nil || sess.User.ID != u.ID {
		t.Fatalf("CompletePasswordless = %+v, %v", sess, err)
	}
	wantAMR(t, st, sess.AccessToken, []string{"hwk", "mfa"})
	_, err = users.CompletePasswordless(ctx, pc.Ceremony, pa)
	if e := rpc.FromMicro(err); e == nil || e.Code != user.CodeInvalidArgument || e.Fields["ceremony"] == "" {
		t.Errorf("a replayed ceremony: %v", err)
	}
}

func wantAMR(t *testing.T, st *stack.Stack, access string, amr []string) {
	t.Helper()
	c, err := st.Tokens.Parse(access)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.AMR, amr) {
		t.Errorf("amr %v, want %v", c.AMR, amr)
	}
}

// TestPasswordlessSpendsTheSignInBudget: at the gRPC port, beginning and
// completing a passwordless sign-in spend the caller's sign-in budget,
// the one Auth spends, so the passkey door adds no tries.
func TestPasswordlessSpendsTheSignInBudget(t *testing.T) {
	st := stack.New(t, stack.Options{NoEvents: true})
	limits := rpc.ClientLimits{Limits: map[ratelimit.Action]ratelimit.Limiter{
		ratelimit.SignIn: ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: time.Minute})}}
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: rpc.NewMemoryRegistry()},
		rpc.NewHandler(st.Service, st.Keys.JWKS, limits))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	d := dialDirect(t, srv.Address(), insecure.NewCredentials())
	if c := d.call("BeginPasswordless", "", &userv1.BeginPasswordlessRequest{}, &userv1.BeginPasswordlessResponse{}); c != codes.OK {
		t.Fatalf("BeginPasswordless: %v", c)
	}
	in := &userv1.CompletePasswordlessRequest{Ceremony: "never-begun", Credential: []byte("{}")}
	if c := d.call("CompletePasswordless", "", in, &userv1.AuthResponse{}); c != codes.InvalidArgument {
		t.Fatalf("CompletePasswordless of a ceremony never begun: %v", c)
	}
	if c := d.call("Auth", "", &userv1.AuthRequest{Email: "x@example.com", Password: "wrong password"}, &userv1.AuthResponse{}); c != codes.ResourceExhausted {
		t.Errorf("Auth after two passwordless calls: %v, want ResourceExhausted", c)
	}
	if c := d.call("BeginPasswordless", "", &userv1.BeginPasswordlessRequest{}, &userv1.BeginPasswordlessResponse{}); c != codes.ResourceExhausted {
		t.Errorf("BeginPasswordless past the budget: %v, want ResourceExhausted", c)
	}
}
