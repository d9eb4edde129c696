package rpc_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/mtls"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// direct is a plain gRPC client of the service's port: what any process
// that reaches the port can do, without the API, go-micro or the registry.
type direct struct {
	t    *testing.T
	conn *grpc.ClientConn
}

func dialDirect(t *testing.T, addr string, creds credentials.TransportCredentials) *direct {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &direct{t: t, conn: conn}
}

// call invokes /user.v1.User/<method> with in, and token (if any) as the
// bearer credential, and returns the gRPC code.
func (d *direct) call(method, token string, in, out proto.Message) codes.Code {
	d.t.Helper()
	return status.Code(d.invoke(method, token, in, out))
}

// invoke is call returning the error.
func (d *direct) invoke(method, token string, in, out proto.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return d.conn.Invoke(ctx, "/user.v1.User/"+method, in, out)
}

// forgeActor appends the removed Actor field (its old number, with id and
// an ADMIN role) to m as unknown bytes: exactly what an old client, or an
// attacker who read an old contract, sends.
func forgeActor(m proto.Message, field protowire.Number, id string) proto.Message {
	var actor []byte
	actor = protowire.AppendTag(actor, 1, protowire.BytesType)
	actor = protowire.AppendString(actor, id)
	actor = protowire.AppendTag(actor, 2, protowire.VarintType)
	actor = protowire.AppendVarint(actor, uint64(userv1.Role_ROLE_ADMIN))
	var b []byte
	b = protowire.AppendTag(b, field, protowire.BytesType)
	b = protowire.AppendBytes(b, actor)
	m.ProtoReflect().SetUnknown(append(m.ProtoReflect().GetUnknown(), b...))
	return m
}

func startServer(t *testing.T, st *stack.Stack, tlsConf *tls.Config) string {
	t.Helper()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: rpc.NewMemoryRegistry(), TLS: tlsConf},
		rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	return srv.Address()
}

// TestPortRefusesUnauthenticatedCalls reaches the gRPC port directly: every
// privileged RPC is refused without valid credentials, forged actor or
// not, and only the anonymous operations work.
func TestPortRefusesUnauthenticatedCalls(t *testing.T) {
	st := stack.New(t, stack.Options{})
	ctx := t.Context()
	admin, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "root@example.com", Password: pw, Name: "Root", Role: user.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	d := dialDirect(t, startServer(t, st, nil), insecure.NewCredentials())

	var created userv1.CreateResponse
	if c := d.call("Create", "", forgeActor(&userv1.CreateRequest{Email: "mallory@example.com", Password: pw, Name: "M",
		Role: userv1.Role_ROLE_ADMIN}, 5, admin.ID), &created); c != codes.PermissionDenied {
		t.Fatalf("anonymous Create of an admin with a forged actor: %v, want PermissionDenied", c)
	}
	if c := d.call("Create", "", &userv1.CreateRequest{Email: "mallory@example.com", Password: pw, Name: "M"}, &created); c != codes.OK ||
		created.GetUser().GetRole() != userv1.Role_ROLE_USER {
		t.Fatalf("anonymous registration of a plain user: %v %v", c, created.GetUser())
	}
	victim := created.GetUser().GetId()
	var auth userv1.AuthResponse
	if c := d.call("Auth", "", &userv1.AuthRequest{Email: "mallory@example.com", Password: pw}, &auth); c != codes.OK {
		t.Fatalf("Auth: %v", c)
	}
	mallory := auth.GetAccessToken()

	for _, tc := range []struct {
		name, token string
		method      string
		in, out     proto.Message
		want        codes.Code
	}{
		{"get, no token", "", "Get", forgeActor(&userv1.GetRequest{Id: admin.ID}, 2, admin.ID), &userv1.GetResponse{}, codes.Unauthenticated},
		{"list, no token", "", "Pagination", forgeActor(&userv1.PaginationRequest{}, 7, admin.ID), &userv1.PaginationResponse{}, codes.Unauthenticated},
		{"update, no token", "", "Update", forgeActor(&userv1.UpdateRequest{Id: admin.ID, Name: proto.String("x")}, 8, admin.ID), &userv1.UpdateResponse{}, codes.Unauthenticated},
		{"delete, no token", "", "Delete", forgeActor(&userv1.DeleteRequest{Id: admin.ID}, 2, admin.ID), &userv1.DeleteResponse{}, codes.Unauthenticated},
		{"delete, garbage token", "not-a-jwt", "Delete", &userv1.DeleteRequest{Id: victim}, &userv1.DeleteResponse{}, codes.Unauthenticated},
		{"delete admin as user with forged actor", mallory, "Delete", forgeActor(&userv1.DeleteRequest{Id: admin.ID}, 2, admin.ID), &userv1.DeleteResponse{}, codes.PermissionDenied},
		{"list as user with forged actor", mallory, "Pagination", forgeActor(&userv1.PaginationRequest{}, 7, admin.ID), &userv1.PaginationResponse{}, codes.PermissionDenied},
		{"promote self", mallory, "Update", &userv1.UpdateRequest{Id: victim, Role: userv1.Role_ROLE_ADMIN.Enum()}, &userv1.UpdateResponse{}, codes.PermissionDenied},
		{"list sessions, no token", "", "ListSessions", &userv1.ListSessionsRequest{Id: admin.ID}, &userv1.ListSessionsResponse{}, codes.Unauthenticated},
		{"end sessions, no token", "", "EndSessions", &userv1.EndSessionsRequest{Id: admin.ID}, &userv1.EndSessionsResponse{}, codes.Unauthenticated},
		{"list an admin's sessions as user", mallory, "ListSessions", &userv1.ListSessionsRequest{Id: admin.ID}, &userv1.ListSessionsResponse{}, codes.PermissionDenied},
		{"end an admin's sessions as user", mallory, "EndSessions", &userv1.EndSessionsRequest{Id: admin.ID}, &userv1.EndSessionsResponse{}, codes.PermissionDenied},
		{"list own sessions", mallory, "ListSessions", &userv1.ListSessionsRequest{Id: victim}, &userv1.ListSessionsResponse{}, codes.OK},
		{"get own user", mallory, "Get", &userv1.GetRequest{Id: victim}, &userv1.GetResponse{}, codes.OK},
		{"keys, no token", "", "Keys", &userv1.KeysRequest{}, &userv1.KeysResponse{}, codes.OK},
		{"validate, no token", "", "Validate", &userv1.ValidateRequest{AccessToken: mallory}, &userv1.ValidateResponse{}, codes.OK},
		{"reset request, no token", "", "CreatePasswordReset", &userv1.CreatePasswordResetRequest{Email: "root@example.com"}, &userv1.CreatePasswordResetResponse{}, codes.OK},
		{"resend verification, no token", "", "ResendVerification", &userv1.ResendVerificationRequest{Email: "mallory@example.com"}, &userv1.ResendVerificationResponse{}, codes.OK},
		{"verify with an unknown token", "", "VerifyEmail", &userv1.VerifyEmailRequest{Token: "not-a-token"}, &userv1.VerifyEmailResponse{}, codes.InvalidArgument},
	} {
		if got := d.call(tc.method, tc.token, tc.in, tc.out); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if _, err := st.Service.Get(ctx, user.SystemActor, admin.ID); err != nil {
		t.Fatalf("the admin is gone: %v", err)
	}
}

// TestServiceAccountOverGRPC: a service account signs in with the Auth RPC
// and its token carries its scopes; Validate says whom it speaks for.
func TestServiceAccountOverGRPC(t *testing.T) {
	st := stack.New(t, stack.Options{})
	ctx := t.Context()
	u, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "ann@example.com", Password: pw, Name: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	acct, secret, err := st.Service.CreateServiceAccount(ctx, user.SystemActor, "orders", []user.Scope{user.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	d := dialDirect(t, startServer(t, st, nil), insecure.NewCredentials())
	var auth userv1.AuthResponse
	if c := d.call("Auth", "", &userv1.AuthRequest{ClientId: acct.ID, ClientSecret: "wrong"}, &auth); c != codes.Unauthenticated {
		t.Fatalf("wrong secret: %v", c)
	}
	if c := d.call("Auth", "", &userv1.AuthRequest{ClientId: acct.ID, ClientSecret: secret}, &auth); c != codes.OK {
		t.Fatalf("client credentials: %v", c)
	}
	if auth.GetScope() != "users:read" || auth.GetRefreshToken() != "" || auth.GetExpiresIn() <= 0 || auth.GetUser() != nil {
		t.Fatalf("auth response %v", &auth)
	}
	tok := auth.GetAccessToken()
	var v userv1.ValidateResponse
	if c := d.call("Validate", "", &userv1.ValidateRequest{AccessToken: tok}, &v); c != codes.OK ||
		v.GetClientId() != acct.ID || len(v.GetScopes()) != 1 || v.GetScopes()[0] != "users:read" || v.GetUser() != nil {
		t.Fatalf("Validate: %v %v", c, &v)
	}
	if c := d.call("Get", tok, &userv1.GetRequest{Id: u.ID}, &userv1.GetResponse{}); c != codes.OK {
		t.Errorf("users:read Get: %v", c)
	}
	if c := d.call("Pagination", tok, &userv1.PaginationRequest{}, &userv1.PaginationResponse{}); c != codes.OK {
		t.Errorf("users:read Pagination: %v", c)
	}
	if c := d.call("Update", tok, &userv1.UpdateRequest{Id: u.ID, Name: proto.String("X")}, &userv1.UpdateResponse{}); c != codes.PermissionDenied {
		t.Errorf("users:read Update: %v, want PermissionDenied", c)
	}
	if c := d.call("Delete", tok, &userv1.DeleteRequest{Id: u.ID}, &userv1.DeleteResponse{}); c != codes.PermissionDenied {
		t.Errorf("users:read Delete: %v, want PermissionDenied", c)
	}
	if err := st.Service.RevokeServiceAccount(ctx, user.SystemActor, acct.ID); err != nil {
		t.Fatal(err)
	}
	if c := d.call("Get", tok, &userv1.GetRequest{Id: u.ID}, &userv1.GetResponse{}); c != codes.Unauthenticated {
		t.Errorf("revoked account's token: %v, want Unauthenticated", c)
	}
	if c := d.call("Auth", "", &userv1.AuthRequest{ClientId: acct.ID, ClientSecret: secret}, &auth); c != codes.Unauthenticated {
		t.Errorf("revoked account signs in: %v", c)
	}
}

// TestMutualTLS runs the service with certificates from `usersvc certs
// generate`: the go-micro client with the client certificate gets through;
// a plaintext client, a client without a certificate, one with a
// certificate from another CA, and a TLS 1.2 client are all refused.
func TestMutualTLS(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if err := mtls.Generate(d, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	files := func(d, side string) mtls.Files {
		return mtls.Files{Cert: filepath.Join(d, side+".pem"), Key: filepath.Join(d, side+"-key.pem"), CA: filepath.Join(d, "ca.pem")}
	}
	serverConf, err := mtls.ServerConfig(files(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	st := stack.New(t, stack.Options{})
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg, TLS: serverConf},
		rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })

	clientConf, err := mtls.ClientConfig(files(dir, "client"))
	if err != nil {
		t.Fatal(err)
	}
	users := rpc.NewUsers(rpc.ClientConfig{Registry: reg, TLS: clientConf, Timeout: 5 * time.Second})
	if _, err := users.Keys(t.Context()); err != nil {
		t.Fatalf("mutual TLS client: %v", err)
	}

	keys := func(creds credentials.TransportCredentials) error {
		d := dialDirect(t, srv.Address(), creds)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return d.conn.Invoke(ctx, "/user.v1.User/Keys", &userv1.KeysRequest{}, &userv1.KeysResponse{})
	}
	if err := keys(credentials.NewTLS(clientConf)); err != nil {
		t.Fatalf("plain gRPC client with the client certificate: %v", err)
	}
	noCert := clientConf.Clone()
	noCert.Certificates = nil
	foreign, err := mtls.ClientConfig(mtls.Files{Cert: files(other, "client").Cert, Key: files(other, "client").Key, CA: files(dir, "client").CA})
	if err != nil {
		t.Fatal(err)
	}
	old := clientConf.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":                 insecure.NewCredentials(),
		"no client certificate":     credentials.NewTLS(noCert),
		"certificate of another CA": credentials.NewTLS(foreign),
		"TLS 1.2":                   credentials.NewTLS(old),
	} {
		err := keys(creds)
		if err == nil {
			t.Errorf("%s: call succeeded, want refused", name)
			continue
		}
		if c := status.Code(err); c != codes.Unavailable && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want the connection refused", name, err)
		}
	}
}

// TestPortErrorCodes: a refusal for too many attempts reaches a plain gRPC
// client as ResourceExhausted, and a message that does not decode as
// InvalidArgument: the client's fault, not the server's.
func TestPortErrorCodes(t *testing.T) {
	st := stack.New(t, stack.Options{PasswordAttempts: ratelimit.NewLocal(ratelimit.Rule{Limit: 1, Window: time.Minute})})
	d := dialDirect(t, startServer(t, st, nil), insecure.NewCredentials())
	in := &userv1.AuthRequest{Email: "nobody@example.com", Password: "wrong password"}
	if c := d.call("Auth", "", in, &userv1.AuthResponse{}); c != codes.Unauthenticated {
		t.Fatalf("first attempt: %v", c)
	}
	if c := d.call("Auth", "", in, &userv1.AuthResponse{}); c != codes.ResourceExhausted {
		t.Errorf("attempt past the budget: %v, want ResourceExhausted", c)
	}
	// Field 1 (email, a proto3 string) holding bytes that are not UTF-8.
	if c := d.call("Auth", "", wrapperspb.Bytes([]byte{0xff, 0xfe}), &userv1.AuthResponse{}); c != codes.InvalidArgument {
		t.Errorf("undecodable message: %v, want InvalidArgument", c)
	}
}

// TestPortClientLimits hammers each anonymous action at the gRPC port from
// one caller: sign-in, sign-up, reset request and verification resend are
// each limited per caller address, as at the API and the page forms. A
// trusted peer (an API instance, which spent the budget at its own door)
// is not limited again.
func TestPortClientLimits(t *testing.T) {
	st := stack.New(t, stack.Options{})
	limits := func() map[ratelimit.Action]ratelimit.Limiter {
		m := map[ratelimit.Action]ratelimit.Limiter{}
		for _, a := range []ratelimit.Action{ratelimit.SignIn, ratelimit.SignUp, ratelimit.ResetRequest, ratelimit.VerificationResend} {
			m[a] = ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: time.Minute})
		}
		return m
	}
	start := func(trusted []netip.Prefix) *direct {
		srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: rpc.NewMemoryRegistry()},
			rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{Limits: limits(), Trusted: trusted}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Stop() })
		return dialDirect(t, srv.Address(), insecure.NewCredentials())
	}
	n := 0
	actions := []struct {
		method  string
		in, out func() proto.Message
	}{
		{"Auth", func() proto.Message { return &userv1.AuthRequest{Email: "x@example.com", Password: "wrong password"} },
			func() proto.Message { return &userv1.AuthResponse{} }},
		{"Create", func() proto.Message {
			n++
			return &userv1.CreateRequest{Email: fmt.Sprintf("u%d@example.com", n), Password: pw, Name: "U"}
		}, func() proto.Message { return &userv1.CreateResponse{} }},
		{"CreatePasswordReset", func() proto.Message { return &userv1.CreatePasswordResetRequest{Email: "x@example.com"} },
			func() proto.Message { return &userv1.CreatePasswordResetResponse{} }},
		{"ResendVerification", func() proto.Message { return &userv1.ResendVerificationRequest{Email: "x@example.com"} },
			func() proto.Message { return &userv1.ResendVerificationResponse{} }},
	}
	direct, viaAPI := start(nil), start([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	signUpsWith(t, st, start(nil))
	for _, a := range actions {
		for i := range 3 {
			got := direct.call(a.method, "", a.in(), a.out())
			if limited := got == codes.ResourceExhausted; limited != (i == 2) {
				t.Errorf("%s, call %d from one caller: %v", a.method, i+1, got)
			}
		}
		for i := range 3 {
			if got := viaAPI.call(a.method, "", a.in(), a.out()); got == codes.ResourceExhausted {
				t.Errorf("%s, call %d from a trusted peer: limited", a.method, i+1)
			}
		}
	}
}

// signUpsWith: a signed-in plain user's Create is a sign-up too and spends
// the caller's sign-up budget (as POST /user does at the API); an admin's
// is not limited.
func signUpsWith(t *testing.T, st *stack.Stack, d *direct) {
	t.Helper()
	ctx := t.Context()
	for _, role := range []user.Role{user.RoleUser, user.RoleAdmin} {
		email := "signer-" + string(role) + "@example.com"
		if _, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: email, Password: pw, Name: "S", Role: role}); err != nil {
			t.Fatal(err)
		}
		var auth userv1.AuthResponse
		if c := d.call("Auth", "", &userv1.AuthRequest{Email: email, Password: pw}, &auth); c != codes.OK {
			t.Fatalf("Auth as %s: %v", role, c)
		}
		for i := range 3 {
			in := &userv1.CreateRequest{Email: fmt.Sprintf("by-%s-%d@example.com", role, i), Password: pw, Name: "U"}
			got := d.call("Create", auth.GetAccessToken(), in, &userv1.CreateResponse{})
			if limited := got == codes.ResourceExhausted; limited != (role == user.RoleUser && i == 2) {
				t.Errorf("Create %d by a signed-in %s: %v", i+1, role, got)
			}
		}
	}
}
