package userclient_test

import (
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"go-micro.dev/v6/client"
	mgrpcclient "go-micro.dev/v6/client/grpc"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authmicro"
	"github.com/usersvc/usersvc/sdk/userclient"
)

func TestMain(m *testing.M) {
	rpc.UseLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}

// world is the real user service (SQLite store, real keys) behind a real
// go-micro gRPC server, and a service account of users:read.
type world struct {
	st            *stack.Stack
	reg           rpc.Registry
	clientID, key string
	userID        string
}

func newWorld(t testing.TB) *world { return newWorldWith(t, stack.Options{}) }

func newWorldWith(t testing.TB, o stack.Options) *world {
	t.Helper()
	st := stack.New(t, o)
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg},
		rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	ctx := t.Context()
	acct, secret, err := st.Service.CreateServiceAccount(ctx, user.SystemActor, "orders", []user.Scope{user.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "ann@example.com", Password: "correct horse battery staple", Name: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	return &world{st: st, reg: reg, clientID: acct.ID, key: secret, userID: u.ID}
}

func (w *world) client(opts ...client.Option) client.Client {
	return mgrpcclient.NewClient(append(opts, client.Registry(w.reg))...)
}

// TestServiceAccountSignsCalls: a client wrapped by ServiceAccount calls
// the real service as the account, renews its token before expiry, and
// keeps a forwarded user's token.
func TestServiceAccountSignsCalls(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	sa := userclient.NewServiceAccount(userclient.New(w.client()), w.clientID, w.key)
	clk := testenv.NewClock(time.Now())
	sa.SetClock(clk.Now)
	users := userclient.New(w.client(client.Wrap(sa.Wrapper())))

	u, err := users.Get(ctx, w.userID)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != w.userID || u.Email != "ann@example.com" || u.Role != auth.RoleUser || !u.Active {
		t.Fatalf("user = %+v", u)
	}
	if _, err := users.List(ctx, userclient.ListOptions{PageSize: 10}); err != nil {
		t.Fatal(err)
	}
	clk.Add(11 * time.Minute) // within 15m but not within the last fifth
	if _, err := users.Get(ctx, w.userID); err != nil || sa.Renewals() != 1 {
		t.Fatalf("before the margin: err %v, renewals %d, want 1", err, sa.Renewals())
	}
	clk.Add(time.Minute + time.Second) // past 12m: under three minutes left, the margin
	if _, err := users.Get(ctx, w.userID); err != nil || sa.Renewals() != 2 {
		t.Fatalf("at the margin: err %v, renewals %d, want 2", err, sa.Renewals())
	}
	// A forwarded credential wins: a bogus one is refused, not replaced.
	_, err = users.Get(authmicro.WithBearer(ctx, "bogus"), w.userID)
	if !errors.Is(err, userclient.ErrUnauthenticated) {
		t.Fatalf("forwarded bogus token: err = %v, want ErrUnauthenticated", err)
	}
}

func TestTypedErrorsAndKeys(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	plain := userclient.New(w.client())
	if _, err := plain.AuthClient(ctx, w.clientID, "wrong"); !errors.Is(err, userclient.ErrUnauthenticated) {
		t.Fatalf("wrong secret: err = %v", err)
	}
	tok, err := plain.AuthClient(ctx, w.clientID, w.key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(authmicro.WithBearer(ctx, tok.AccessToken), "0190c0de-0000-7000-8000-000000000000"); !errors.Is(err, userclient.ErrNotFound) {
		t.Fatalf("unknown user: err = %v, want ErrNotFound", err)
	}
	var e *userclient.Error
	if _, err := plain.Get(ctx, w.userID); !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("anonymous Get: err = %v, want a typed error with a message", err)
	}
	// The JWKS over the Keys RPC verifies the account's token locally.
	v, err := auth.NewVerifier(auth.Config{Keys: plain.KeySource(), Issuer: stack.Issuer, Audience: stack.Audience})
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Verify(ctx, tok.AccessToken)
	if err != nil || p.ID != w.clientID || !p.HasScope("users:read") {
		t.Fatalf("local verify: %+v, %v", p, err)
	}
	val, err := plain.Validate(ctx, tok.AccessToken)
	if err != nil || val.ClientID != w.clientID || val.User != nil {
		t.Fatalf("Validate: %+v, %v", val, err)
	}
	// No instance: unavailable, with the transport cause kept.
	gone := userclient.NewNamed("no.such.service", w.client())
	if _, err := gone.Keys(ctx); !errors.Is(err, userclient.ErrUnavailable) {
		t.Fatalf("no instance: err = %v, want ErrUnavailable", err)
	}
}
