package recovery

import (
	"context"
	"errors"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

// Email verification. A token proves one address of one user: the one it
// was mailed to, recorded with it (user.EmailVerification.Email). Tokens are
// 256-bit, stored as their SHA-256, expire after user.Config.VerifyTTL, and are
// single use: consuming one is deleting its record, so of two concurrent
// uses one wins. A user has at most one open token; a new one (a resend, a
// second email change) replaces it.

// VerifyEmail consumes a verification token. If it was mailed to the
// user's address, the address is now verified; if to their pending
// address, that becomes their address (the login) and is verified, and an
// open password reset, mailed to the old address, ends. A pending address
// that another account took meanwhile is user.ErrEmailTaken, and the token
// stays open. An unknown, used, expired or superseded token (the pending
// address changed again since) is user.ErrVerifyTokenInvalid.
func (s *Recovery) VerifyEmail(ctx context.Context, verifyToken string) error {
	if verifyToken == "" || len(verifyToken) > user.MaxTokenBytes {
		return user.ErrVerifyTokenInvalid
	}
	hash := token.HashOpaque(verifyToken)
	v, err := s.store.EmailVerificationByHash(ctx, hash)
	if errors.Is(err, user.ErrNotFound) {
		return user.ErrVerifyTokenInvalid
	}
	if err != nil {
		return user.StoreErr("find verification", err)
	}
	if !s.clock.Now().Before(v.ExpiresAt) {
		return user.ErrVerifyTokenInvalid
	}
	ev, err := user.NewEvent(user.EventUpdated, v.UserID, s.clock.Now())
	if err != nil {
		return err
	}
	err = s.store.Atomic(ctx, func(r user.Repo) error {
		cur, err := r.LockUser(ctx, v.UserID)
		if errors.Is(err, user.ErrNotFound) {
			return user.ErrVerifyTokenInvalid
		}
		if err != nil {
			return err
		}
		deleted, err := r.DeleteEmailVerification(ctx, hash)
		if err != nil {
			return err
		}
		if !deleted {
			return user.ErrVerifyTokenInvalid
		}
		changed, err := verifiedAddress(cur, v.Email)
		if err != nil || len(changed) == 0 {
			return err
		}
		if changed[0] == "email" {
			if err := r.DeleteUserPasswordResets(ctx, cur.ID); err != nil {
				return err
			}
		}
		cur.UpdatedAt = s.clock.Now()
		if err := r.UpdateUser(ctx, cur); err != nil {
			return err
		}
		ev.User, ev.Changed = user.EventUserOf(cur), changed
		return user.AppendEvents(ctx, r, ev)
	})
	if err != nil {
		return user.StoreErr("verify email", err)
	}
	return nil
}

// verifiedAddress applies the proof that the user receives mail at email
// to cur and returns the fields that changed ("email" first if it did).
func verifiedAddress(cur *user.User, email string) ([]string, error) {
	var changed []string
	switch {
	case cur.PendingEmail != "" && email == cur.PendingEmail:
		cur.Email, cur.PendingEmail = email, ""
		changed = append(changed, "email", "pending_email")
	case email != cur.Email:
		return nil, user.ErrVerifyTokenInvalid
	}
	if !cur.EmailVerified {
		cur.EmailVerified = true
		changed = append(changed, "email_verified")
	}
	return changed, nil
}

// ResendVerification mails a new verification link to a registered,
// active, not yet verified address, replacing the open one. For any other
// address it does nothing and answers the same, like CreatePasswordReset,
// so it reveals nobody's registration; it is limited per address, whoever
// asks. A pending address (an email change) is not resent here: its owner
// asks for the change again.
func (s *Recovery) ResendVerification(ctx context.Context, email string) error {
	u, err := s.mailRecipient(ctx, "verify", email)
	if err != nil || u == nil || u.EmailVerified {
		return err
	}
	err = s.store.Atomic(ctx, func(r user.Repo) error { return s.RequestVerification(ctx, r, u, u.Email) })
	if err != nil {
		return user.StoreErr("store verification", err)
	}
	return nil
}

// RequestVerification opens a verification token of u for email, inside
// the caller's transaction, with the event that hands it to the mailer.
func (s *Recovery) RequestVerification(ctx context.Context, r user.Repo, u *user.User, email string) error {
	plain, hash, err := token.NewOpaque()
	if err != nil {
		return user.Internal("new verification token", err)
	}
	now := s.clock.Now()
	v := user.EmailVerification{Hash: hash, UserID: u.ID, Email: email, CreatedAt: now, ExpiresAt: now.Add(s.cfg.VerifyTTL)}
	ev, err := user.NewEvent(user.EventVerificationRequested, u.ID, s.clock.Now())
	if err != nil {
		return err
	}
	ev.Verification = &user.EventReset{Email: email, Name: u.Name, Token: plain, ExpiresAt: v.ExpiresAt}
	if err := r.PutEmailVerification(ctx, v); err != nil {
		return err
	}
	return user.AppendEvents(ctx, r, ev)
}
