package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/user"
)

var _ factor.PasskeyStore = repo{}

// ConfirmPasskey inserts the credential and confirms its factor in one
// transaction; the factor update is conditional (unconfirmed, webauthn),
// and when it changes nothing the insert is rolled back.
func (r repo) ConfirmPasskey(ctx context.Context, p factor.Passkey, at time.Time) (bool, error) {
	errNotConfirmable := errors.New("sqlstore: passkey factor not confirmable")
	err := r.atomic(ctx, func(r repo) error {
		res, err := r.q.ExecContext(ctx, `UPDATE mfa_factors SET confirmed_at = ?, last_used_at = ?
WHERE id = ? AND user_id = ? AND kind = ? AND confirmed_at IS NULL`,
			r.d.timeArg(at), r.d.timeArg(at), p.FactorID, p.UserID, string(factor.KindWebAuthn))
		if err != nil {
			return fmt.Errorf("sqlstore: confirm passkey factor: %w", err)
		}
		if ok, err := affected(res, "confirm passkey factor"); err != nil || !ok {
			return cmp.Or(err, errNotConfirmable)
		}
		_, err = r.q.ExecContext(ctx, `INSERT INTO mfa_passkeys (factor_id, credential_key, credential, sign_count)
VALUES (?, ?, ?, ?)`, p.FactorID, p.CredentialKey, string(p.Credential), int64(p.SignCount))
		if r.d.isDuplicate(err) {
			return factor.ErrDuplicateCredential
		}
		if err != nil {
			return fmt.Errorf("sqlstore: insert passkey: %w", err)
		}
		return nil
	})
	if errors.Is(err, errNotConfirmable) {
		return false, nil
	}
	return err == nil, err
}

const passkeyColumns = `p.factor_id, f.user_id, p.credential_key, p.credential, p.sign_count`

// Passkeys returns the user's confirmed passkeys, oldest first.
func (r repo) Passkeys(ctx context.Context, userID string) ([]factor.Passkey, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT `+passkeyColumns+` FROM mfa_passkeys p
JOIN mfa_factors f ON f.id = p.factor_id WHERE f.user_id = ? AND f.confirmed_at IS NOT NULL ORDER BY f.id`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list passkeys: %w", err)
	}
	defer rows.Close()
	var out []factor.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: list passkeys: %w", err)
		}
		out = append(out, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlstore: list passkeys: %w", err)
	}
	return out, nil
}

// PasskeyByCredential finds a confirmed passkey by its credential key.
func (r repo) PasskeyByCredential(ctx context.Context, credentialKey string) (*factor.Passkey, error) {
	p, err := scanPasskey(r.q.QueryRowContext(ctx, `SELECT `+passkeyColumns+` FROM mfa_passkeys p
JOIN mfa_factors f ON f.id = p.factor_id WHERE p.credential_key = ? AND f.confirmed_at IS NOT NULL`, credentialKey))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, factor.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get passkey: %w", err)
	}
	return p, nil
}

func scanPasskey(row rowScanner) (*factor.Passkey, error) {
	var (
		p     factor.Passkey
		cred  string
		count int64
	)
	if err := row.Scan(&p.FactorID, &p.UserID, &p.CredentialKey, &cred, &count); err != nil {
		return nil, err
	}
	p.Credential, p.SignCount = []byte(cred), uint32(count)
	return &p, nil
}

// AcceptSignCount moves the counter forward in one conditional UPDATE (of
// two uses of one assertion the second finds the count already there),
// then stamps the factor's last use in the same transaction.
func (r repo) AcceptSignCount(ctx context.Context, factorID string, count uint32, at time.Time) (bool, error) {
	var accepted bool
	err := r.atomic(ctx, func(r repo) error {
		res, err := r.q.ExecContext(ctx, `UPDATE mfa_passkeys SET sign_count = ?
WHERE factor_id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))`, int64(count), factorID, int64(count), int64(count))
		if err != nil {
			return fmt.Errorf("sqlstore: accept sign count: %w", err)
		}
		if accepted, err = affected(res, "accept sign count"); err != nil || !accepted {
			return err
		}
		_, err = r.q.ExecContext(ctx, `UPDATE mfa_factors SET last_used_at = ? WHERE id = ?`, r.d.timeArg(at), factorID)
		if err != nil {
			return fmt.Errorf("sqlstore: passkey last used: %w", err)
		}
		return nil
	})
	return accepted && err == nil, err
}

// CreateCeremony stores c; a missing user is user.ErrNotFound.
func (r repo) CreateCeremony(ctx context.Context, c factor.Ceremony) error {
	var userID any
	if c.UserID != "" {
		userID = c.UserID
	}
	_, err := r.q.ExecContext(ctx, `INSERT INTO mfa_ceremonies (ceremony_hash, kind, user_id, session, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?)`, c.Hash, c.Kind, userID, string(c.Session), r.d.timeArg(c.CreatedAt), r.d.timeArg(c.ExpiresAt))
	if err != nil {
		if r.d.isMissingParent(err) {
			return user.ErrNotFound
		}
		return fmt.Errorf("sqlstore: create ceremony: %w", err)
	}
	return nil
}

// Ceremony reads a usable ceremony without spending it.
func (r repo) Ceremony(ctx context.Context, hash, kind string, now time.Time) (*factor.Ceremony, error) {
	var (
		c       factor.Ceremony
		userID  sql.NullString
		session string
	)
	err := r.q.QueryRowContext(ctx, `SELECT ceremony_hash, kind, user_id, session, created_at, expires_at FROM mfa_ceremonies
WHERE ceremony_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?`, hash, kind, r.d.timeArg(now)).
		Scan(&c.Hash, &c.Kind, &userID, &session, timeDest{&c.CreatedAt}, timeDest{&c.ExpiresAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, factor.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("sqlstore: get ceremony: %w", err)
	}
	c.UserID, c.Session = userID.String, []byte(session)
	return &c, nil
}

// TakeCeremony reads a usable ceremony and spends it; the conditional
// UPDATE decides which of two concurrent takes gets it.
func (r repo) TakeCeremony(ctx context.Context, hash, kind string, now time.Time) (*factor.Ceremony, error) {
	c, err := r.Ceremony(ctx, hash, kind, now)
	if err != nil {
		return nil, err
	}
	res, err := r.q.ExecContext(ctx, `UPDATE mfa_ceremonies SET used_at = ?
WHERE ceremony_hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?`, r.d.timeArg(now), hash, kind, r.d.timeArg(now))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: use ceremony: %w", err)
	}
	if ok, err := affected(res, "use ceremony"); err != nil || !ok {
		return nil, cmp.Or(err, factor.ErrNotFound)
	}
	return c, nil
}

// DeleteExpiredCeremonies removes the ceremonies expired at now.
func (r repo) DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int64, error) {
	return r.deleteExpired(ctx, "mfa_ceremonies", "expires_at", now)
}
