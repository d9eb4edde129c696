package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/usersvc/usersvc/internal/user"
)

// CreateRefreshToken stores t. A user that does not exist (any more) is
// user.ErrNotFound: the foreign key refuses the row.
func (r repo) CreateRefreshToken(ctx context.Context, t user.RefreshToken) error {
	_, err := r.q.ExecContext(ctx, `INSERT INTO refresh_tokens
(token_hash, family_id, user_id, created_at, expires_at, used_at, revoked_at, amr) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Hash, t.FamilyID, t.UserID, r.d.timeArg(t.CreatedAt), r.d.timeArg(t.ExpiresAt),
		r.d.nullTimeArg(t.UsedAt), r.d.nullTimeArg(t.RevokedAt), t.AMR)
	if err != nil {
		if r.d.isMissingParent(err) {
			return user.ErrNotFound
		}
		return fmt.Errorf("sqlstore: create refresh token: %w", err)
	}
	return nil
}

// RefreshTokenByHash returns the token or user.ErrNotFound.
func (r repo) RefreshTokenByHash(ctx context.Context, hash string) (*user.RefreshToken, error) {
	return r.refreshToken(ctx, hash, "", "get refresh token")
}

// LockRefreshToken is RefreshTokenByHash that also locks the row until the
// transaction ends (on MySQL a locking read, which sees the latest committed
// row rather than the transaction's snapshot; SQLite's transaction already
// holds the write lock).
func (r repo) LockRefreshToken(ctx context.Context, hash string) (*user.RefreshToken, error) {
	return r.refreshToken(ctx, hash, r.d.lockSuffix, "lock refresh token")
}

func (r repo) refreshToken(ctx context.Context, hash, suffix, op string) (*user.RefreshToken, error) {
	var t user.RefreshToken
	err := r.q.QueryRowContext(ctx, `SELECT token_hash, family_id, user_id, created_at, expires_at, used_at, revoked_at, amr
FROM refresh_tokens WHERE token_hash = ?`+suffix, hash).
		Scan(&t.Hash, &t.FamilyID, &t.UserID, timeDest{&t.CreatedAt}, timeDest{&t.ExpiresAt},
			nullTimeDest{&t.UsedAt}, nullTimeDest{&t.RevokedAt}, &t.AMR)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return &t, nil
}

// MarkRefreshTokenUsed sets used_at if the token is neither used nor
// revoked, as one conditional UPDATE: the database's row lock decides
// between concurrent callers, and exactly one sees true. An unknown token is
// false, not an error.
func (r repo) MarkRefreshTokenUsed(ctx context.Context, hash string, at time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ?
WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL`, r.d.timeArg(at), hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: mark refresh token used: %w", err)
	}
	return affected(res, "mark refresh token used")
}

// RevokeRefreshFamily revokes every token of the family not yet revoked;
// tokens revoked earlier keep their first revocation time.
func (r repo) RevokeRefreshFamily(ctx context.Context, familyID string, at time.Time) error {
	_, err := r.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ?
WHERE family_id = ? AND revoked_at IS NULL`, r.d.timeArg(at), familyID)
	if err != nil {
		return fmt.Errorf("sqlstore: revoke refresh family: %w", err)
	}
	return nil
}

// RevokeUserRefreshTokens revokes every token of the user not yet revoked.
func (r repo) RevokeUserRefreshTokens(ctx context.Context, userID string, at time.Time) error {
	_, err := r.q.ExecContext(ctx, `UPDATE refresh_tokens SET revoked_at = ?
WHERE user_id = ? AND revoked_at IS NULL`, r.d.timeArg(at), userID)
	if err != nil {
		return fmt.Errorf("sqlstore: revoke user refresh tokens: %w", err)
	}
	return nil
}

// PutPasswordReset stores rec, replacing the user's earlier record in one
// upsert on the unique user_id (so there is no window with two open tokens
// and no delete-then-insert gap-lock deadlock on MySQL). An unknown user is
// user.ErrNotFound.
func (r repo) PutPasswordReset(ctx context.Context, rec user.PasswordReset) error {
	_, err := r.q.ExecContext(ctx, r.d.putResetSQL,
		rec.Hash, rec.UserID, rec.Email, r.d.timeArg(rec.CreatedAt), r.d.timeArg(rec.ExpiresAt))
	if err != nil {
		if r.d.isMissingParent(err) {
			return user.ErrNotFound
		}
		return fmt.Errorf("sqlstore: put password reset: %w", err)
	}
	return nil
}

// PasswordResetByHash returns the reset record or user.ErrNotFound.
func (r repo) PasswordResetByHash(ctx context.Context, hash string) (*user.PasswordReset, error) {
	var rec user.PasswordReset
	err := r.q.QueryRowContext(ctx, `SELECT token_hash, user_id, email, created_at, expires_at
FROM password_resets WHERE token_hash = ?`, hash).
		Scan(&rec.Hash, &rec.UserID, &rec.Email, timeDest{&rec.CreatedAt}, timeDest{&rec.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get password reset: %w", err)
	}
	return &rec, nil
}

// DeletePasswordReset deletes the record and reports whether it existed.
// Of concurrent calls (even in transactions that both read the record
// first) only one deletes the row and sees true.
func (r repo) DeletePasswordReset(ctx context.Context, hash string) (bool, error) {
	res, err := r.q.ExecContext(ctx, `DELETE FROM password_resets WHERE token_hash = ?`, hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: delete password reset: %w", err)
	}
	return affected(res, "delete password reset")
}

// DeleteUserPasswordResets removes the user's open reset record, if any.
func (r repo) DeleteUserPasswordResets(ctx context.Context, userID string) error {
	if _, err := r.q.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("sqlstore: delete user's password resets: %w", err)
	}
	return nil
}

// affected reports whether the statement touched a row.
func affected(res sql.Result, op string) (bool, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlstore: %s: rows affected: %w", op, err)
	}
	return n > 0, nil
}

// RefreshFamilyStart is the oldest created_at of the family: rotations add
// rows and none is deleted before the user is, so it is the sign-in.
func (r repo) RefreshFamilyStart(ctx context.Context, familyID string) (time.Time, error) {
	var start *time.Time
	err := r.q.QueryRowContext(ctx, `SELECT MIN(created_at) FROM refresh_tokens WHERE family_id = ?`, familyID).
		Scan(nullTimeDest{&start})
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlstore: refresh family start: %w", err)
	}
	if start == nil {
		return time.Time{}, user.ErrNotFound
	}
	return *start, nil
}

// UserSessions groups the user's refresh tokens by family and keeps the
// families with a token still usable at now. Each rotation adds a row, so
// the newest row's created_at is the last use and its expires_at the end.
func (r repo) UserSessions(ctx context.Context, userID string, now time.Time, limit int) ([]user.SessionInfo, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT family_id, MIN(created_at), MAX(created_at), MAX(expires_at)
FROM refresh_tokens WHERE user_id = ?
GROUP BY family_id
HAVING SUM(CASE WHEN used_at IS NULL AND revoked_at IS NULL AND expires_at > ? THEN 1 ELSE 0 END) > 0
ORDER BY MAX(created_at) DESC, family_id LIMIT ?`, userID, r.d.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
	}
	defer rows.Close()
	var out []user.SessionInfo
	for rows.Next() {
		var s user.SessionInfo
		if err := rows.Scan(&s.ID, timeDest{&s.StartedAt}, timeDest{&s.LastUsedAt}, timeDest{&s.ExpiresAt}); err != nil {
			return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list sessions: %w", err)
	}
	return out, nil
}
