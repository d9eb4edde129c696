package recovery

import (
	"context"
	"errors"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// CreatePasswordReset starts a reset for the email's owner: it stores the
// hash of a fresh 256-bit token (replacing any open one) and, in the same
// transaction, a user.password_reset_requested event carrying the token for
// the mailer. For an unknown or disabled account it does nothing and answers
// the same, so the endpoint cannot be used to find out who is registered;
// delivery happens later in the worker, so its timing and failures do not
// show here either.
func (s *Recovery) CreatePasswordReset(ctx context.Context, email string) error {
	u, err := s.mailRecipient(ctx, "reset", email)
	if err != nil || u == nil {
		return err
	}
	plain, hash, err := token.NewOpaque()
	if err != nil {
		return user.Internal("new reset token", err)
	}
	now := s.clock.Now()
	r := user.PasswordReset{Hash: hash, UserID: u.ID, Email: u.Email, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTTL)}
	ev, err := user.NewEvent(user.EventPasswordResetRequested, u.ID, s.clock.Now())
	if err != nil {
		return err
	}
	ev.Reset = &user.EventReset{Email: u.Email, Name: u.Name, Token: plain, ExpiresAt: r.ExpiresAt}
	err = s.store.Atomic(ctx, func(tx user.Repo) error {
		if err := tx.PutPasswordReset(ctx, r); err != nil {
			return err
		}
		return user.AppendEvents(ctx, tx, ev)
	})
	if err != nil {
		return user.StoreErr("store reset", err)
	}
	return nil
}

// mailRecipient starts a request that mails an address whoever asks (a
// reset, a resent verification): it parses the address, spends one of the
// address's budget under kind, and returns its user if registered and
// active, nil otherwise: the caller then does nothing and answers the same.
func (s *Recovery) mailRecipient(ctx context.Context, kind, email string) (*user.User, error) {
	email, p := user.ParseEmail(email)
	if p != "" {
		return nil, user.Invalid(map[string]string{"email": p})
	}
	// Limited per address whether or not it is registered, so the limit
	// reveals nothing either.
	if err := user.AllowAttempt(ctx, s.log, s.resets, kind+"|"+email); err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, user.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, user.StoreErr("find user", err)
	}
	if u.Status != user.StatusActive {
		return nil, nil
	}
	return u, nil
}

// ResetPassword consumes a reset token and sets a new password. The token,
// the user and the policy are checked and the password hashed before the
// write transaction, so the write lock (SQLite's only one) is not held for
// an argon2 run; an unknown token costs no hash. In one transaction it then
// locks the user, deletes the reset record (single use: of two concurrent
// uses only one deletes it), writes the new hash, bumps the session version
// (so every access token issued before now stops validating) and revokes
// every refresh token.
func (s *Recovery) ResetPassword(ctx context.Context, resetToken, newPassword string) error {
	if resetToken == "" || len(resetToken) > user.MaxTokenBytes {
		return user.ErrResetTokenInvalid
	}
	hash := token.HashOpaque(resetToken)
	pr, err := s.store.PasswordResetByHash(ctx, hash)
	if errors.Is(err, user.ErrNotFound) {
		return user.ErrResetTokenInvalid
	}
	if err != nil {
		return user.StoreErr("find reset", err)
	}
	if !s.clock.Now().Before(pr.ExpiresAt) {
		return user.ErrResetTokenInvalid
	}
	u, err := s.store.UserByID(ctx, pr.UserID)
	if errors.Is(err, user.ErrNotFound) || err == nil && !resetStillFor(pr, u) {
		return user.ErrResetTokenInvalid
	}
	if err != nil {
		return user.StoreErr("get user", err)
	}
	if p := user.CheckPassword(s.policy, newPassword, u.Email); p != "" {
		return user.Invalid(map[string]string{"password": p})
	}
	h, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return user.Internal("hash password", err)
	}
	ev, err := user.NewEvent(user.EventPasswordChanged, u.ID, s.clock.Now())
	if err != nil {
		return err
	}
	return s.store.Atomic(ctx, func(r user.Repo) error {
		// The user row first, then the reset row: the same lock order as
		// Update, which deletes a user's resets after locking the user.
		cur, err := r.LockUser(ctx, pr.UserID)
		if errors.Is(err, user.ErrNotFound) || err == nil && !resetStillFor(pr, cur) {
			return user.ErrResetTokenInvalid
		}
		if err != nil {
			return user.StoreErr("get user", err)
		}
		deleted, err := r.DeletePasswordReset(ctx, hash)
		if err != nil {
			return user.StoreErr("consume reset", err)
		}
		if !deleted {
			return user.ErrResetTokenInvalid
		}
		now := s.clock.Now()
		cur.PasswordHash = h
		cur.SessionVersion++
		cur.UpdatedAt = now
		if err := r.UpdateUser(ctx, cur); err != nil {
			return user.StoreErr("update user", err)
		}
		if err := r.RevokeUserRefreshTokens(ctx, cur.ID, now); err != nil {
			return user.StoreErr("revoke sessions", err)
		}
		if err := user.RevokeUserTokens(ctx, r, auth.ReasonPasswordChanged, cur, true, now, s.cfg.AccessTTL); err != nil {
			return err
		}
		return user.AppendEvents(ctx, r, ev)
	})
}

// resetStillFor reports whether the reset may still change u's password: it
// was mailed to the address u still has. Every change of email deletes the
// user's open reset as well (see endsReset); this check holds even
// for a path that changed the address without the domain.
func resetStillFor(pr *user.PasswordReset, u *user.User) bool {
	return pr.Email != "" && pr.Email == u.Email
}
