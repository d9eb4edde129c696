package session

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/sdk/auth"
)

// Auth checks an email and password and starts a session. It does the same
// work (one password verification) whether or not the email exists, and
// answers user.ErrBadCredentials for both an unknown email and a wrong password,
// so neither the answer nor its timing tells whether an email is registered.
// A successful login under outdated hash parameters rehashes the password.
func (s *Manager) Auth(ctx context.Context, email, pw string) (*user.Session, error) {
	email = user.NormalizeEmail(email)
	fields := map[string]string{}
	if email == "" {
		fields["email"] = "is required"
	} else if len(email) > user.MaxEmailLength {
		fields["email"] = "must be at most 254 characters"
	}
	if pw == "" {
		fields["password"] = "is required"
	} else if len(pw) > user.MaxPasswordBytes {
		fields["password"] = "is too long"
	}
	if len(fields) > 0 {
		return nil, user.Invalid(fields)
	}
	if err := user.AllowAttempt(ctx, s.log, s.tries, "password|"+email); err != nil {
		return nil, err
	}
	u, err := s.store.UserByEmail(ctx, email)
	if errors.Is(err, user.ErrNotFound) {
		_, _, _ = s.hasher.Verify(ctx, pw, s.dummyHash)
		return nil, user.ErrBadCredentials
	}
	if err != nil {
		return nil, user.StoreErr("find user", err)
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, u.PasswordHash)
	if err != nil {
		return nil, user.Internal("verify password", err)
	}
	if !ok {
		return nil, user.ErrBadCredentials
	}
	if u.Status != user.StatusActive {
		return nil, user.ErrAccountDisabled
	}
	// Only now, after the password: the answer reveals the account's state
	// to nobody but its owner.
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return nil, user.ErrEmailNotVerified
	}
	if rehash {
		s.rehash(ctx, u, pw)
	}
	if s.mfa != nil {
		ch, err := s.mfa.Challenge(ctx, u)
		if err != nil {
			return nil, err
		}
		if ch != nil {
			return &user.Session{MFA: ch}, nil
		}
	}
	return s.startSession(ctx, s.store, u, uuid.NewString(), s.clock.Now(), []string{token.AMRPassword})
}

// CompleteMFA finishes a sign-in that Auth answered with a challenge: the
// ticket and a code of one of the factors it named start the session,
// whose tokens carry the password, the factor and "mfa" as amr.
func (s *Manager) CompleteMFA(ctx context.Context, ticket, kind, code string) (*user.Session, error) {
	if s.mfa == nil {
		return nil, user.ErrMFATicketInvalid
	}
	u, amr, err := s.mfa.Redeem(ctx, ticket, kind, code)
	if err != nil {
		return nil, err
	}
	return s.completeSignIn(ctx, u, amr)
}

// CompletePasswordless finishes a passwordless passkey sign-in (begun by
// mfa.Flow.BeginPasswordless): the ceremony and the passkey's assertion
// start a session as a completed second factor does, whose tokens carry
// "hwk" and "mfa" as amr.
func (s *Manager) CompletePasswordless(ctx context.Context, ceremony string, credential json.RawMessage) (*user.Session, error) {
	if s.mfa == nil {
		return nil, user.Invalid(map[string]string{"ceremony": "is unknown, expired or used; start the passkey sign-in again"})
	}
	u, amr, err := s.mfa.FinishPasswordless(ctx, ceremony, credential)
	if err != nil {
		return nil, err
	}
	return s.completeSignIn(ctx, u, amr)
}

// completeSignIn starts the session of a sign-in completed without a
// password check in this call: the account's state is checked as Auth
// checks it after the password (again, for a second factor: the account
// may have been disabled in the minutes since the password).
func (s *Manager) completeSignIn(ctx context.Context, u *user.User, amr []string) (*user.Session, error) {
	if u.Status != user.StatusActive {
		return nil, user.ErrAccountDisabled
	}
	if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
		return nil, user.ErrEmailNotVerified
	}
	return s.startSession(ctx, s.store, u, uuid.NewString(), s.clock.Now(), amr)
}

// rehash upgrades a stored hash to the current parameters. A failure only
// delays the upgrade to the next login, so it is logged, not returned.
func (s *Manager) rehash(ctx context.Context, u *user.User, pw string) {
	h, err := s.hasher.Hash(ctx, pw)
	if err == nil {
		var ok bool
		if ok, err = s.store.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, h); ok {
			u.PasswordHash = h
		}
	}
	if err != nil {
		s.log.WarnContext(ctx, "password rehash failed", "user.id", u.ID, "error", err)
	}
}

// startSession issues an access token and a refresh token of the family
// begun at started (the sign-in, its auth_time) by the methods amr.
func (s *Manager) startSession(ctx context.Context, r user.Repo, u *user.User, family string, started time.Time, amr []string) (*user.Session, error) {
	signIn := token.SignIn{AMR: amr, AuthTime: started}
	access, claims, err := s.tokens.Issue(ctx, u.ID, string(u.Role), u.SessionVersion, family, u.EmailVerified, signIn)
	if err != nil {
		return nil, user.Internal("issue access token", err)
	}
	plain, hash, err := token.NewOpaque()
	if err != nil {
		return nil, user.Internal("new refresh token", err)
	}
	now := s.clock.Now()
	// The token says when the session ends at the latest: its own lifetime,
	// the idle timeout from now, or the session's absolute end.
	expires := now.Add(min(s.cfg.RefreshTTL, s.cfg.SessionIdleTimeout, started.Add(s.cfg.SessionMaxLifetime).Sub(now)))
	rt := user.RefreshToken{Hash: hash, FamilyID: family, UserID: u.ID, CreatedAt: now, ExpiresAt: expires,
		AMR: strings.Join(amr, " ")}
	if err := r.CreateRefreshToken(ctx, rt); err != nil {
		return nil, user.StoreErr("store refresh token", err)
	}
	return &user.Session{AccessToken: access, AccessExpiresAt: claims.ExpiresAt, RefreshToken: plain,
		RefreshExpiresAt: rt.ExpiresAt, User: u}, nil
}

// Refresh trades a refresh token for a new session of the same family and
// uses the old token up. Presenting a token that was already used means it
// leaked (the thief or the owner used it first), so the whole family is
// revoked and both parties must sign in again (OAuth 2.0 Security BCP 4.14).
//
// Except within the reuse grace (user.Config.RefreshReuseGrace) of the token's
// own first use: two requests of one client crossing a rotation (two tabs,
// concurrent API calls) present the same token, and the later one gets a
// sibling session of the same family instead of ending it. The token row is
// read with a lock, so a refresh racing another one of the same token waits
// for it and then sees the used_at it wrote, which is within the grace. The
// cost: a thief's replay within the grace of the owner's use (or the
// owner's within the grace of the thief's) is not detected.
func (s *Manager) Refresh(ctx context.Context, refresh string) (*user.Session, error) {
	if refresh == "" || len(refresh) > user.MaxTokenBytes {
		return nil, user.ErrInvalidToken
	}
	hash := token.HashOpaque(refresh)
	var (
		sess   *user.Session
		reused bool
		graced bool
		family string
	)
	err := s.store.Atomic(ctx, func(r user.Repo) error {
		// Afresh on each run: the store runs this again after a lock
		// conflict, and a verdict of the rolled-back run must not stick.
		sess, reused, graced, family = nil, false, false, ""
		rt, err := r.LockRefreshToken(ctx, hash)
		if errors.Is(err, user.ErrNotFound) {
			return user.ErrInvalidToken
		}
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if rt.RevokedAt != nil || !now.Before(rt.ExpiresAt) {
			return user.ErrInvalidToken
		}
		started, err := r.RefreshFamilyStart(ctx, rt.FamilyID)
		if err != nil {
			return err
		}
		if s.sessionOver(rt, started, now) {
			return user.ErrInvalidToken
		}
		marked := false
		if rt.UsedAt == nil {
			if marked, err = r.MarkRefreshTokenUsed(ctx, hash, now); err != nil {
				return err
			}
		} else {
			// A used_at ahead of now (another instance's clock) is a use
			// in this instant too.
			graced = s.cfg.RefreshReuseGrace > 0 && now.Sub(*rt.UsedAt) < s.cfg.RefreshReuseGrace
		}
		// !marked with UsedAt nil cannot happen under the row lock; it is
		// taken for reuse, not graced, since it might be a revocation.
		if !marked && !graced {
			reused, family = true, rt.FamilyID
			return s.endReusedFamily(ctx, r, rt.FamilyID, now)
		}
		u, err := r.UserByID(ctx, rt.UserID)
		if errors.Is(err, user.ErrNotFound) {
			return user.ErrInvalidToken
		}
		if err != nil {
			return err
		}
		if u.Status != user.StatusActive {
			return user.ErrAccountDisabled
		}
		if s.cfg.RequireVerifiedEmail && !u.EmailVerified {
			return user.ErrEmailNotVerified
		}
		sess, err = s.startSession(ctx, r, u, rt.FamilyID, started, strings.Fields(rt.AMR))
		return err
	})
	if err != nil {
		return nil, user.StoreErr("refresh", err)
	}
	if reused {
		s.log.WarnContext(ctx, "refresh token reuse: family revoked")
		s.endSession(ctx, family)
		return nil, user.ErrInvalidToken
	}
	if graced {
		s.log.DebugContext(ctx, "refresh token reused within the grace: sibling session issued")
	}
	return sess, nil
}

// sessionOver reports whether the session of rt (begun at started) has
// ended by the server's clock: not refreshed for the idle timeout (rt was
// issued at its last refresh) or past its absolute lifetime. Checked apart
// from rt's own expiry, so tokens issued under longer settings end too.
func (s *Manager) sessionOver(rt *user.RefreshToken, started, now time.Time) bool {
	return now.Sub(rt.CreatedAt) >= s.cfg.SessionIdleTimeout || now.Sub(started) >= s.cfg.SessionMaxLifetime
}

// Revoke ends the session family of a refresh token (logout) and, when an
// access token is given and a denylist is configured, that access token too.
// An unknown refresh token is not an error: the outcome the caller wants
// already holds. An invalid access token is ignored for the same reason.
func (s *Manager) Revoke(ctx context.Context, refresh, access string) error {
	if refresh == "" || len(refresh) > user.MaxTokenBytes {
		return user.Invalid(map[string]string{"refresh_token": "is required"})
	}
	var jti string
	if access != "" && len(access) <= user.MaxTokenBytes {
		if claims, err := s.tokens.Parse(access); err == nil {
			// Sign-out ends a user's session; a service account has none,
			// and a 204 that ended nothing would leave its caller
			// believing the token dead.
			if claims.ClientID != "" {
				return user.ErrServiceAccountSignOut
			}
			if s.deny != nil {
				if err := s.deny.Revoke(ctx, claims.ID, claims.ExpiresAt.Add(denyMargin)); err != nil {
					return user.Internal("revoke access token", err)
				}
			}
			jti = claims.ID
		}
	}
	rt, err := s.store.RefreshTokenByHash(ctx, token.HashOpaque(refresh))
	if errors.Is(err, user.ErrNotFound) {
		if jti == "" {
			return nil
		}
		// No session to end, but the access token presented is revoked.
		err := s.store.Atomic(ctx, func(r user.Repo) error {
			return s.revokeSession(ctx, r, auth.ReasonLogout, jti, "", s.clock.Now())
		})
		if err != nil {
			return user.StoreErr("publish revocation", err)
		}
		return nil
	}
	if err != nil {
		return user.StoreErr("find refresh token", err)
	}
	err = s.store.Atomic(ctx, func(r user.Repo) error {
		now := s.clock.Now()
		if err := r.RevokeRefreshFamily(ctx, rt.FamilyID, now); err != nil {
			return err
		}
		if jti == "" {
			return nil
		}
		// As the denylist has it: the access token presented, not the
		// session's others, which live out their short TTL.
		return s.revokeSession(ctx, r, auth.ReasonLogout, jti, "", now)
	})
	if err != nil {
		return user.StoreErr("revoke refresh tokens", err)
	}
	return nil
}

// endReusedFamily revokes a family whose refresh token was reused and tells
// other services to refuse its access tokens (as endSession denies them
// here once the transaction has committed).
func (s *Manager) endReusedFamily(ctx context.Context, r user.Repo, family string, now time.Time) error {
	if err := r.RevokeRefreshFamily(ctx, family, now); err != nil {
		return err
	}
	return s.revokeSession(ctx, r, auth.ReasonSessionEnded, "", family, now)
}

// revokeSession tells other services, inside the transaction that ends
// it, to refuse the access token jti and every one of the session family
// (either may be empty).
func (s *Manager) revokeSession(ctx context.Context, r user.Repo, reason, jti, family string, now time.Time) error {
	rev, err := user.NewRevocation(reason, now, s.tokens.TTL())
	if err != nil {
		return err
	}
	rev.TokenID, rev.SessionID = jti, family
	return r.AppendRevocation(ctx, rev)
}

// denyMargin is added to how long a revocation is kept, past the last
// moment a token it denies could expire: verifiers accept a token for their
// clock leeway after its exp, and their clocks may differ from ours.
const denyMargin = time.Minute

// sessionKey is the denylist entry of a session (a refresh family); a jti
// (a UUID) cannot take this form.
func sessionKey(family string) string { return "sid:" + family }

// endSession denies every access token of the session (they carry its id)
// until the newest of them has expired. It follows a revocation of the
// family that is already committed, so a failure here cannot undo that; it
// is logged, and the access tokens then live out their short TTL.
func (s *Manager) endSession(ctx context.Context, family string) {
	if s.deny == nil {
		return
	}
	if err := s.deny.Revoke(ctx, sessionKey(family), s.clock.Now().Add(s.tokens.TTL()+denyMargin)); err != nil {
		s.log.ErrorContext(ctx, "could not deny the access tokens of a revoked session", "error", err)
	}
}

// Validate checks an access token: signature, algorithm, issuer, audience
// and expiry (by the token manager), then, for a user's token, that its user
// still exists, is active, has not reset their password since it was issued,
// and has not logged it out; for a service account's, that the account is
// not revoked.
func (s *Manager) Validate(ctx context.Context, access string) (*user.Validated, error) {
	return s.validate(ctx, access)
}

func (s *Manager) validate(ctx context.Context, access string) (*user.Validated, error) {
	if access == "" || len(access) > user.MaxTokenBytes {
		return nil, user.ErrInvalidToken
	}
	claims, err := s.tokens.Parse(access)
	if err != nil {
		if errors.Is(err, token.ErrInvalidToken) {
			return nil, user.ErrInvalidToken
		}
		return nil, user.Internal("parse token", err)
	}
	if claims.ClientID != "" {
		a, err := s.accounts.Active(ctx, claims.ClientID)
		if errors.Is(err, user.ErrBadClient) {
			return nil, user.ErrInvalidToken
		}
		if err != nil {
			return nil, err
		}
		return &user.Validated{Account: a, Scopes: a.Granted(claims.Scope), Claims: claims}, nil
	}
	u, err := s.store.UserByID(ctx, claims.Subject)
	if errors.Is(err, user.ErrNotFound) {
		return nil, user.ErrInvalidToken
	}
	if err != nil {
		return nil, user.StoreErr("get user", err)
	}
	if u.Status != user.StatusActive || claims.SessionVersion != u.SessionVersion {
		return nil, user.ErrInvalidToken
	}
	if s.deny != nil {
		keys := []string{claims.ID}
		if claims.SessionID != "" {
			keys = append(keys, sessionKey(claims.SessionID))
		}
		revoked, err := s.deny.AnyRevoked(ctx, keys...)
		if err != nil {
			return nil, user.Internal("check revocation", err)
		}
		if revoked {
			return nil, user.ErrInvalidToken
		}
	}
	return &user.Validated{User: u, Claims: claims}, nil
}

// Authenticate establishes who is calling from an access token: a user's
// (checked as Validate checks it) or a service account's (signature, expiry,
// and the account not revoked; its scopes are those the token grants, never
// more than the account still has). "" is the anonymous caller. For a user
// the loaded user is returned too, so an operation on the caller's own user
// need not read it again.
func (s *Manager) Authenticate(ctx context.Context, access string) (user.Actor, *user.User, error) {
	if access == "" {
		return user.Actor{}, nil, nil
	}
	v, err := s.validate(ctx, access)
	if err != nil {
		return user.Actor{}, nil, err
	}
	if v.Account != nil {
		return user.Actor{ID: v.Account.ID, ServiceAccount: true, Scopes: v.Scopes}, nil, nil
	}
	signIn := v.Claims.SignIn
	role := v.User.Role
	if role == user.RoleAdmin && s.cfg.RequireAdminMFA && !slices.Contains(signIn.AMR, token.AMRMFA) {
		// USERSVC_REQUIRE_ADMIN_MFA: no admin powers without the factor;
		// on their own account (enrolling one) an admin is any user.
		role = user.RoleUser
	}
	return user.Actor{ID: v.User.ID, Role: role, SignIn: &signIn}, v.User, nil
}
