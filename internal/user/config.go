package user

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/usersvc/usersvc/internal/password"
)

// Config holds the service's tunable rules. One Config serves every flow;
// each reads the settings that concern it.
type Config struct {
	DefaultPageSize int           // default 20
	MaxPageSize     int           // default 100
	RefreshTTL      time.Duration // default 30 days
	ResetTTL        time.Duration // default 30 minutes
	VerifyTTL       time.Duration // email verification token lifetime; default 24 hours
	// RefreshReuseGrace is how long after its first use a refresh token
	// may be presented again without being taken for a leak: the reuse
	// yields another session of the same family (concurrent requests of
	// one client crossing a rotation). 0 (the zero value) is strict: any
	// reuse revokes the family.
	RefreshReuseGrace time.Duration
	// SessionIdleTimeout ends a session (a refresh-token family) not
	// refreshed for this long; default 15 days. SessionMaxLifetime ends
	// any session this long after its sign-in, however active; default 30
	// days. Both are checked on every refresh, for pages and API alike.
	SessionIdleTimeout time.Duration
	SessionMaxLifetime time.Duration
	// RequireVerifiedEmail refuses sign-in (and refresh) of an account
	// whose address is not verified, with ErrEmailNotVerified.
	RequireVerifiedEmail bool
	// AccessTTL is the access-token lifetime: how long a revocation
	// published to other services must be kept (flows.New takes it from
	// the token manager); default 15 minutes.
	AccessTTL time.Duration
	// SignupEnumerationSafe makes an anonymous registration answer the
	// same for a new and a taken address (Create returns nil, nil) and
	// mails the owner of a taken one instead.
	SignupEnumerationSafe bool
	// MFATicketTTL is how long a password sign-in waits for its second
	// factor; default 5 minutes.
	MFATicketTTL time.Duration
	// MFAIssuer is the service's name in authenticator apps; default
	// "usersvc".
	MFAIssuer string
	// ReauthWindow is how old a sign-in may be for a change of email or
	// password or a deletion by a user's token (step-up); 0 = any age (the
	// second factor is still asked for where enrolled).
	ReauthWindow time.Duration
	// RequireAdminMFA: an admin's token from a sign-in without a second
	// factor carries no admin powers (the admin acts as a plain user on
	// their own account, so they can enrol one).
	RequireAdminMFA bool
	// PublicURL is the service's public base URL (USERSVC_PUBLIC_URL): its
	// host is the WebAuthn relying-party id and its origin the one origin
	// a passkey ceremony is accepted from. "" = passkeys are unavailable.
	PublicURL string
}

// WithDefaults returns c with every unset setting at its default, or an
// error for settings that contradict each other.
func (c Config) WithDefaults() (Config, error) {
	if c.DefaultPageSize <= 0 {
		c.DefaultPageSize = 20
	}
	if c.MaxPageSize <= 0 {
		c.MaxPageSize = 100
	}
	if c.MFATicketTTL <= 0 {
		c.MFATicketTTL = 5 * time.Minute
	}
	if c.MFAIssuer == "" {
		c.MFAIssuer = "usersvc"
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.SessionIdleTimeout <= 0 {
		c.SessionIdleTimeout = 15 * 24 * time.Hour
	}
	if c.SessionMaxLifetime <= 0 {
		c.SessionMaxLifetime = 30 * 24 * time.Hour
	}
	if c.ResetTTL <= 0 {
		c.ResetTTL = 30 * time.Minute
	}
	if c.VerifyTTL <= 0 {
		c.VerifyTTL = 24 * time.Hour
	}
	if c.AccessTTL <= 0 {
		c.AccessTTL = 15 * time.Minute
	}
	if c.DefaultPageSize > c.MaxPageSize {
		return c, fmt.Errorf("user: default page size %d exceeds max page size %d", c.DefaultPageSize, c.MaxPageSize)
	}
	return c, nil
}

// Clock tells the time; every flow reads it through one, so tests can set
// it. The nil Clock is the system clock. Times are UTC.
type Clock func() time.Time

// Now is the current time in UTC.
func (c Clock) Now() time.Time {
	if c == nil {
		return time.Now().UTC()
	}
	return c().UTC()
}

// LoggerOr returns l, or slog.Default() when l is nil.
func LoggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// CheckPassword applies the byte bound and the policy to a new password;
// it returns a field problem or "".
func CheckPassword(policy PasswordPolicy, pw, email string) string {
	if pw == "" {
		return "is required"
	}
	if len(pw) > MaxPasswordBytes {
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)
	}
	if err := policy.Check(pw, email); err != nil {
		var pe *password.PolicyError
		if errors.As(err, &pe) {
			return pe.Reason
		}
		return err.Error()
	}
	return ""
}

// AllowAttempt spends one attempt of a per-account budget (l: the password
// budget that sign-ins and current-password checks share, or the reset-mail
// budget) under key, and refuses when it is spent. A limiter that cannot
// decide (its store down with no fallback) lets the attempt through, with
// a warning on log: refusing every sign-in would be worse. A nil l is
// unlimited.
func AllowAttempt(ctx context.Context, log *slog.Logger, l Limiter, key string) error {
	if l == nil {
		return nil
	}
	ok, retry, err := l.Allow(ctx, key)
	if err != nil {
		log.WarnContext(ctx, "attempt limiter failed; attempt let through", "error", err)
		return nil
	}
	if !ok {
		return TooManyAttempts(retry)
	}
	return nil
}

// StoreErr passes domain errors from the store through and wraps the rest
// as internal.
func StoreErr(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return Internal(op, err)
}
