package sqlstore

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/usersvc/usersvc/internal/revocation"
	"github.com/usersvc/usersvc/internal/store/storetest"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

const mysqlEnv = "USERSVC_TEST_MYSQL_DSN"

// sqliteTestDSN returns the path of a new database file under t.TempDir().
func sqliteTestDSN(t testing.TB) string {
	return filepath.Join(t.TempDir(), "users.db")
}

// openTest opens a store on dsn, closed when the test ends, and migrates it
// if asked.
func openTest(t testing.TB, driver, dsn string, migrate bool) *Store {
	t.Helper()
	s, err := Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatalf("Open(%s): %v", driver, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if migrate {
		if _, err := s.Migrate(context.Background()); err != nil {
			t.Fatalf("Migrate(%s): %v", driver, err)
		}
	}
	return s
}

// dialects runs fn as a subtest per database, each with a fresh DSN; the
// MySQL one skips (or fails under USERSVC_TEST_REQUIRE_ALL=1) without a
// server.
func dialects(t *testing.T, fn func(t *testing.T, driver, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite", sqliteTestDSN(t)) })
	t.Run("mysql", func(t *testing.T) { fn(t, "mysql", testenv.MySQLDSN(t)) })
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) user.Store {
		return openTest(t, "sqlite", sqliteTestDSN(t), true)
	})
}

func TestMySQL(t *testing.T) {
	testenv.Need(t, mysqlEnv)
	storetest.Run(t, func(t *testing.T) user.Store {
		return openTest(t, "mysql", testenv.MySQLDSN(t), true)
	})
}

func TestRevocationsSQLite(t *testing.T) {
	storetest.RunRevocations(t, func(t *testing.T) revocation.Store {
		return openTest(t, "sqlite", sqliteTestDSN(t), true)
	})
}

func TestRevocationsMySQL(t *testing.T) {
	testenv.Need(t, mysqlEnv)
	storetest.RunRevocations(t, func(t *testing.T) revocation.Store {
		return openTest(t, "mysql", testenv.MySQLDSN(t), true)
	})
}

func allVersions(t *testing.T, dialect string) []string {
	t.Helper()
	ms, err := loadMigrations(dialect)
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, m := range ms {
		vs = append(vs, m.version)
	}
	return vs
}

func TestMigrate(t *testing.T) {
	dialects(t, func(t *testing.T, driver, dsn string) {
		ctx := t.Context()
		s := openTest(t, driver, dsn, false)
		all := allVersions(t, driver)
		if len(all) == 0 || all[0] != "0001_init" {
			t.Fatalf("embedded migrations = %v, want 0001_init first", all)
		}

		pending, err := s.PendingMigrations(ctx)
		if err != nil || !slices.Equal(pending, all) {
			t.Fatalf("PendingMigrations(empty db) = %v, %v; want %v", pending, err, all)
		}
		applied, err := s.Migrate(ctx)
		if err != nil || !slices.Equal(applied, all) {
			t.Fatalf("Migrate = %v, %v; want %v", applied, err, all)
		}
		applied, err = s.Migrate(ctx)
		if err != nil || len(applied) != 0 {
			t.Fatalf("Migrate(again) = %v, %v; want nothing applied", applied, err)
		}
		pending, err = s.PendingMigrations(ctx)
		if err != nil || len(pending) != 0 {
			t.Fatalf("PendingMigrations(migrated) = %v, %v; want none", pending, err)
		}
		var n int
		if err := s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(all) {
			t.Errorf("schema_migrations rows = %d, %v; want %d", n, err, len(all))
		}
	})
}

// TestMigrateConcurrent runs Migrate from several stores (standing in for
// processes) at once: each version is applied exactly once and nobody fails.
func TestMigrateConcurrent(t *testing.T) {
	dialects(t, func(t *testing.T, driver, dsn string) {
		const n = 4
		stores := make([]*Store, n)
		for i := range stores {
			stores[i] = openTest(t, driver, dsn, false)
		}
		var (
			mu      sync.Mutex
			applied []string
			wg      sync.WaitGroup
		)
		for _, s := range stores {
			wg.Go(func() {
				vs, err := s.Migrate(t.Context())
				if err != nil {
					t.Errorf("Migrate: %v", err)
				}
				mu.Lock()
				applied = append(applied, vs...)
				mu.Unlock()
			})
		}
		wg.Wait()
		slices.Sort(applied)
		if want := allVersions(t, driver); !slices.Equal(applied, want) {
			t.Errorf("applied across stores = %v, want each of %v once", applied, want)
		}
	})
}

func TestSplitStatements(t *testing.T) {
	src := `-- header comment
CREATE TABLE a (
    x INT, -- trailing comment stays
    y TEXT
);
  -- indented comment line
CREATE INDEX i ON a (x);   

INSERT INTO a VALUES (1, 'semi;colon mid-line');
SELECT 1`
	want := []string{
		"CREATE TABLE a (\n    x INT, -- trailing comment stays\n    y TEXT\n)",
		"CREATE INDEX i ON a (x)",
		"INSERT INTO a VALUES (1, 'semi;colon mid-line')",
		"SELECT 1",
	}
	if got := splitStatements(src); !slices.Equal(got, want) {
		t.Errorf("splitStatements =\n%q\nwant\n%q", got, want)
	}
	if got := splitStatements("-- only a comment\n\n"); len(got) != 0 {
		t.Errorf("comment-only file = %q, want no statements", got)
	}
}

// TestMigrationsMatch: every version exists for both dialects.
func TestMigrationsMatch(t *testing.T) {
	if m, s := allVersions(t, "mysql"), allVersions(t, "sqlite"); !slices.Equal(m, s) {
		t.Errorf("mysql migrations %v != sqlite migrations %v", m, s)
	}
}

func TestMySQLConfig(t *testing.T) {
	cfg, err := mysqlConfig("u:p@tcp(db:3306)/app")
	if err != nil {
		t.Fatal(err)
	}
	dsn := cfg.FormatDSN()
	for _, want := range []string{"parseTime=true", "clientFoundRows=true", "charset=utf8mb4", "collation=utf8mb4_bin",
		"interpolateParams=true"} {
		if !strings.Contains(dsn, want) {
			t.Errorf("DSN %q lacks %s", dsn, want)
		}
	}
	if cfg.Loc.String() != "UTC" {
		t.Errorf("Loc = %v, want UTC", cfg.Loc)
	}

	// Forced settings win over the DSN; a chosen charset is kept.
	cfg, err = mysqlConfig("u:p@tcp(db:3306)/app?parseTime=false&loc=Local&clientFoundRows=false&charset=utf8mb4,utf8")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.ParseTime || cfg.Loc.String() != "UTC" || !cfg.ClientFoundRows {
		t.Errorf("forced settings lost: parseTime=%v loc=%v clientFoundRows=%v", cfg.ParseTime, cfg.Loc, cfg.ClientFoundRows)
	}
	if dsn := cfg.FormatDSN(); !strings.Contains(dsn, "charset=utf8mb4,utf8") || strings.Contains(dsn, "collation=") ||
		cfg.InterpolateParams {
		t.Errorf("DSN %q: want the DSN's charset kept, no collation and no interpolateParams forced", dsn)
	}
	cfg, err = mysqlConfig("u:p@tcp(db:3306)/app?interpolateParams=false")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InterpolateParams {
		t.Error("interpolateParams=false in the DSN was overridden")
	}

	if _, err := mysqlConfig("not a dsn"); err == nil {
		t.Error("mysqlConfig(garbage) succeeded")
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := t.Context()
	for _, tc := range []struct{ driver, dsn string }{
		{"postgres", "x"},
		{"sqlite", ""},
		{"sqlite", ":memory:"},
		{"sqlite", "file:x?mode=memory&cache=shared"},
	} {
		if s, err := Open(ctx, tc.driver, tc.dsn); err == nil {
			_ = s.Close()
			t.Errorf("Open(%q, %q) succeeded", tc.driver, tc.dsn)
		}
	}
}

// TestSQLiteSettings checks the PRAGMAs Open sets, on a connection from the
// pool.
func TestSQLiteSettings(t *testing.T) {
	s := openTest(t, "sqlite", sqliteTestDSN(t)+"?_pragma=cache_size(-4000)", false)
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "5000",
		"synchronous":  "1", // NORMAL
		"cache_size":   "-4000",
	} {
		var got string
		if err := s.DB().QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", pragma, err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

// TestMySQLSession checks the session Open sets up on the server.
func TestMySQLSession(t *testing.T) {
	s := openTest(t, "mysql", testenv.MySQLDSN(t), false)
	var charset, collation string
	err := s.DB().QueryRowContext(t.Context(), `SELECT @@character_set_connection, @@collation_connection`).Scan(&charset, &collation)
	if err != nil {
		t.Fatal(err)
	}
	if charset != "utf8mb4" || collation != "utf8mb4_bin" {
		t.Errorf("connection charset %s collation %s, want utf8mb4 / utf8mb4_bin", charset, collation)
	}
}
