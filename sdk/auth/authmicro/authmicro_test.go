package authmicro_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"go-micro.dev/v6/client"
	mgrpcclient "go-micro.dev/v6/client/grpc"
	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/server"
	mgrpcserver "go-micro.dev/v6/server/grpc"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authmicro"
	"github.com/usersvc/usersvc/sdk/auth/authtest"
)

// whoami answers Get with the caller's ID and Keys without a token; any
// other method is not called.
type whoami struct{ userv1.UserHandler }

func (whoami) Get(ctx context.Context, _ *userv1.GetRequest, rsp *userv1.GetResponse) error {
	p, err := auth.Check(ctx, auth.RequireUser())
	if err != nil {
		return authmicro.Error("test", err)
	}
	rsp.User = &userv1.UserInfo{Id: p.ID, Role: userv1.Role_ROLE_ADMIN}
	return nil
}

func (whoami) Keys(ctx context.Context, _ *userv1.KeysRequest, rsp *userv1.KeysResponse) error {
	_, signedIn := auth.FromContext(ctx)
	if signedIn {
		rsp.Jwks = "signed in"
	}
	return nil
}

// TestHandlerWrapper runs the wrapper in a real go-micro gRPC server: the
// token travels as call metadata, refusals arrive as go-micro errors.
func TestHandlerWrapper(t *testing.T) {
	iss := authtest.NewIssuer("k1")
	v, err := auth.NewVerifier(auth.Config{Keys: iss.Keys(), Issuer: "usersvc", Audience: "usersvc"})
	if err != nil {
		t.Fatal(err)
	}
	name := "authmicro-test-" + uuid.NewString()
	reg := registry.NewMemoryRegistry()
	srv := mgrpcserver.NewServer(server.Name(name), server.Address("127.0.0.1:0"),
		server.WrapHandler(authmicro.HandlerWrapper(v, authmicro.Options{ID: name, Public: []string{"User.Keys"},
			Endpoints: map[string][]auth.Requirement{"User.Get": {auth.RequireVerifiedEmail()}}})),
		server.Registry(reg))
	if err := userv1.RegisterUserHandler(srv, whoami{}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	users := userv1.NewUserService(name, mgrpcclient.NewClient(client.Registry(reg)))
	ctx := context.Background()

	rsp, err := users.Get(authmicro.WithBearer(ctx, iss.UserToken("u-1", auth.RoleUser, nil)), &userv1.GetRequest{})
	if err != nil || rsp.User.GetId() != "u-1" {
		t.Fatalf("valid token: %v, %v", rsp, err)
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		code int32
	}{
		{"no token", ctx, 401},
		{"forged token", authmicro.WithBearer(ctx, authtest.NewIssuer("k1").UserToken("u-1", auth.RoleUser, nil)), 401},
		{"unverified email", authmicro.WithBearer(ctx, iss.UserToken("u-1", auth.RoleUser, map[string]any{"email_verified": false})), 403},
		{"service account", authmicro.WithBearer(ctx, iss.ServiceToken("sa-1", "users:read")), 403},
	} {
		_, err := users.Get(c.ctx, &userv1.GetRequest{})
		var me *merrors.Error
		if !errors.As(err, &me) || me.Code != c.code {
			t.Errorf("%s: err = %v, want code %d", c.name, err, c.code)
		}
	}
	// A public endpoint: no token is fine, and a token sent is verified.
	if rsp, err := users.Keys(ctx, &userv1.KeysRequest{}); err != nil || rsp.Jwks != "" {
		t.Fatalf("public without token: %v, %v", rsp, err)
	}
	if rsp, err := users.Keys(authmicro.WithBearer(ctx, iss.ServiceToken("sa-1")), &userv1.KeysRequest{}); err != nil || rsp.Jwks != "signed in" {
		t.Fatalf("public with token: %v, %v", rsp, err)
	}
}
