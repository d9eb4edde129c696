package user

import (
	"context"
	"errors"

	"github.com/usersvc/usersvc/internal/token"
)

// CreatePasswordReset starts a reset for the email's owner: it stores the
// hash of a fresh 256-bit token (replacing any open one) and, in the same
// transaction, a user.password_reset_requested event carrying the token for
// the mailer. For an unknown or disabled account it does nothing and answers
// the same, so the endpoint cannot be used to find out who is registered;
// delivery happens later in the worker, so its timing and failures do not
// show here either.
func (s *Service) CreatePasswordReset(ctx context.Context, email string) error {
	email = NormalizeEmail(email)
	if p := checkEmail(email); p != "" {
		return Invalid(map[string]string{"email": p})
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return storeErr("find user", err)
	}
	if u.Status != StatusActive {
		return nil
	}
	plain, hash, err := token.NewOpaque()
	if err != nil {
		return Internal("new reset token", err)
	}
	now := s.clock()
	r := PasswordReset{Hash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTTL)}
	ev, err := s.newEvent(EventPasswordResetRequested, u.ID)
	if err != nil {
		return err
	}
	ev.Reset = &EventReset{Email: u.Email, Name: u.Name, Token: plain, ExpiresAt: r.ExpiresAt}
	err = s.store.Atomic(ctx, func(tx Repo) error {
		if err := tx.PutPasswordReset(ctx, r); err != nil {
			return err
		}
		return appendEvents(ctx, tx, ev)
	})
	if err != nil {
		return storeErr("store reset", err)
	}
	return nil
}

// ResetPassword consumes a reset token and sets a new password. In one
// transaction it deletes the reset record (single use), writes the new hash,
// bumps the session version (so every access token issued before now stops
// validating) and revokes every refresh token.
func (s *Service) ResetPassword(ctx context.Context, resetToken, newPassword string) error {
	if resetToken == "" || len(resetToken) > MaxTokenBytes {
		return ErrResetTokenInvalid
	}
	hash := token.HashOpaque(resetToken)
	return s.store.Atomic(ctx, func(r Repo) error {
		pr, err := r.PasswordResetByHash(ctx, hash)
		if errors.Is(err, ErrNotFound) {
			return ErrResetTokenInvalid
		}
		if err != nil {
			return storeErr("find reset", err)
		}
		now := s.clock()
		if !now.Before(pr.ExpiresAt) {
			return ErrResetTokenInvalid
		}
		u, err := r.LockUser(ctx, pr.UserID)
		if errors.Is(err, ErrNotFound) {
			return ErrResetTokenInvalid
		}
		if err != nil {
			return storeErr("get user", err)
		}
		if p := s.checkPassword(newPassword, u.Email); p != "" {
			return Invalid(map[string]string{"password": p})
		}
		deleted, err := r.DeletePasswordReset(ctx, hash)
		if err != nil {
			return storeErr("consume reset", err)
		}
		if !deleted {
			return ErrResetTokenInvalid
		}
		h, err := s.hasher.Hash(ctx, newPassword)
		if err != nil {
			return Internal("hash password", err)
		}
		u.PasswordHash = h
		u.SessionVersion++
		u.UpdatedAt = now
		if err := r.UpdateUser(ctx, u); err != nil {
			return storeErr("update user", err)
		}
		if err := r.RevokeUserRefreshTokens(ctx, u.ID, now); err != nil {
			return storeErr("revoke sessions", err)
		}
		ev, err := s.newEvent(EventPasswordChanged, u.ID)
		if err != nil {
			return err
		}
		return appendEvents(ctx, r, ev)
	})
}
