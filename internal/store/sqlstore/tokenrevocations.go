package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
)

// AppendRevocation records a revocation for other services (sdk/revocations)
// inside the caller's transaction: as an outbox event, published to
// RabbitMQ under auth.RevocationRoutingKey, and in token_revocations, where
// a verifier that missed the event catches up. One transaction with the
// change that caused it, so the revocation exists exactly when the change
// does and is never lost.
func (r repo) AppendRevocation(ctx context.Context, rev auth.Revocation) error {
	if err := rev.Validate(); err != nil {
		return fmt.Errorf("sqlstore: append revocation: %w", err)
	}
	body, err := json.Marshal(rev)
	if err != nil {
		return fmt.Errorf("sqlstore: encode revocation: %w", err)
	}
	if _, err := r.q.ExecContext(ctx, `INSERT INTO token_revocations (id, at, until_at, body) VALUES (?, ?, ?, ?)`,
		rev.ID, r.d.timeArg(rev.At), r.d.timeArg(rev.Until), string(body)); err != nil {
		return fmt.Errorf("sqlstore: append revocation: %w", err)
	}
	_, err = r.q.ExecContext(ctx, `INSERT INTO outbox (id, type, user_id, occurred_at, body, trace_parent) VALUES (?, ?, ?, ?, ?, ?)`,
		rev.ID, auth.RevocationRoutingKey, rev.Subject, r.d.timeArg(rev.At), string(body), traceParent(ctx))
	if err != nil {
		return fmt.Errorf("sqlstore: append revocation event: %w", err)
	}
	return nil
}

// AppendRevocation is repo.AppendRevocation outside a transaction, for a
// revocation that follows no other write.
func (s *Store) AppendRevocation(ctx context.Context, rev auth.Revocation) error {
	return s.repo.atomic(ctx, func(r repo) error { return r.AppendRevocation(ctx, rev) })
}

// RevocationsSince returns up to limit revocations still in force at now
// whose at is not before since, in id (time) order, starting after the id
// after ("" for the first page): the catch-up of sdk/revocations. The
// rows in force are at most one access-token lifetime's worth.
func (s *Store) RevocationsSince(ctx context.Context, since, now time.Time, after string, limit int) ([]auth.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM token_revocations WHERE until_at > ? AND at >= ? AND id > ?
		ORDER BY id LIMIT ?`, s.d.timeArg(now), s.d.timeArg(since), after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list token revocations: %w", err)
	}
	defer rows.Close()
	var out []auth.Revocation
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("sqlstore: list token revocations: scan: %w", err)
		}
		rev, err := auth.ParseRevocation([]byte(body))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list token revocations: %w", err)
		}
		out = append(out, rev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list token revocations: %w", err)
	}
	return out, nil
}
