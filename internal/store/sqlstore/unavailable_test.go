package sqlstore

import (
	"database/sql"
	"errors"
	"testing"
	"time"

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

// TestDatabaseLostMidQueryIsUnavailableMySQL: a statement running when
// the connection is cut fails with user.ErrDatabaseUnavailable too (the
// driver's "invalid connection"), not as an internal error: in the e2e
// database-cut test it was the one 500 the client saw.
func TestDatabaseLostMidQueryIsUnavailableMySQL(t *testing.T) {
	dsn, p := testenv.MySQLBehindProxy(t)
	s := openTest(t, "mysql", dsn, true)
	ctx := testenv.Context(t)
	const stmt = "DO SLEEP(5) /* cut mid-query */"
	errc := make(chan error, 1)
	go func() { _, err := s.db.ExecContext(ctx, stmt); errc <- err }()
	// The cut comes once the server runs the statement, seen beside the
	// proxy on a connection of the test's own.
	watch, err := sql.Open("mysql", testenv.MySQLDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	testenv.Eventually(t, 5*time.Second, "the statement running on the server", func() bool {
		var n int
		err := watch.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = ?", stmt).Scan(&n)
		return err == nil && n > 0
	})
	p.Down()
	err = <-errc
	if !errors.Is(err, user.ErrDatabaseUnavailable) {
		t.Fatalf("a statement cut mid-way: %v, want ErrDatabaseUnavailable", err)
	}
	if got := user.AsError(err); got.Code != user.CodeUnavailable {
		t.Errorf("the client would see %s, want %s", got.Code, user.CodeUnavailable)
	}
}
