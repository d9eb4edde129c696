package user_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/flows"
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

func (h *hashSpy) Hash(ctx context.Context, pw string) (string, error) {
	h.hashes.Add(1)
	if h.tx.open.Load() {
		h.inTxHash.Add(1)
	}
	return h.PasswordHasher.Hash(ctx, pw)
}

// On SQLite a write transaction holds the database's only write lock, so an
// argon2 run inside it stalls every other write for its duration.
func TestResetPasswordHashesBeforeTheTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create(t, "alice@example.com", user.RoleUser)
	tx := &txSpy{Store: e.store}
	h := &hashSpy{PasswordHasher: e.hasher, tx: tx}
	svc, err := flows.New(flows.Deps{Store: tx, Hasher: h, Policy: password.DefaultPolicy(), Tokens: e.tokens,
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

// An open reset token must die with every change that could mean its mail
// went to the wrong person or that someone else now decides about the
// account: a change of email (the old mailbox's holder would take the
// account back), password, status or role, and a deletion.
func TestResetTokenDiesOnAccountChange(t *testing.T) {
	ctx := context.Background()
	newEmail, newPW, oldPW := "alice.new@example.com", "an entirely different passphrase", strongPW
	disabled, enabled, admin := user.StatusDisabled, user.StatusActive, user.RoleAdmin
	changes := map[string]func(t *testing.T, e *env, u *user.User) error{
		"own email change": func(_ *testing.T, e *env, u *user.User) error {
			_, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Email: &newEmail, CurrentPassword: &oldPW})
			return err
		},
		"email change by an admin": func(_ *testing.T, e *env, u *user.User) error {
			_, err := e.svc.Update(ctx, user.SystemActor, u.ID, user.UpdateInput{Email: &newEmail})
			return err
		},
		"password change": func(_ *testing.T, e *env, u *user.User) error {
			_, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Password: &newPW, CurrentPassword: &oldPW})
			return err
		},
		"disable and enable": func(_ *testing.T, e *env, u *user.User) error {
			if _, err := e.svc.Update(ctx, user.SystemActor, u.ID, user.UpdateInput{Status: &disabled}); err != nil {
				return err
			}
			_, err := e.svc.Update(ctx, user.SystemActor, u.ID, user.UpdateInput{Status: &enabled})
			return err
		},
		"role change": func(_ *testing.T, e *env, u *user.User) error {
			_, err := e.svc.Update(ctx, user.SystemActor, u.ID, user.UpdateInput{Role: &admin})
			return err
		},
		"delete": func(_ *testing.T, e *env, u *user.User) error {
			return e.svc.Delete(ctx, user.SystemActor, u.ID)
		},
		// A path that changes the address without the service's rules (an
		// operator's UPDATE, a future code path): the token is bound to
		// the address it was mailed to, so it fails all the same.
		"email changed in the store": func(t *testing.T, e *env, u *user.User) error {
			cur, err := e.store.UserByID(ctx, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			cur.Email = newEmail
			return e.store.UpdateUser(ctx, cur)
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			u := e.create(t, "alice@example.com", user.RoleUser)
			if err := e.svc.CreatePasswordReset(ctx, "alice@example.com"); err != nil {
				t.Fatal(err)
			}
			tok := e.mail.last(t, "alice@example.com")
			if tok == "" {
				t.Fatal("no reset mail")
			}
			if err := change(t, e, u); err != nil {
				t.Fatalf("change: %v", err)
			}
			if err := e.svc.ResetPassword(ctx, tok, "the attacker's passphrase"); !errors.Is(err, user.ErrResetTokenInvalid) {
				t.Fatalf("reset with a token mailed before the change: %v, want %v", err, user.ErrResetTokenInvalid)
			}
		})
	}
	// A change that touches none of those (the name) leaves the token open.
	t.Run("name change keeps the token", func(t *testing.T) {
		e := newEnv(t)
		u := e.create(t, "alice@example.com", user.RoleUser)
		if err := e.svc.CreatePasswordReset(ctx, "alice@example.com"); err != nil {
			t.Fatal(err)
		}
		tok := e.mail.last(t, "alice@example.com")
		name := "Alice L"
		if _, err := e.svc.Update(ctx, actorOf(u), u.ID, user.UpdateInput{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.ResetPassword(ctx, tok, "a brand new passphrase"); err != nil {
			t.Fatalf("reset after a name change: %v", err)
		}
	})
}
