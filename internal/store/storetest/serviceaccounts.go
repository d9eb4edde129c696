package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/user"
)

func testServiceAccounts(t *testing.T, s user.Store) {
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	a := user.ServiceAccount{ID: newID(t), Name: "orders", SecretHash: "ab12", CreatedAt: created,
		Scopes: []user.Scope{user.ScopeRead, user.ScopeWrite}}
	b := user.ServiceAccount{ID: newID(t), Name: "billing", SecretHash: "cd34", CreatedAt: created,
		Scopes: []user.Scope{user.ScopeAdmin}}
	for _, x := range []user.ServiceAccount{a, b} {
		if err := s.CreateServiceAccount(ctx, x); err != nil {
			t.Fatalf("create %s: %v", x.Name, err)
		}
	}
	got, err := s.ServiceAccountByID(ctx, a.ID)
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Name != a.Name || got.SecretHash != a.SecretHash || !slices.Equal(got.Scopes, a.Scopes) || got.RevokedAt != nil {
		t.Fatalf("got %+v, want %+v", got, a)
	}
	checkTime(t, "created_at", got.CreatedAt, created)
	if _, err := s.ServiceAccountByID(ctx, newID(t)); !errors.Is(err, user.ErrNotFound) {
		t.Fatalf("unknown id: err = %v, want ErrNotFound", err)
	}

	revokedAt := created.Add(time.Hour)
	if ok, err := s.RevokeServiceAccount(ctx, a.ID, revokedAt); err != nil || !ok {
		t.Fatalf("revoke: ok=%v err=%v, want true", ok, err)
	}
	if ok, err := s.RevokeServiceAccount(ctx, a.ID, revokedAt.Add(time.Hour)); err != nil || ok {
		t.Fatalf("second revoke: ok=%v err=%v, want false (first revocation stays)", ok, err)
	}
	if ok, err := s.RevokeServiceAccount(ctx, newID(t), revokedAt); err != nil || ok {
		t.Fatalf("revoke unknown: ok=%v err=%v, want false", ok, err)
	}
	list, err := s.ListServiceAccounts(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	var ids []string
	for _, x := range list {
		if x.ID == a.ID || x.ID == b.ID {
			ids = append(ids, x.ID)
		}
		if x.ID == a.ID {
			checkTimePtr(t, "revoked_at", x.RevokedAt, &revokedAt)
		}
		if x.ID == b.ID && x.RevokedAt != nil {
			t.Fatalf("billing revoked: %v", x.RevokedAt)
		}
	}
	if !slices.Equal(ids, []string{a.ID, b.ID}) {
		t.Fatalf("list order = %v, want oldest first %v", ids, []string{a.ID, b.ID})
	}
}
