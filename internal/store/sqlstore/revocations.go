package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/revocation"
)

var _ revocation.Store = (*Store)(nil)

// PutRevocation denies key until until; an existing entry keeps the later
// of the two expiries.
func (s *Store) PutRevocation(ctx context.Context, key string, until time.Time) error {
	if _, err := s.db.ExecContext(ctx, s.d.putRevocationSQL, key, s.d.timeArg(until)); err != nil {
		return fmt.Errorf("sqlstore: put revocation: %w", err)
	}
	return nil
}

// HasRevocation reports whether any of keys is denied at now: one primary-key
// lookup per key.
func (s *Store) HasRevocation(ctx context.Context, now time.Time, keys ...string) (bool, error) {
	if len(keys) == 0 {
		return false, nil
	}
	args := make([]any, 0, len(keys)+1)
	args = append(args, s.d.timeArg(now))
	for _, k := range keys {
		args = append(args, k)
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM revoked_tokens WHERE expires_at > ? AND token_key IN (?`+
		strings.Repeat(", ?", len(keys)-1)+`)`, args...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlstore: check revocation: %w", err)
	}
	return n > 0, nil
}

// Revocations returns every entry in force at now (at most the revocations
// of one access-token lifetime).
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]revocation.Entry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT token_key, expires_at FROM revoked_tokens WHERE expires_at > ?`,
		s.d.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list revocations: %w", err)
	}
	defer rows.Close()
	var out []revocation.Entry
	for rows.Next() {
		var e revocation.Entry
		if err := rows.Scan(&e.Key, timeDest{&e.Until}); err != nil {
			return nil, fmt.Errorf("sqlstore: list revocations: scan: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list revocations: %w", err)
	}
	return out, nil
}

// DeleteExpiredRevocations removes the entries no longer in force at now.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error) {
	// The published revocations expire with the denylist they mirror.
	if _, err := s.deleteExpired(ctx, "token_revocations", "until_at", now); err != nil {
		return 0, err
	}
	return s.deleteExpired(ctx, "revoked_tokens", "expires_at", now)
}
