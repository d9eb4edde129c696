package sqlstore

import (
	"errors"
	"testing"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

// TestDatabaseCutIsUnavailableMySQL: with the database cut (a proxy in
// front of it), a read and a transaction fail with
// user.ErrDatabaseUnavailable — a 503 for the client, not a 500 — and work
// again once it is back.
func TestDatabaseCutIsUnavailableMySQL(t *testing.T) {
	dsn, p := testenv.MySQLBehindProxy(t)
	s := openTest(t, "mysql", dsn, true)
	ctx := testenv.Context(t)

	p.Down()
	if _, err := s.UserByID(ctx, "nobody"); !errors.Is(err, user.ErrDatabaseUnavailable) {
		t.Errorf("UserByID with the database cut: %v, want ErrDatabaseUnavailable", err)
	}
	err := s.Atomic(ctx, func(r user.Repo) error { _, err := r.LockUser(ctx, "nobody"); return err })
	if !errors.Is(err, user.ErrDatabaseUnavailable) {
		t.Errorf("Atomic with the database cut: %v, want ErrDatabaseUnavailable", err)
	}
	if got := user.AsError(err); got.Code != user.CodeUnavailable {
		t.Errorf("the client would see %s, want %s", got.Code, user.CodeUnavailable)
	}

	p.Up()
	if _, err := s.UserByID(ctx, "nobody"); !errors.Is(err, user.ErrNotFound) {
		t.Errorf("UserByID after the database came back: %v, want ErrNotFound", err)
	}
}
