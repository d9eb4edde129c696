package rpc_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// TestRemoveFactorsClient: rpc.Users' RemoveFactor and RemoveFactors
// reach the service with the caller's token, and its refusals come back
// typed.
func TestRemoveFactorsClient(t *testing.T) {
	st := stack.New(t, stack.Options{NoEvents: true})
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg},
		rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	users := rpc.NewUsers(rpc.ClientConfig{Registry: reg, Timeout: 5 * time.Second})
	ctx := t.Context()
	signIn := func(email string, role user.Role) (*user.User, string) {
		t.Helper()
		u, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: email, Password: pw, Name: "X", Role: role})
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Service.Auth(ctx, email, pw)
		if err != nil {
			t.Fatal(err)
		}
		return u, s.AccessToken
	}
	u, userTok := signIn("una@example.com", user.RoleUser)
	_, otherTok := signIn("oscar@example.com", user.RoleUser)
	_, adminTok := signIn("root@example.com", user.RoleAdmin)
	enrol := func() string {
		t.Helper()
		e, err := st.Service.EnrolTOTP(ctx, user.Actor{ID: u.ID, Role: u.Role}, u.ID, "phone")
		if err != nil {
			t.Fatal(err)
		}
		return e.FactorID
	}

	fid := enrol()
	if e := rpc.FromMicro(users.RemoveFactor(withBearer(ctx, otherTok), u.ID, fid)); e == nil || e.Code != user.CodePermissionDenied {
		t.Fatalf("another user's RemoveFactor: %v, want permission_denied", e)
	}
	if e := rpc.FromMicro(users.RemoveFactor(withBearer(ctx, adminTok), u.ID, uuid.NewString())); e == nil || e.Code != user.CodeNotFound {
		t.Fatalf("RemoveFactor of an unknown factor: %v, want not_found", e)
	}
	if err := users.RemoveFactor(withBearer(ctx, adminTok), u.ID, fid); err != nil {
		t.Fatalf("admin RemoveFactor: %v", err)
	}
	enrol()
	if err := users.RemoveFactors(withBearer(ctx, userTok), u.ID); err != nil {
		t.Fatalf("owner RemoveFactors: %v", err)
	}
	if list, _, err := st.Service.Factors(ctx, user.Actor{ID: u.ID, Role: u.Role}, u.ID); err != nil || len(list) != 0 {
		t.Fatalf("factors left: %+v, %v", list, err)
	}
}
