package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/go-sql-driver/mysql"

	"github.com/usersvc/usersvc/internal/testenv"
)

// TestAtomicRetriesDeadlockMySQL: two transactions lock two rows in
// opposite orders, so MariaDB must kill one of them as a deadlock (1213).
// Atomic runs the killed one again, and both succeed.
func TestAtomicRetriesDeadlockMySQL(t *testing.T) {
	s := openTest(t, "mysql", testenv.MySQLDSN(t), false)
	ctx := testenv.Context(t)
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE probe (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO probe VALUES (1, 0), (2, 0)`); err != nil {
		t.Fatal(err)
	}
	var runs atomic.Int32
	// Each first run holds its first row before either takes its second,
	// which makes the deadlock certain; runs after that go straight through.
	var both sync.WaitGroup
	both.Add(2)
	bump := func(first, second int) func(repo) error {
		var once sync.Once
		return func(r repo) error {
			runs.Add(1)
			if _, err := r.q.ExecContext(ctx, `UPDATE probe SET n = n + 1 WHERE id = ?`, first); err != nil {
				return err
			}
			once.Do(func() { both.Done(); both.Wait() })
			_, err := r.q.ExecContext(ctx, `UPDATE probe SET n = n + 1 WHERE id = ?`, second)
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = s.repo.atomic(ctx, bump(1, 2)) })
	wg.Go(func() { errs[1] = s.repo.atomic(ctx, bump(2, 1)) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("%d runs of the two transactions, want 3 (one deadlock victim run again)", n)
	}
	var sum int
	if err := s.db.QueryRowContext(ctx, `SELECT SUM(n) FROM probe`).Scan(&sum); err != nil {
		t.Fatal(err)
	}
	if sum != 4 {
		t.Errorf("the rows were bumped %d times, want 4: a rolled-back run left its writes", sum)
	}
}

// TestSQLiteBusyIsTransient: a write that meets another connection's write
// lock past its busy timeout fails with SQLITE_BUSY, which Atomic retries.
func TestSQLiteBusyIsTransient(t *testing.T) {
	dsn := sqliteTestDSN(t)
	s := openTest(t, "sqlite", dsn, true)
	ctx := testenv.Context(t)
	impatient, err := sql.Open("sqlite", dsn+"?_pragma=busy_timeout(0)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	err = s.repo.atomic(ctx, func(repo) error {
		tx, err := impatient.BeginTx(ctx, nil)
		if err == nil {
			_ = tx.Rollback()
			return errors.New("a second writer got the write lock")
		}
		if got := sqliteTransient(err); got != "busy" {
			t.Errorf("sqliteTransient(%v) = %q, want busy", err, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRetryTxBounded: a conflict that keeps happening is given up after
// txAttempts runs, returning the conflict; other errors are not retried;
// an ended context stops the pauses.
func TestRetryTxBounded(t *testing.T) {
	deadlock := &mysql.MySQLError{Number: erLockDeadlock, Message: "Deadlock found"}
	run := func(ctx context.Context, fail error) (int, error) {
		n := 0
		err := retryTx(ctx, mysqlTransient, func() error { n++; return fail })
		return n, err
	}
	synctest.Test(t, func(t *testing.T) {
		if n, err := run(t.Context(), deadlock); n != txAttempts || !errors.Is(err, deadlock) {
			t.Errorf("a lasting deadlock: %d runs, %v; want %d runs and the deadlock", n, err, txAttempts)
		}
		other := &mysql.MySQLError{Number: 1062, Message: "Duplicate entry"}
		if n, err := run(t.Context(), other); n != 1 || !errors.Is(err, other) {
			t.Errorf("a duplicate key: %d runs, %v; want 1 run and the error", n, err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if n, _ := run(ctx, deadlock); n != 1 {
			t.Errorf("with its context ended: %d runs, want 1", n)
		}
	})
}
