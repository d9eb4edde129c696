// Package sqlstore implements the user domain's storage port (user.Store) on
// MySQL/MariaDB and on SQLite, with one set of SQL for both.
//
// Every Repo method is written once against a small querier interface that
// *sql.DB and *sql.Tx both satisfy, so the plain Store and the transaction
// handed to Atomic's callback run the same code. What differs between the
// databases (upsert syntax, error codes, time encoding, migration
// bookkeeping) lives in a dialect value.
//
// The schema is created by versioned migrations embedded in the binary; call
// Migrate at start-up (or from a deploy step) before serving.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/XSAM/otelsql"
	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/usersvc/usersvc/internal/user"
)

// Pool settings for MySQL. Bounded so a traffic burst queues in the pool
// rather than exhausting the server's max_connections; the lifetime is
// well under the usual wait_timeout and lets connections follow a failover
// or a load balancer change.
const (
	mysqlMaxOpenConns    = 25
	mysqlMaxIdleConns    = 25
	mysqlConnMaxLifetime = 5 * time.Minute
	mysqlConnMaxIdleTime = time.Minute
)

// sqliteBusyTimeoutMS is how long an SQLite connection waits for the write
// lock before giving up with SQLITE_BUSY.
const sqliteBusyTimeoutMS = 5000

// querier is what the repo methods need; *sql.DB, *sql.Tx and *sql.Conn all
// have it.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Store is a user.Store on a SQL database. It is safe for concurrent use.
type Store struct {
	repo
	db *sql.DB
}

var (
	_ user.Store = (*Store)(nil)
	_ user.Repo  = repo{}
)

// Open connects to the database and pings it.
//
// driver "mysql" takes a go-sql-driver/mysql DSN
// ("user:pass@tcp(host:3306)/dbname"). Open forces the settings the store
// relies on: parseTime=true and loc=UTC (times round-trip as UTC
// time.Time) and clientFoundRows=true (UPDATE reports matched rows, so an
// update that changes nothing is not mistaken for a missing row). Unless the
// DSN chooses a charset or collation itself, the connection uses utf8mb4
// with utf8mb4_bin and, unless the DSN says otherwise, interpolateParams=true
// (safe with utf8mb4; one round trip per statement instead of three).
//
// driver "sqlite" takes a file path (or a "file:" URI), optionally with
// modernc.org/sqlite query parameters. Open adds WAL journaling (readers do
// not block the writer), synchronous=NORMAL (safe with WAL, far fewer
// fsyncs), foreign_keys=ON (cascading deletes), a busy timeout, and
// _txlock=immediate: every read-write transaction takes the write lock at
// BEGIN, so concurrent writers queue on the busy timeout instead of failing
// with SQLITE_BUSY when a read lock cannot be upgraded. In-memory databases
// are rejected: each pooled connection would get its own empty database.
func Open(ctx context.Context, driverName, dsn string) (*Store, error) {
	var (
		db  *sql.DB
		d   *dialect
		err error
	)
	switch driverName {
	case "mysql":
		d = mysqlDialect
		db, err = openMySQL(dsn)
	case "sqlite":
		d = sqliteDialect
		db, err = openSQLite(dsn)
	default:
		return nil, fmt.Errorf("sqlstore: unknown driver %q (want mysql or sqlite)", driverName)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlstore: ping %s: %w", driverName, err)
	}
	return &Store{repo: repo{q: db, d: d, db: db}, db: db}, nil
}

func openMySQL(dsn string) (*sql.DB, error) {
	cfg, err := mysqlConfig(dsn)
	if err != nil {
		return nil, err
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: mysql connector: %w", err)
	}
	db := openTraced(unavailableConnector{conn}, "mysql")
	db.SetMaxOpenConns(mysqlMaxOpenConns)
	db.SetMaxIdleConns(mysqlMaxIdleConns)
	db.SetConnMaxLifetime(mysqlConnMaxLifetime)
	db.SetConnMaxIdleTime(mysqlConnMaxIdleTime)
	return db, nil
}

// unavailableConnector marks a failure to reach the server (refused, timed
// out, cut) as user.ErrDatabaseUnavailable, so the request is answered 503
// rather than 500 and the log names the database. database/sql replaces a
// dead pooled connection by a new one, so this is also where a query meets
// an outage. An answer of the server (a MySQLError: bad password, unknown
// database) is returned as it is.
type unavailableConnector struct{ driver.Connector }

func (c unavailableConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	var me *mysql.MySQLError
	if err != nil && ctx.Err() == nil && !errors.As(err, &me) {
		return nil, fmt.Errorf("%w: %w", user.ErrDatabaseUnavailable, err)
	}
	if mc, ok := conn.(mysqlConnAPI); ok {
		return lostConn{mc}, nil
	}
	return conn, err
}

// mysqlConfig parses dsn and forces the settings Open documents.
func mysqlConfig(dsn string) (*mysql.Config, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: parse mysql dsn: %w", err)
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = true
	// Config cannot tell "not set" from a default, so look at the DSN's own
	// parameters: like ParseDSN, those after the first '?' that follows the
	// last '/'.
	var params url.Values
	if slash := strings.LastIndexByte(dsn, '/'); slash >= 0 {
		if _, raw, ok := strings.Cut(dsn[slash:], "?"); ok {
			if params, err = url.ParseQuery(raw); err != nil {
				return nil, fmt.Errorf("sqlstore: parse mysql dsn parameters: %w", err)
			}
		}
	}
	if !params.Has("charset") && !params.Has("collation") {
		if err := cfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_bin")); err != nil {
			return nil, fmt.Errorf("sqlstore: mysql charset: %w", err)
		}
		// With a charset known to be safe for it, interpolate arguments
		// client-side: a statement with arguments is then one round trip
		// instead of three (prepare, execute, close), which halves the
		// latency of a point lookup. Only when the DSN does not decide.
		if !params.Has("interpolateParams") {
			cfg.InterpolateParams = true
		}
	}
	return cfg, nil
}

// sqliteDSN adds the parameters Open documents to dsn.
func sqliteDSN(dsn string) (string, error) {
	path, userParams, _ := strings.Cut(dsn, "?")
	if path == "" || strings.Contains(path, ":memory:") || strings.Contains(userParams, "mode=memory") {
		return "", errors.New("sqlstore: sqlite needs a database file path (in-memory databases are not shared between pooled connections)")
	}
	if _, err := url.ParseQuery(userParams); err != nil {
		return "", fmt.Errorf("sqlstore: parse sqlite dsn parameters: %w", err)
	}
	p := url.Values{}
	p.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeoutMS))
	p.Add("_pragma", "journal_mode(WAL)")
	p.Add("_pragma", "foreign_keys(ON)")
	p.Add("_pragma", "synchronous(NORMAL)")
	p.Set("_txlock", "immediate")
	// Ours go first: for single-valued keys the driver reads the first
	// occurrence, so a DSN cannot turn immediate transactions off.
	params := p.Encode()
	if userParams != "" {
		params += "&" + userParams
	}
	return path + "?" + params, nil
}

func openSQLite(dsn string) (*sql.DB, error) {
	full, err := sqliteDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := otelsql.Open("sqlite", full, traceOptions("sqlite")...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open sqlite: %w", err)
	}
	// WAL lets readers run in parallel with the one writer, so more than one
	// connection pays off; writers serialise on the database lock anyway, so
	// a small bound keeps the queue of writers in the pool (FIFO, no polling)
	// rather than in SQLite's sleeping busy handler. Connections are kept
	// forever: a local file has nothing to fail over, and a fresh connection
	// would re-run the PRAGMAs and start with a cold page cache.
	n := max(4, runtime.GOMAXPROCS(0))
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// DB returns the underlying pool, for health checks, metrics and tests.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers; use it for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", err)
	}
	return nil
}

// Atomic runs fn in a transaction with a Repo bound to it. It commits if fn
// returns nil and rolls back if fn returns an error or panics (the panic
// continues). fn's error is returned unchanged, so domain errors such as
// user.ErrEmailTaken keep their identity; only begin and commit failures are
// wrapped.
//
// On SQLite the transaction holds the write lock from its start, so
// transactions run one at a time. On MySQL/MariaDB it runs at the server's
// isolation level (REPEATABLE READ by default): plain reads see a snapshot,
// while UPDATE and DELETE act on the latest committed rows, which is what
// makes MarkRefreshTokenUsed and DeletePasswordReset single-winner even when
// two transactions read the same row first.
//
// A transaction that loses a lock conflict (a MySQL deadlock, lock wait
// timeout or snapshot conflict; SQLite busy past its timeout) is rolled
// back and fn runs again in a new one, a few times with jittered pauses
// (retryTx): such a conflict is the database's business, not the client's.
// So fn must be safe to run again: its database writes are undone, but
// whatever it sets outside the transaction must be set afresh each run.
func (s *Store) Atomic(ctx context.Context, fn func(user.Repo) error) error {
	return s.repo.atomic(ctx, func(r repo) error { return fn(r) })
}

// repo implements user.Repo on a querier: the pool (db set) or a
// transaction (db nil).
type repo struct {
	q  querier
	d  *dialect
	db *sql.DB // nil when q is a transaction
}

// atomic runs fn in a transaction: a new one when r is on the pool, r's own
// when r is already bound to one (so multi-statement methods such as
// DeleteUser are atomic either way).
func (r repo) atomic(ctx context.Context, fn func(repo) error) (err error) {
	return r.atomicOpts(ctx, nil, fn)
}

// atomicOpts is atomic with the transaction options opts (ignored when r
// is already bound to a transaction: the outermost transaction is the one
// retried, from its start).
func (r repo) atomicOpts(ctx context.Context, opts *sql.TxOptions, fn func(repo) error) error {
	if r.db == nil {
		return fn(r)
	}
	return retryTx(ctx, r.d.transient, func() error { return r.runTx(ctx, opts, fn) })
}

// runTx runs fn in one new transaction on r's pool.
func (r repo) runTx(ctx context.Context, opts *sql.TxOptions, fn func(repo) error) error {
	tx, err := r.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("sqlstore: begin transaction: %w", err)
	}
	done := false
	defer func() {
		if !done {
			// Reached on error and on panic; the rollback error is
			// secondary to either.
			_ = tx.Rollback()
		}
	}()
	if err := fn(repo{q: tx, d: r.d}); err != nil {
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlstore: commit: %w", err)
	}
	return nil
}

// discard makes database/sql close conn instead of returning it to the pool,
// for when its session state (a held lock, an open transaction) is unknown.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
}
