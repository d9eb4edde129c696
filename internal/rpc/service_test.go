package rpc_test

import (
	"context"
	"go-micro.dev/v6/metadata"
	"sync/atomic"
	"testing"
	"time"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/events"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/etcdtest"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

const pw = "correct horse battery staple"

// countingHandler counts the calls one instance serves.
type countingHandler struct {
	*rpc.Handler
	calls atomic.Int64
}

func (c *countingHandler) Get(ctx context.Context, in *userv1.GetRequest, out *userv1.GetResponse) error {
	c.calls.Add(1)
	return c.Handler.Get(ctx, in, out)
}

// TestTwoInstancesOverEtcd runs the service suite over real gRPC with a real
// (embedded) etcd registry: two instances register, the client spreads calls
// over both, one stops, and every call after that still succeeds.
func TestTwoInstancesOverEtcd(t *testing.T) {
	endpoint := etcdtest.StartEtcd(t)
	st := stack.New(t, stack.Options{})
	ctx := t.Context()

	start := func() (*rpc.Server, *countingHandler) {
		// Each instance has its own registry client, as separate processes would.
		reg := rpc.TestEtcdRegistry(t, endpoint, 5*time.Second)
		h := &countingHandler{Handler: rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{})}
		srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg, TTL: 5 * time.Second,
			GracePeriod: 2 * time.Second}, h)
		if err != nil {
			t.Fatalf("start server: %v", err)
		}
		return srv, h
	}
	s1, h1 := start()
	s2, h2 := start()
	defer s2.Stop()

	users, _ := rpc.NewUserClient(rpc.ClientConfig{Registry: rpc.TestEtcdRegistry(t, endpoint, 5*time.Second),
		Timeout: 5 * time.Second})

	created, err := users.Create(ctx, &userv1.CreateRequest{Email: "Alice@Example.com", Password: pw, Name: "Alice"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created.User.Email != "alice@example.com" || created.User.Role != userv1.Role_ROLE_USER {
		t.Fatalf("created %+v", created.User)
	}
	auth, err := users.Auth(ctx, &userv1.AuthRequest{Email: "alice@example.com", Password: pw})
	if err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if auth.TokenType != "Bearer" || auth.ExpiresIn < 890 || auth.ExpiresIn > 900 || auth.RefreshToken == "" {
		t.Fatalf("auth response %+v", auth)
	}
	v, err := users.Validate(ctx, &userv1.ValidateRequest{AccessToken: auth.AccessToken})
	if err != nil || v.User.Id != created.User.Id {
		t.Fatalf("Validate: %v %+v", err, v)
	}
	authed := withBearer(ctx, auth.AccessToken)

	get := func(n int) (failed int) {
		for range n {
			if _, err := users.Get(authed, &userv1.GetRequest{Id: created.User.Id}); err != nil {
				t.Logf("Get: %v", err)
				failed++
			}
		}
		return failed
	}
	if f := get(100); f != 0 {
		t.Fatalf("%d of 100 calls failed with both instances up", f)
	}
	if h1.calls.Load() == 0 || h2.calls.Load() == 0 {
		t.Fatalf("calls not balanced: instance 1 served %d, instance 2 served %d", h1.calls.Load(), h2.calls.Load())
	}

	if err := s1.Stop(); err != nil {
		t.Fatalf("stop instance 1: %v", err)
	}
	before2 := h2.calls.Load()
	if f := get(100); f != 0 {
		t.Fatalf("%d of 100 calls failed after one of two instances stopped", f)
	}
	if got := h2.calls.Load() - before2; got != 100 {
		t.Fatalf("instance 2 served %d of the 100 calls after instance 1 stopped", got)
	}
}

// TestErrorsCrossTheWire checks that every domain error arrives typed at the
// client, with its field details.
func TestErrorsCrossTheWire(t *testing.T) {
	srv, users := serve(t, stack.New(t, stack.Options{}))
	ctx := t.Context()

	_, err := users.Create(ctx, &userv1.CreateRequest{Email: "nope", Password: "short", Name: ""})
	e := rpc.FromMicro(err)
	if e == nil || e.Code != user.CodeInvalidArgument || e.Fields["email"] == "" || e.Fields["password"] == "" || e.Fields["name"] == "" {
		t.Fatalf("invalid create: %#v", e)
	}
	if _, err := users.Create(ctx, &userv1.CreateRequest{Email: "bob@example.com", Password: pw, Name: "Bob"}); err != nil {
		t.Fatal(err)
	}
	_, err = users.Create(ctx, &userv1.CreateRequest{Email: "BOB@example.com", Password: pw, Name: "Bob"})
	if e := rpc.FromMicro(err); e.Code != user.CodeAlreadyExists {
		t.Fatalf("duplicate: %v", err)
	}
	_, err = users.Auth(ctx, &userv1.AuthRequest{Email: "bob@example.com", Password: "wrong wrong wrong"})
	if e := rpc.FromMicro(err); e.Code != user.CodeUnauthenticated || e.Message != user.ErrBadCredentials.Message {
		t.Fatalf("bad login: %v", err)
	}
	bob, err := users.Auth(ctx, &userv1.AuthRequest{Email: "bob@example.com", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	asBob := withBearer(ctx, bob.AccessToken)
	_, err = users.Get(ctx, &userv1.GetRequest{Id: "0190a8e4-0000-7000-8000-000000000000"})
	if e := rpc.FromMicro(err); e.Code != user.CodeUnauthenticated {
		t.Fatalf("anonymous get: %v", err)
	}
	_, err = users.Get(asBob, &userv1.GetRequest{Id: "0190a8e4-0000-7000-8000-000000000000"})
	if e := rpc.FromMicro(err); e.Code != user.CodePermissionDenied {
		t.Fatalf("someone else's user: %v", err)
	}
	_, err = users.Pagination(asBob, &userv1.PaginationRequest{})
	if e := rpc.FromMicro(err); e.Code != user.CodePermissionDenied {
		t.Fatalf("user listing: %v", err)
	}
	keys, err := users.Keys(ctx, &userv1.KeysRequest{})
	if err != nil || len(keys.Jwks) < 20 {
		t.Fatalf("Keys: %v", err)
	}

	// No instance at all: the client reports it as unavailable, not as an
	// answer from the service.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	_, err = users.Get(ctx, &userv1.GetRequest{Id: "0190a8e4-0000-7000-8000-000000000000"})
	if e := rpc.FromMicro(err); e == nil || e.Code != user.CodeUnavailable {
		t.Fatalf("call with no instance: %v, want unavailable", err)
	}
}

// withBearer returns ctx with the caller's access token in the call's
// metadata, as any gRPC client sends it.
func withBearer(ctx context.Context, tok string) context.Context {
	return metadata.NewContext(ctx, metadata.Metadata{"Authorization": "Bearer " + tok})
}

// TestVerificationOverTheWire: the verification RPCs are anonymous, the
// new error code and the user's verification fields cross the wire, and
// an enumeration-safe sign-up answers "accepted" with no user for a new
// and a taken address alike.
func TestVerificationOverTheWire(t *testing.T) {
	st := stack.New(t, stack.Options{NoEvents: true,
		Config: user.Config{RequireVerifiedEmail: true, SignupEnumerationSafe: true}})
	_, users := serve(t, st)
	ctx := t.Context()

	for _, email := range []string{"vera@example.com", "vera@example.com"} {
		resp, err := users.Create(ctx, &userv1.CreateRequest{Email: email, Password: pw, Name: "Vera"})
		if err != nil || !resp.GetAccepted() || resp.GetUser() != nil {
			t.Fatalf("enumeration-safe create: %v, %v", resp, err)
		}
	}
	_, err := users.Auth(ctx, &userv1.AuthRequest{Email: "vera@example.com", Password: pw})
	if e := rpc.FromMicro(err); e == nil || e.Code != user.CodeEmailNotVerified {
		t.Fatalf("unverified login: %v", err)
	}
	if _, err := users.ResendVerification(ctx, &userv1.ResendVerificationRequest{Email: "vera@example.com"}); err != nil {
		t.Fatal(err)
	}
	var tok string
	for _, m := range drain(t, st) {
		if e, _ := user.ParseEvent(m); e.Verification != nil {
			tok = e.Verification.Token
		}
	}
	_, err = users.VerifyEmail(ctx, &userv1.VerifyEmailRequest{Token: "nope"})
	if e := rpc.FromMicro(err); e == nil || e.Code != user.CodeInvalidArgument || e.Fields["token"] == "" {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := users.VerifyEmail(ctx, &userv1.VerifyEmailRequest{Token: tok}); err != nil {
		t.Fatal(err)
	}
	s, err := users.Auth(ctx, &userv1.AuthRequest{Email: "vera@example.com", Password: pw})
	if err != nil || !s.GetUser().GetEmailVerified() {
		t.Fatalf("verified login: %v, %v", s, err)
	}
}

// serve starts the service of st on an in-memory registry, stopped when
// the test ends, and returns it with a client.
func serve(t *testing.T, st *stack.Stack) (*rpc.Server, userv1.UserService) {
	t.Helper()
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg}, rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	users, _ := rpc.NewUserClient(rpc.ClientConfig{Registry: reg})
	return srv, users
}

// drain returns the bodies of the events in st's outbox.
func drain(t *testing.T, st *stack.Stack) [][]byte {
	t.Helper()
	var out [][]byte
	_, err := st.Store.DrainOutbox(t.Context(), 1000, func(_ context.Context, rows []events.Message) error {
		for _, r := range rows {
			out = append(out, r.Body)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
