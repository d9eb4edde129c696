package rpc_test

import (
	"context"
	"fmt"

	"testing"
	"time"

	"github.com/google/uuid"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// benchEnv is the user service behind a real gRPC server and go-micro
// client on loopback (in-process registry), on SQLite: the RPC path the API
// takes, without HTTP in front.
type benchEnv struct {
	st    *stack.Stack
	users userv1.UserService
	admin context.Context // carries the admin's bearer token
	uid   string
	token string
}

func newBenchEnv(b *testing.B, params password.Params) *benchEnv {
	b.Helper()
	st := stack.New(b, stack.Options{Params: params})
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg}, rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Stop() })
	users, _ := rpc.NewUserClient(rpc.ClientConfig{Registry: reg})
	ctx := context.Background()
	u, err := st.Service.Create(ctx, user.SystemActor, user.CreateInput{Email: "bench@example.com", Password: pw, Name: "Bench", Role: user.RoleAdmin})
	if err != nil {
		b.Fatal(err)
	}
	s, err := st.Service.Auth(ctx, "bench@example.com", pw)
	if err != nil {
		b.Fatal(err)
	}
	return &benchEnv{st: st, users: users, admin: withBearer(ctx, s.AccessToken), uid: u.ID, token: s.AccessToken}
}

// BenchmarkAuth is one login over gRPC with the production argon2id
// parameters (m=19 MiB, t=2, p=1): the hash dominates.
func BenchmarkAuth(b *testing.B) {
	e := newBenchEnv(b, password.DefaultParams())
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.users.Auth(context.Background(), &userv1.AuthRequest{Email: "bench@example.com", Password: pw}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkValidate is token validation over gRPC: signature check plus
// one user read.
func BenchmarkValidate(b *testing.B) {
	e := newBenchEnv(b, stack.CheapParams)
	// Enough calls in flight to keep both cores busy despite the
	// round-trip latency, as many API instances would.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.users.Validate(context.Background(), &userv1.ValidateRequest{AccessToken: e.token}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGet is a user read by ID over gRPC.
func BenchmarkGet(b *testing.B) {
	e := newBenchEnv(b, stack.CheapParams)
	// Enough calls in flight to keep both cores busy despite the
	// round-trip latency, as many API instances would.
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.users.Get(e.admin, &userv1.GetRequest{Id: e.uid}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// seedUsers inserts n users in one transaction with a fixed hash (no
// argon2 per user), through the store the service uses.
func seedUsers(b *testing.B, st *stack.Stack, n int) {
	b.Helper()
	now := time.Now().UTC()
	err := st.Store.Atomic(context.Background(), func(r user.Repo) error {
		for i := range n {
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			u := &user.User{ID: id.String(), Email: fmt.Sprintf("user%06d@example.com", i), Name: fmt.Sprintf("User %06d", i),
				Role: user.RoleUser, Status: user.StatusActive, PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
				CreatedAt: now, UpdatedAt: now}
			if err := r.CreateUser(context.Background(), u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPagination lists a page of 20 over gRPC among 100,000 users: the
// first page (with its COUNT) and a page near the end reached by cursor
// (keyset: no COUNT, a primary-key seek).
func BenchmarkPagination(b *testing.B) {
	e := newBenchEnv(b, stack.CheapParams)
	seedUsers(b, e.st, 100_000)
	deep, err := e.users.Pagination(e.admin, &userv1.PaginationRequest{Page: 4999, PageSize: 20})
	if err != nil || deep.NextCursor == "" {
		b.Fatalf("deep offset page: %v", err)
	}
	b.Run("page1", func(b *testing.B) {
		for b.Loop() {
			r, err := e.users.Pagination(e.admin, &userv1.PaginationRequest{Page: 1, PageSize: 20})
			if err != nil || len(r.Users) != 20 || r.Total != 100_001 {
				b.Fatalf("page 1: %v", err)
			}
		}
	})
	b.Run("deep-cursor", func(b *testing.B) {
		for b.Loop() {
			r, err := e.users.Pagination(e.admin, &userv1.PaginationRequest{Cursor: deep.NextCursor, PageSize: 20})
			if err != nil || len(r.Users) != 20 {
				b.Fatalf("deep cursor page: %v", err)
			}
		}
	})
	b.Run("deep-offset", func(b *testing.B) {
		for b.Loop() {
			r, err := e.users.Pagination(e.admin, &userv1.PaginationRequest{Page: 5000, PageSize: 20})
			if err != nil || len(r.Users) != 20 {
				b.Fatalf("deep offset page: %v", err)
			}
		}
	})
}
