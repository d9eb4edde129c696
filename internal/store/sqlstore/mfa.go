package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
)

var _ factor.Store = repo{}

const factorColumns = `id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, totp_step`

// CreateFactor stores f; a missing user is user.ErrNotFound (the foreign
// key refuses the row).
func (r repo) CreateFactor(ctx context.Context, f factor.Factor) error {
	_, err := r.q.ExecContext(ctx, `INSERT INTO mfa_factors (`+factorColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.UserID, string(f.Kind), f.Name, f.Secret, r.d.timeArg(f.CreatedAt),
		r.d.nullTimeArg(f.ConfirmedAt), r.d.nullTimeArg(f.LastUsedAt), f.TOTPStep)
	if err != nil {
		if r.d.isMissingParent(err) {
			return user.ErrNotFound
		}
		return fmt.Errorf("sqlstore: create factor: %w", err)
	}
	return nil
}

// Factors returns the user's factors, oldest first (IDs are UUIDv7).
func (r repo) Factors(ctx context.Context, userID string) ([]factor.Factor, error) {
	return r.queryFactors(ctx, "list factors", `SELECT `+factorColumns+` FROM mfa_factors WHERE user_id = ? ORDER BY id`, userID)
}

// AllFactors pages through every user's factors in ID order.
func (r repo) AllFactors(ctx context.Context, afterID string, limit int) ([]factor.Factor, error) {
	return r.queryFactors(ctx, "page factors", `SELECT `+factorColumns+` FROM mfa_factors WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
}

func (r repo) queryFactors(ctx context.Context, op, query string, args ...any) ([]factor.Factor, error) {
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	defer rows.Close()
	var out []factor.Factor
	for rows.Next() {
		f, err := scanFactor(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
		}
		out = append(out, *f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: %s: %w", op, err)
	}
	return out, nil
}

// Factor returns the user's factor or factor.ErrNotFound.
func (r repo) Factor(ctx context.Context, userID, id string) (*factor.Factor, error) {
	f, err := scanFactor(r.q.QueryRowContext(ctx,
		`SELECT `+factorColumns+` FROM mfa_factors WHERE id = ? AND user_id = ?`, id, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, factor.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get factor: %w", err)
	}
	return f, nil
}

func scanFactor(row rowScanner) (*factor.Factor, error) {
	var f factor.Factor
	err := row.Scan(&f.ID, &f.UserID, (*string)(&f.Kind), &f.Name, &f.Secret, timeDest{&f.CreatedAt},
		nullTimeDest{&f.ConfirmedAt}, nullTimeDest{&f.LastUsedAt}, &f.TOTPStep)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// ConfirmFactor activates an unconfirmed factor of the user.
func (r repo) ConfirmFactor(ctx context.Context, userID, id string, step int64, at time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_factors SET confirmed_at = ?, last_used_at = ?, totp_step = ?
WHERE id = ? AND user_id = ? AND confirmed_at IS NULL`, r.d.timeArg(at), r.d.timeArg(at), step, id, userID)
	if err != nil {
		return false, fmt.Errorf("sqlstore: confirm factor: %w", err)
	}
	return affected(res, "confirm factor")
}

// AcceptTOTPStep moves the factor's last step forward to step, in one
// conditional statement: of two uses of one code, the second finds
// totp_step = step and changes nothing.
func (r repo) AcceptTOTPStep(ctx context.Context, id string, step int64, at time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_factors SET totp_step = ?, last_used_at = ?
WHERE id = ? AND totp_step < ? AND confirmed_at IS NOT NULL`, step, r.d.timeArg(at), id, step)
	if err != nil {
		return false, fmt.Errorf("sqlstore: accept totp step: %w", err)
	}
	return affected(res, "accept totp step")
}

// DeleteFactor removes the user's factor.
func (r repo) DeleteFactor(ctx context.Context, userID, id string) (bool, error) {
	res, err := r.q.ExecContext(ctx, `DELETE FROM mfa_factors WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return false, fmt.Errorf("sqlstore: delete factor: %w", err)
	}
	return affected(res, "delete factor")
}

// DeleteUnconfirmedFactors removes the user's abandoned enrolments of kind.
func (r repo) DeleteUnconfirmedFactors(ctx context.Context, userID string, kind factor.Kind) error {
	_, err := r.q.ExecContext(ctx, `DELETE FROM mfa_factors WHERE user_id = ? AND kind = ? AND confirmed_at IS NULL`,
		userID, string(kind))
	if err != nil {
		return fmt.Errorf("sqlstore: delete unconfirmed factors: %w", err)
	}
	return nil
}

// ResealFactor swaps the sealed secret only while it is still old, so a
// rotation racing a re-enrolment cannot write back a stale secret.
func (r repo) ResealFactor(ctx context.Context, id, old, resealed string) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_factors SET secret = ? WHERE id = ? AND secret = ?`, resealed, id, old)
	if err != nil {
		return false, fmt.Errorf("sqlstore: reseal factor: %w", err)
	}
	return affected(res, "reseal factor")
}

// ReplaceRecoveryCodes deletes the user's codes and inserts hashes, in one
// transaction (one multi-row INSERT).
func (r repo) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error {
	return r.atomic(ctx, func(r repo) error {
		if _, err := r.q.ExecContext(ctx, `DELETE FROM mfa_recovery_codes WHERE user_id = ?`, userID); err != nil {
			return fmt.Errorf("sqlstore: delete recovery codes: %w", err)
		}
		if len(hashes) == 0 {
			return nil
		}
		args := make([]any, 0, 3*len(hashes))
		for _, h := range hashes {
			args = append(args, userID, h, r.d.timeArg(at))
		}
		_, err := r.q.ExecContext(ctx, `INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`+
			strings.Repeat(", (?, ?, ?)", len(hashes)-1), args...)
		if err != nil {
			if r.d.isMissingParent(err) {
				return user.ErrNotFound
			}
			return fmt.Errorf("sqlstore: insert recovery codes: %w", err)
		}
		return nil
	})
}

// UseRecoveryCode marks an unused code used, once.
func (r repo) UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_recovery_codes SET used_at = ?
WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, r.d.timeArg(at), userID, hash)
	if err != nil {
		return false, fmt.Errorf("sqlstore: use recovery code: %w", err)
	}
	return affected(res, "use recovery code")
}

// RecoveryCodesLeft counts the user's unused codes.
func (r repo) RecoveryCodesLeft(ctx context.Context, userID string) (int, error) {
	var n int
	err := r.q.QueryRowContext(ctx, `SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: count recovery codes: %w", err)
	}
	return n, nil
}

// CreateTicket stores t; a missing user is user.ErrNotFound.
func (r repo) CreateTicket(ctx context.Context, t factor.Ticket) error {
	_, err := r.q.ExecContext(ctx, `INSERT INTO mfa_tickets (ticket_hash, user_id, created_at, expires_at, used_at)
VALUES (?, ?, ?, ?, ?)`, t.Hash, t.UserID, r.d.timeArg(t.CreatedAt), r.d.timeArg(t.ExpiresAt), r.d.nullTimeArg(t.UsedAt))
	if err != nil {
		if r.d.isMissingParent(err) {
			return user.ErrNotFound
		}
		return fmt.Errorf("sqlstore: create mfa ticket: %w", err)
	}
	return nil
}

// Ticket returns the ticket if it is usable at now, or factor.ErrNotFound.
func (r repo) Ticket(ctx context.Context, hash string, now time.Time) (*factor.Ticket, error) {
	var t factor.Ticket
	err := r.q.QueryRowContext(ctx, `SELECT ticket_hash, user_id, created_at, expires_at, used_at FROM mfa_tickets
WHERE ticket_hash = ? AND used_at IS NULL AND expires_at > ?`, hash, r.d.timeArg(now)).
		Scan(&t.Hash, &t.UserID, timeDest{&t.CreatedAt}, timeDest{&t.ExpiresAt}, nullTimeDest{&t.UsedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, factor.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get mfa ticket: %w", err)
	}
	return &t, nil
}

// UseTicket spends the ticket, once, while it is unexpired.
func (r repo) UseTicket(ctx context.Context, hash string, at time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_tickets SET used_at = ?
WHERE ticket_hash = ? AND used_at IS NULL AND expires_at > ?`, r.d.timeArg(at), hash, r.d.timeArg(at))
	if err != nil {
		return false, fmt.Errorf("sqlstore: use mfa ticket: %w", err)
	}
	return affected(res, "use mfa ticket")
}

// AttemptTicket counts one attempt on a usable ticket below the cap, in
// one conditional UPDATE: of concurrent attempts past the cap, none wins.
func (r repo) AttemptTicket(ctx context.Context, hash string, max int, now time.Time) (bool, error) {
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_tickets SET attempts = attempts + 1
WHERE ticket_hash = ? AND used_at IS NULL AND expires_at > ? AND attempts < ?`, hash, r.d.timeArg(now), max)
	if err != nil {
		return false, fmt.Errorf("sqlstore: count mfa ticket attempt: %w", err)
	}
	return affected(res, "count mfa ticket attempt")
}

// DeleteExpiredTickets removes the tickets expired at now, used or not.
func (r repo) DeleteExpiredTickets(ctx context.Context, now time.Time) (int64, error) {
	return r.deleteExpired(ctx, "mfa_tickets", "expires_at", now)
}

// deleteExpired removes the rows of table whose time column is at or
// before now and counts them.
func (r repo) deleteExpired(ctx context.Context, table, column string, now time.Time) (int64, error) {
	res, err := r.q.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+column+` <= ?`, r.d.timeArg(now))
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlstore: delete expired %s: rows affected: %w", table, err)
	}
	return n, nil
}
