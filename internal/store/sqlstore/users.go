package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/usersvc/usersvc/internal/user"
)

const userCols = `id, email, name, role, status, password_hash, email_verified, pending_email, session_version, created_at, updated_at`

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(dest ...any) error }

func scanUser(row rowScanner) (*user.User, error) {
	var u user.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, (*string)(&u.Role), (*string)(&u.Status), &u.PasswordHash,
		&u.EmailVerified, &u.PendingEmail, &u.SessionVersion, timeDest{&u.CreatedAt}, timeDest{&u.UpdatedAt})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// nameKey is the value of name_lower: the name lower-cased the same way the
// domain lower-cases a search prefix (strings.ToLower, rune by rune), so a
// byte-wise prefix match on it is a case-insensitive match on the name in
// both databases, whatever their collation rules.
func nameKey(name string) string { return strings.ToLower(name) }

// CreateUser inserts u. Its times are first normalised in place to what the
// database keeps (UTC, whole microseconds), so the caller's copy equals what
// a later read returns. A taken email is user.ErrEmailTaken.
func (r repo) CreateUser(ctx context.Context, u *user.User) error {
	u.CreatedAt, u.UpdatedAt = normTime(u.CreatedAt), normTime(u.UpdatedAt)
	_, err := r.q.ExecContext(ctx, `INSERT INTO users
(id, email, name, name_lower, role, status, password_hash, email_verified, pending_email, session_version, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, nameKey(u.Name), string(u.Role), string(u.Status), u.PasswordHash,
		u.EmailVerified, u.PendingEmail, u.SessionVersion, r.d.timeArg(u.CreatedAt), r.d.timeArg(u.UpdatedAt))
	if err != nil {
		if r.d.isEmailTaken(err) {
			return user.ErrEmailTaken
		}
		return fmt.Errorf("sqlstore: create user: %w", err)
	}
	return nil
}

// UserByID returns the user or user.ErrNotFound.
func (r repo) UserByID(ctx context.Context, id string) (*user.User, error) {
	u, err := scanUser(r.q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get user by id: %w", err)
	}
	return u, nil
}

// LockUser is UserByID that also locks the row until the transaction ends,
// so a read-modify-write inside Atomic cannot lose a concurrent change.
func (r repo) LockUser(ctx context.Context, id string) (*user.User, error) {
	u, err := scanUser(r.q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`+r.d.lockSuffix, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: lock user: %w", err)
	}
	return u, nil
}

// LockActiveAdmins returns the active admins' IDs and locks their rows (on
// MySQL the scanned index records of role = 'admin'; SQLite's transaction
// already holds the write lock).
func (r repo) LockActiveAdmins(ctx context.Context) ([]string, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT id FROM users WHERE role = ? AND status = ? ORDER BY id`+r.d.lockSuffix,
		string(user.RoleAdmin), string(user.StatusActive))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: lock active admins: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("sqlstore: lock active admins: scan: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: lock active admins: %w", err)
	}
	return ids, nil
}

// ReplacePasswordHash swaps the hash only while it is still oldHash, so a
// login's transparent rehash never overwrites a password changed meanwhile.
func (r repo) ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`, newHash, id, oldHash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: replace password hash: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: replace password hash: rows affected: %w", err)
	}
	return n == 1, nil
}

// UserByEmail returns the user with this normalised email or
// user.ErrNotFound. The comparison is exact (binary collation on MySQL).
func (r repo) UserByEmail(ctx context.Context, email string) (*user.User, error) {
	u, err := scanUser(r.q.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE email = ?`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get user by email: %w", err)
	}
	return u, nil
}

// UpdateUser writes every mutable column (all but id and created_at) by
// u.ID. UpdatedAt is normalised in place as in CreateUser. No such user is
// user.ErrNotFound (rows matched, not changed: Open sets clientFoundRows on
// MySQL); a taken email is user.ErrEmailTaken.
func (r repo) UpdateUser(ctx context.Context, u *user.User) error {
	u.UpdatedAt = normTime(u.UpdatedAt)
	res, err := r.q.ExecContext(ctx, `UPDATE users SET email = ?, name = ?, name_lower = ?, role = ?, status = ?,
password_hash = ?, email_verified = ?, pending_email = ?, session_version = ?, updated_at = ? WHERE id = ?`,
		u.Email, u.Name, nameKey(u.Name), string(u.Role), string(u.Status), u.PasswordHash,
		u.EmailVerified, u.PendingEmail, u.SessionVersion, r.d.timeArg(u.UpdatedAt), u.ID)
	if err != nil {
		if r.d.isEmailTaken(err) {
			return user.ErrEmailTaken
		}
		return fmt.Errorf("sqlstore: update user: %w", err)
	}
	return oneRow(res, "update user")
}

// DeleteUser removes the user, their refresh tokens, reset and verification records
// in one transaction (the caller's, inside Atomic). The schema cascades
// these deletes, but they are also done explicitly so the result does not
// depend on foreign keys being enforced (an SQLite connection opened
// without the PRAGMA, say). No such user is user.ErrNotFound.
func (r repo) DeleteUser(ctx context.Context, id string) error {
	return r.atomic(ctx, func(r repo) error {
		if _, err := r.q.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("sqlstore: delete user's refresh tokens: %w", err)
		}
		if _, err := r.q.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("sqlstore: delete user's password reset: %w", err)
		}
		if _, err := r.q.ExecContext(ctx, `DELETE FROM email_verifications WHERE user_id = ?`, id); err != nil {
			return fmt.Errorf("sqlstore: delete user's email verification: %w", err)
		}
		// Second factors go like the rows above: the foreign keys cascade,
		// and the store deletes explicitly too.
		for _, table := range []string{"mfa_factors", "mfa_recovery_codes", "mfa_tickets"} {
			if _, err := r.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE user_id = ?`, id); err != nil {
				return fmt.Errorf("sqlstore: delete user's %s: %w", table, err)
			}
		}
		res, err := r.q.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("sqlstore: delete user: %w", err)
		}
		return oneRow(res, "delete user")
	})
}

// oneRow turns "no row affected" into user.ErrNotFound.
func oneRow(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlstore: %s: rows affected: %w", op, err)
	}
	if n == 0 {
		return user.ErrNotFound
	}
	return nil
}

// likeEscaper escapes LIKE's wildcards and the escape character itself. '!'
// rather than '\' because a backslash is itself an escape in MySQL string
// literals (unless NO_BACKSLASH_ESCAPES), which makes "ESCAPE '\\'" differ
// between the dialects.
var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// ListUsers returns one page of users ordered by ID and the number of users
// matching the filters (ignoring the page).
//
// Filters: role and status by equality; Prefix (already lower-cased by the
// domain) as a literal prefix of email or name_lower, its LIKE wildcards
// escaped. A constant-prefix LIKE is an index range on each column (on
// SQLite through the COLLATE NOCASE indexes, see the migration).
//
// Paging: with AfterID the page is "id > AfterID ORDER BY id", a range seek
// on the primary key (or on the (role, id) / (status, id) index), so its
// cost does not grow with depth. Without it Offset is used, which must step
// over the skipped rows. Limit <= 0 returns no users, only the total.
//
// The total is a COUNT(*) with the same filters and costs a scan of the
// matching index entries on every call, whatever the page; it is skipped
// when the page itself proves the total (an offset page that came back
// short). The page and the count are separate statements, so under
// concurrent writes the total may be off by the rows written in between.
func (r repo) ListUsers(ctx context.Context, q user.ListQuery) ([]*user.User, int64, error) {
	lq := buildList(q)
	users := []*user.User{}
	if q.Limit > 0 {
		var err error
		if users, err = r.queryUsers(ctx, lq.pageSQL, lq.pageArgs...); err != nil {
			return nil, 0, err
		}
		if q.AfterID == "" && len(users) < q.Limit && (len(users) > 0 || lq.offset == 0) {
			return users, int64(lq.offset + len(users)), nil
		}
		if q.SkipTotal {
			return users, -1, nil
		}
	}
	var total int64
	if err := r.q.QueryRowContext(ctx, lq.countSQL, lq.countArgs...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("sqlstore: count users: %w", err)
	}
	return users, total, nil
}

// listSQL is the two statements of a ListUsers call.
type listSQL struct {
	pageSQL   string
	pageArgs  []any
	countSQL  string
	countArgs []any
	offset    int
}

func buildList(q user.ListQuery) listSQL {
	var (
		conds []string
		args  []any
	)
	if q.Role != "" {
		conds = append(conds, "role = ?")
		args = append(args, string(q.Role))
	}
	if q.Status != "" {
		conds = append(conds, "status = ?")
		args = append(args, string(q.Status))
	}
	if q.Prefix != "" {
		p := likeEscaper.Replace(q.Prefix) + "%"
		conds = append(conds, "(email LIKE ? ESCAPE '!' OR name_lower LIKE ? ESCAPE '!')")
		args = append(args, p, p)
	}
	l := listSQL{countSQL: `SELECT COUNT(*) FROM users` + where(conds), countArgs: args}

	pageConds, pageArgs := slices.Clone(conds), slices.Clone(args)
	if q.AfterID != "" {
		pageConds = append(pageConds, "id > ?")
		pageArgs = append(pageArgs, q.AfterID)
	} else {
		l.offset = max(q.Offset, 0)
	}
	l.pageSQL = `SELECT ` + userCols + ` FROM users` + where(pageConds) + ` ORDER BY id LIMIT ?`
	pageArgs = append(pageArgs, q.Limit)
	if l.offset > 0 {
		l.pageSQL += ` OFFSET ?`
		pageArgs = append(pageArgs, l.offset)
	}
	l.pageArgs = pageArgs
	return l
}

func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

func (r repo) queryUsers(ctx context.Context, query string, args ...any) ([]*user.User, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list users: %w", err)
	}
	defer rows.Close()
	users := []*user.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list users: scan: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list users: %w", err)
	}
	return users, nil
}
