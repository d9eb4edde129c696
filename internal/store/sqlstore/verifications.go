package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/usersvc/usersvc/internal/user"
)

// PutEmailVerification stores v, replacing the user's earlier record in one
// upsert on the unique user_id, as PutPasswordReset does. An unknown user is
// user.ErrNotFound.
func (r repo) PutEmailVerification(ctx context.Context, v user.EmailVerification) error {
	_, err := r.q.ExecContext(ctx, r.d.putVerificationSQL,
		v.Hash, v.UserID, v.Email, r.d.timeArg(v.CreatedAt), r.d.timeArg(v.ExpiresAt))
	if err != nil {
		if r.d.isMissingParent(err) {
			return user.ErrNotFound
		}
		return fmt.Errorf("sqlstore: put email verification: %w", err)
	}
	return nil
}

// EmailVerificationByHash returns the record or user.ErrNotFound.
func (r repo) EmailVerificationByHash(ctx context.Context, hash string) (*user.EmailVerification, error) {
	var v user.EmailVerification
	err := r.q.QueryRowContext(ctx, `SELECT token_hash, user_id, email, created_at, expires_at
FROM email_verifications WHERE token_hash = ?`, hash).
		Scan(&v.Hash, &v.UserID, &v.Email, timeDest{&v.CreatedAt}, timeDest{&v.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get email verification: %w", err)
	}
	return &v, nil
}

// DeleteEmailVerification deletes the record and reports whether it
// existed; of concurrent calls only one sees true.
func (r repo) DeleteEmailVerification(ctx context.Context, hash string) (bool, error) {
	res, err := r.q.ExecContext(ctx, `DELETE FROM email_verifications WHERE token_hash = ?`, hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: delete email verification: %w", err)
	}
	return affected(res, "delete email verification")
}
