package user_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/user"
)

// txSpy is the real store, instrumented to tell whether a transaction is
// open at the moment something else (the hasher) runs.
type txSpy struct {
	user.Store
	open atomic.Bool
}

func (s *txSpy) Atomic(ctx context.Context, fn func(user.Repo) error) error {
	return s.Store.Atomic(ctx, func(r user.Repo) error {
		s.open.Store(true)
		defer s.open.Store(false)
		return fn(r)
	})
}

// hashSpy records whether any Hash ran inside a transaction of tx.
type hashSpy struct {
	user.PasswordHasher
	tx       *txSpy
	hashes   atomic.Int32
	inTxHash atomic.Int32
}

func (h *hashSpy) Hash(pw string) (string, error) {
	h.hashes.Add(1)
	if h.tx.open.Load() {
		h.inTxHash.Add(1)
	}
	return h.PasswordHasher.Hash(pw)
}

// On SQLite a write transaction holds the database's only write lock, so an
// argon2 run inside it stalls every other write for its duration.
func TestResetPasswordHashesBeforeTheTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "alice@example.com", user.RoleUser)
	tx := &txSpy{Store: e.store}
	h := &hashSpy{PasswordHasher: e.hasher, tx: tx}
	svc, err := user.NewService(user.Deps{Store: tx, Hasher: h, Policy: password.DefaultPolicy(), Tokens: e.tokens,
		Now: e.clock.Now}, user.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.CreatePasswordReset(ctx, "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	before := h.hashes.Load()
	if err := svc.ResetPassword(ctx, e.mail.last(t, "alice@example.com"), "a brand new passphrase"); err != nil {
		t.Fatal(err)
	}
	if h.hashes.Load() == before {
		t.Fatal("the reset hashed nothing")
	}
	if n := h.inTxHash.Load(); n != 0 {
		t.Fatalf("%d password hashes ran inside the write transaction", n)
	}
	if _, err := svc.Auth(ctx, "alice@example.com", "a brand new passphrase"); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	// An unknown token costs no hash at all: hashing first must not make
	// the endpoint a free argon2 run for anyone.
	before = h.hashes.Load()
	if err := svc.ResetPassword(ctx, "not-a-token", "a brand new passphrase"); err == nil {
		t.Fatal("unknown token accepted")
	}
	if h.hashes.Load() != before {
		t.Fatal("an unknown reset token was paid for with a password hash")
	}
}
