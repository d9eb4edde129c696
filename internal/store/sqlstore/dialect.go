package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect holds everything that differs between MySQL/MariaDB and SQLite.
// The SQL in the repo methods is shared: both drivers use "?" placeholders,
// and LIKE ... ESCAPE, LIMIT/OFFSET and "IS NULL" mean the same in both. What
// remains is the upsert syntax, how a duplicate key or a missing parent row
// is reported, how times are stored, and the migration bookkeeping.
type dialect struct {
	name string // "mysql" or "sqlite"; also the migrations directory

	// putResetSQL inserts a password reset, replacing the user's earlier
	// record in the same statement (so no transaction is needed);
	// putVerificationSQL does the same for an email verification.
	putResetSQL, putVerificationSQL string

	// putRevocationSQL upserts a revocation, keeping the later expiry.
	putRevocationSQL string

	// emailKey is what a duplicate-key error message contains when the
	// violated constraint is the unique index on users.email (MySQL names
	// the index; SQLite names the column).
	emailKey string

	// migrationsTableDDL creates schema_migrations if it is missing.
	migrationsTableDDL string
	// migrationsTableExistsSQL counts tables named schema_migrations.
	migrationsTableExistsSQL string

	// isDuplicate reports whether err is a unique or primary-key violation.
	isDuplicate func(error) bool
	// isMissingParent reports whether err is a foreign-key violation on
	// insert (the referenced user does not exist).
	isMissingParent func(error) bool
	// transient names the lock conflict err is, "" when it is none: the
	// transaction may then run again (see retryTx).
	transient func(error) string
	// timeArg converts a time to the value stored in the database.
	timeArg func(time.Time) any
	// lockSuffix makes a SELECT lock the rows it reads until the transaction
	// ends. SQLite needs none: Open makes every transaction take the
	// database's write lock up front (_txlock=immediate).
	lockSuffix string
	// drainTxOptions are the options of the outbox relay's transaction.
	drainTxOptions *sql.TxOptions
}

var mysqlDialect = &dialect{
	name: "mysql",
	// ON DUPLICATE KEY fires for either unique key. user_id is the one meant;
	// a clash on token_hash would mean the same secret token, so taking the
	// row over is harmless. VALUES() rather than the MySQL 8.0.19 row alias
	// because MariaDB does not support the alias.
	putResetSQL:        mysqlPutByUser("password_resets"),
	putVerificationSQL: mysqlPutByUser("email_verifications"),
	putRevocationSQL: `INSERT INTO revoked_tokens (token_key, expires_at) VALUES (?, ?)
ON DUPLICATE KEY UPDATE expires_at = GREATEST(expires_at, VALUES(expires_at))`,
	emailKey: "uq_users_email'",
	migrationsTableDDL: `CREATE TABLE IF NOT EXISTS schema_migrations (
version VARCHAR(64) NOT NULL PRIMARY KEY,
applied_at DATETIME(6) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
	migrationsTableExistsSQL: `SELECT COUNT(*) FROM information_schema.tables
WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'`,
	isDuplicate: func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1062 // ER_DUP_ENTRY
	},
	isMissingParent: func(err error) bool {
		var me *mysql.MySQLError
		return errors.As(err, &me) && me.Number == 1452 // ER_NO_REFERENCED_ROW_2
	},
	transient: mysqlTransient,
	// DATETIME(6) keeps microseconds; truncating here rather than letting the
	// server round makes the stored value predictable. The driver converts
	// the time to its Loc, which Open forces to UTC.
	timeArg:    func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) },
	lockSuffix: " FOR UPDATE",
	// READ COMMITTED: at REPEATABLE READ, InnoDB's next-key locks on the rows
	// the relay reads and deletes also cover the gap after the newest event,
	// where every sign-up inserts its two; a sign-up holding its first event
	// then waited for the relay while the relay's DELETE waited for that
	// event, and InnoDB killed one as a deadlock (1213). READ COMMITTED takes
	// record locks only, and SKIP LOCKED still hands each relay its own rows.
	drainTxOptions: &sql.TxOptions{Isolation: sql.LevelReadCommitted},
}

var sqliteDialect = &dialect{
	name: "sqlite",
	// ON CONFLICT(user_id) names the one constraint meant; a clash on the
	// token_hash primary key still fails loudly.
	putResetSQL:        sqlitePutByUser("password_resets"),
	putVerificationSQL: sqlitePutByUser("email_verifications"),
	putRevocationSQL: `INSERT INTO revoked_tokens (token_key, expires_at) VALUES (?, ?)
ON CONFLICT(token_key) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)`,
	emailKey: "users.email",
	migrationsTableDDL: `CREATE TABLE IF NOT EXISTS schema_migrations (
version TEXT NOT NULL PRIMARY KEY,
applied_at INTEGER NOT NULL
) STRICT`,
	migrationsTableExistsSQL: `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`,
	isDuplicate: func(err error) bool {
		// modernc.org/sqlite turns extended result codes on, so the code
		// tells a uniqueness violation from NOT NULL, CHECK or FK failures.
		var se *sqlite.Error
		return errors.As(err, &se) &&
			(se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	},
	isMissingParent: func(err error) bool {
		var se *sqlite.Error
		return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	},
	transient: sqliteTransient,
	// SQLite has no time type. Times are stored as INTEGER microseconds since
	// the Unix epoch (UTC): exactly the precision the domain asks for, no
	// parsing or layout to get wrong, 8 bytes, and numeric order is time
	// order, so comparisons and indexes work. The driver never sees a
	// time.Time, so its own (lossy, monotonic-clock-carrying) default text
	// format cannot leak in.
	timeArg: func(t time.Time) any { return t.UnixMicro() },
}

// isEmailTaken reports whether err is a duplicate on users.email, as opposed
// to, say, a duplicate primary key.
func (d *dialect) isEmailTaken(err error) bool {
	return d.isDuplicate(err) && strings.Contains(err.Error(), d.emailKey)
}

// nullTimeArg is timeArg for a nullable column.
func (d *dialect) nullTimeArg(t *time.Time) any {
	if t == nil {
		return nil
	}
	return d.timeArg(*t)
}

// timeDest scans a stored time into *t, as UTC. It accepts what either
// dialect stores: time.Time from MySQL (parseTime=true) and int64 Unix
// microseconds from SQLite.
type timeDest struct{ t *time.Time }

func (d timeDest) Scan(src any) error {
	t, err := decodeTime(src)
	if err != nil {
		return err
	}
	if t == nil {
		return errors.New("sqlstore: NULL in a NOT NULL time column")
	}
	*d.t = *t
	return nil
}

// nullTimeDest is timeDest for a nullable column: NULL scans as nil.
type nullTimeDest struct{ t **time.Time }

func (d nullTimeDest) Scan(src any) error {
	t, err := decodeTime(src)
	if err != nil {
		return err
	}
	*d.t = t
	return nil
}

func decodeTime(src any) (*time.Time, error) {
	var t time.Time
	switch v := src.(type) {
	case nil:
		return nil, nil
	case time.Time:
		t = v.UTC()
	case int64:
		t = time.UnixMicro(v).UTC()
	default:
		return nil, fmt.Errorf("sqlstore: cannot scan %T into a time", src)
	}
	return &t, nil
}

// normTime is what the database gives back for t: UTC, whole microseconds.
func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// mysqlPutByUser is the upsert of a token table keyed by token_hash with at
// most one row per user_id (password_resets, email_verifications).
func mysqlPutByUser(table string) string {
	return `INSERT INTO ` + table + ` (token_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
ON DUPLICATE KEY UPDATE token_hash = VALUES(token_hash), user_id = VALUES(user_id), email = VALUES(email),
created_at = VALUES(created_at), expires_at = VALUES(expires_at)`
}

// sqlitePutByUser is mysqlPutByUser for SQLite.
func sqlitePutByUser(table string) string {
	return `INSERT INTO ` + table + ` (token_hash, user_id, email, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(user_id) DO UPDATE SET token_hash = excluded.token_hash, email = excluded.email,
created_at = excluded.created_at, expires_at = excluded.expires_at`
}
