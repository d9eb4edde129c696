package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/user"
)

// CreateServiceAccount stores a.
func (r repo) CreateServiceAccount(ctx context.Context, a user.ServiceAccount) error {
	_, err := r.q.ExecContext(ctx, `INSERT INTO service_accounts
(id, name, secret_hash, scopes, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, a.Name, a.SecretHash, scopesArg(a.Scopes), r.d.timeArg(a.CreatedAt), r.d.nullTimeArg(a.RevokedAt))
	if err != nil {
		return fmt.Errorf("sqlstore: create service account: %w", err)
	}
	return nil
}

const serviceAccountColumns = `id, name, secret_hash, scopes, created_at, revoked_at`

// ServiceAccountByID returns the account or user.ErrNotFound.
func (r repo) ServiceAccountByID(ctx context.Context, id string) (*user.ServiceAccount, error) {
	a, err := scanServiceAccount(r.q.QueryRowContext(ctx,
		`SELECT `+serviceAccountColumns+` FROM service_accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, user.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get service account: %w", err)
	}
	return a, nil
}

// ListServiceAccounts returns every account, oldest first (IDs are UUIDv7).
func (r repo) ListServiceAccounts(ctx context.Context) ([]user.ServiceAccount, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+serviceAccountColumns+` FROM service_accounts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list service accounts: %w", err)
	}
	defer rows.Close()
	var out []user.ServiceAccount
	for rows.Next() {
		a, err := scanServiceAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list service accounts: %w", err)
		}
		out = append(out, *a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list service accounts: %w", err)
	}
	return out, nil
}

// RevokeServiceAccount sets revoked_at once; an unknown or already revoked
// account is false.
func (r repo) RevokeServiceAccount(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE service_accounts SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		r.d.timeArg(at), id)
	if err != nil {
		return false, fmt.Errorf("sqlstore: revoke service account: %w", err)
	}
	return affected(res, "revoke service account")
}

func scanServiceAccount(row rowScanner) (*user.ServiceAccount, error) {
	var a user.ServiceAccount
	var scopes string
	if err := row.Scan(&a.ID, &a.Name, &a.SecretHash, &scopes, timeDest{&a.CreatedAt}, nullTimeDest{&a.RevokedAt}); err != nil {
		return nil, err
	}
	for _, f := range strings.Fields(scopes) {
		a.Scopes = append(a.Scopes, user.Scope(f))
	}
	return &a, nil
}

func scopesArg(scs []user.Scope) string {
	parts := make([]string, len(scs))
	for i, sc := range scs {
		parts[i] = string(sc)
	}
	return strings.Join(parts, " ")
}
