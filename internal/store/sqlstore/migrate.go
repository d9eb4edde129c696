package sqlstore

import (
	"bufio"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// migrationsFS holds one directory per dialect (migrations/mysql,
// migrations/sqlite). A migration is a file NNNN_name.sql; its version is
// the file name without ".sql", and versions are applied in file-name order,
// hence the zero-padded number. Both directories must hold the same
// versions, describing the same schema. Never edit an applied file; add a
// new one.
//
//go:embed migrations
var migrationsFS embed.FS

// mysqlMigrateLock is the GET_LOCK name that serialises Migrate across
// processes. User-level locks are server-wide, so services on other
// databases of the same server briefly serialise too; that is harmless.
const mysqlMigrateLock = "usersvc_migrate"

// mysqlMigrateLockWait is how long, in seconds, Migrate waits for another
// process's migration to finish.
const mysqlMigrateLockWait = 60

type migration struct {
	version string
	stmts   []string
}

func loadMigrations(dialect string) ([]migration, error) {
	dir := path.Join("migrations", dialect)
	entries, err := fs.ReadDir(migrationsFS, dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		body, err := migrationsFS.ReadFile(path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %s: %w", name, err)
		}
		stmts := splitStatements(string(body))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("sqlstore: migration %s has no statements", name)
		}
		ms = append(ms, migration{version: strings.TrimSuffix(name, ".sql"), stmts: stmts})
	}
	return ms, nil
}

// splitStatements splits a migration file into statements. The rule is
// deliberately simple, so a migration can be read and checked by eye: a
// statement ends at a line whose last non-blank character is ';', and whole
// lines starting with "--" are comments and dropped. There is no SQL lexer,
// so a ';' ending a line inside a string literal or a trigger body would
// split the statement there: migrations must not contain one (put such a
// statement's ';' mid-line). Statements are sent one at a time because the
// MySQL driver runs a single statement per call unless multiStatements is
// on, which we do not want on the application's connections.
func splitStatements(src string) []string {
	var (
		stmts []string
		cur   strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		if body, ok := strings.CutSuffix(line, ";"); ok {
			cur.WriteString(body)
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush() // a last statement without ';'
	return stmts
}

// Migrate applies, in version order, the migrations not yet recorded in
// schema_migrations, recording each right after it succeeds, and returns the
// versions it applied (none when the schema is current).
//
// It is safe to run from several processes at once; one applies, the others
// wait and then find nothing to do:
//
//   - MySQL/MariaDB: an advisory lock (GET_LOCK) held on one pinned
//     connection for the whole run. MySQL DDL commits implicitly, so a
//     migration that fails halfway leaves its earlier statements applied and
//     is not recorded; fix the schema by hand (or write migrations whose
//     statements can be re-run) before retrying.
//   - SQLite: each migration runs in its own BEGIN IMMEDIATE transaction
//     together with the check of what is applied and its record. SQLite DDL
//     is transactional, so a failed migration leaves nothing behind.
func (s *Store) Migrate(ctx context.Context) (applied []string, err error) {
	ms, err := loadMigrations(s.d.name)
	if err != nil {
		return nil, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: get connection: %w", err)
	}
	defer conn.Close()
	if s.d == mysqlDialect {
		return s.migrateMySQL(ctx, conn, ms)
	}
	return s.migrateSQLite(ctx, conn, ms)
}

func (s *Store) migrateMySQL(ctx context.Context, conn *sql.Conn, ms []migration) (applied []string, err error) {
	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, ?)`, mysqlMigrateLock, mysqlMigrateLockWait).Scan(&got)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: take lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return nil, fmt.Errorf("sqlstore: migrate: another migration held the lock %q for over %ds", mysqlMigrateLock, mysqlMigrateLockWait)
	}
	defer func() {
		// A session-level lock outlives the Conn going back to the pool, so
		// it must be released here even if ctx is done; if that fails the
		// connection is dropped, which releases it.
		var released sql.NullInt64
		err := conn.QueryRowContext(context.WithoutCancel(ctx), `SELECT RELEASE_LOCK(?)`, mysqlMigrateLock).Scan(&released)
		if err != nil || released.Int64 != 1 {
			discard(conn)
		}
	}()

	if _, err := conn.ExecContext(ctx, s.d.migrationsTableDDL); err != nil {
		return nil, fmt.Errorf("sqlstore: migrate: create schema_migrations: %w", err)
	}
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return nil, err
	}
	applied = []string{}
	for _, m := range ms {
		if done[m.version] {
			continue
		}
		if err := s.applyMigration(ctx, conn, m); err != nil {
			return applied, err
		}
		applied = append(applied, m.version)
	}
	return applied, nil
}

func (s *Store) migrateSQLite(ctx context.Context, conn *sql.Conn, ms []migration) (applied []string, err error) {
	applied = []string{}
	for {
		v, err := s.migrateSQLiteStep(ctx, conn, ms)
		if err != nil {
			return applied, err
		}
		if v == "" {
			return applied, nil
		}
		applied = append(applied, v)
	}
}

// migrateSQLiteStep applies the first pending migration in one immediate
// transaction and returns its version, or "" when none is pending.
func (s *Store) migrateSQLiteStep(ctx context.Context, conn *sql.Conn, ms []migration) (version string, err error) {
	// Explicit BEGIN IMMEDIATE on the pinned connection rather than BeginTx,
	// so the write lock is taken up front whatever the DSN's _txlock says.
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return "", fmt.Errorf("sqlstore: migrate: begin: %w", err)
	}
	defer func() {
		if err != nil || version == "" {
			if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`); rbErr != nil {
				discard(conn) // do not pool a connection stuck in a transaction
			}
		}
	}()
	if _, err := conn.ExecContext(ctx, s.d.migrationsTableDDL); err != nil {
		return "", fmt.Errorf("sqlstore: migrate: create schema_migrations: %w", err)
	}
	done, err := appliedVersions(ctx, conn)
	if err != nil {
		return "", err
	}
	i := slices.IndexFunc(ms, func(m migration) bool { return !done[m.version] })
	if i < 0 {
		return "", nil
	}
	if err := s.applyMigration(ctx, conn, ms[i]); err != nil {
		return "", err
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return "", fmt.Errorf("sqlstore: migrate %s: commit: %w", ms[i].version, err)
	}
	return ms[i].version, nil
}

// applyMigration runs m's statements and records m.
func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, m migration) error {
	for i, stmt := range m.stmts {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("sqlstore: migrate %s: statement %d: %w", m.version, i+1, err)
		}
	}
	_, err := conn.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		m.version, s.d.timeArg(time.Now()))
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %s: record: %w", m.version, err)
	}
	return nil
}

func appliedVersions(ctx context.Context, q querier) (map[string]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read schema_migrations: %w", err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlstore: read schema_migrations: %w", err)
		}
		done[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: read schema_migrations: %w", err)
	}
	return done, nil
}

// PendingMigrations returns the versions Migrate would apply, in order. It
// only reads, so it suits a read-only account (a deploy check, say).
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	ms, err := loadMigrations(s.d.name)
	if err != nil {
		return nil, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.d.migrationsTableExistsSQL).Scan(&n); err != nil {
		return nil, fmt.Errorf("sqlstore: pending migrations: %w", err)
	}
	done := map[string]bool{}
	if n > 0 {
		if done, err = appliedVersions(ctx, s.db); err != nil {
			return nil, err
		}
	}
	pending := []string{}
	for _, m := range ms {
		if !done[m.version] {
			pending = append(pending, m.version)
		}
	}
	return pending, nil
}
