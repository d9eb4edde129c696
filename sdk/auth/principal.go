package auth

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Kind says who a token speaks for.
type Kind int

const (
	// KindUser is a person signed in with a password.
	KindUser Kind = iota + 1
	// KindServiceAccount is a service signed in with client credentials.
	KindServiceAccount
)

func (k Kind) String() string {
	switch k {
	case KindUser:
		return "user"
	case KindServiceAccount:
		return "service_account"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// The roles a user's token can carry.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Principal is who a verified token speaks for. Treat it as read-only.
type Principal struct {
	Kind Kind
	// ID is the user's ID, or the service account's client ID.
	ID string
	// Role of a user ("user" or "admin") when the token was issued; a role
	// change revokes the user's older tokens. Empty for a service account.
	Role string
	// EmailVerified: the user had proved their address when the token was
	// issued. Always false for a service account.
	EmailVerified bool
	// SessionID names the user's sign-in (its refresh family); "" for a
	// service account.
	SessionID string
	// Scopes granted to a service account; nil for a user.
	Scopes []string
	// AMR is how the user's sign-in was authenticated (RFC 8176 values:
	// "pwd", and with a second factor also "otp" or "rcode", and "mfa"),
	// AuthTime when; a refresh keeps both. Empty for a service account and
	// for tokens issued before the service wrote them.
	AMR      []string
	AuthTime time.Time
	// TokenID is the token's "jti"; SessionVersion its "sv".
	TokenID        string
	SessionVersion int64
	IssuedAt       time.Time
	ExpiresAt      time.Time
}

// IsUser reports whether p is a user (not a service account).
func (p *Principal) IsUser() bool { return p.Kind == KindUser }

// HasScope reports whether p is a service account granted scope.
func (p *Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

type principalKey struct{}

// WithPrincipal returns a context carrying p; the middlewares call it.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the middleware put in ctx.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// A Requirement is a demand on a principal: nil if it is met, else an error
// wrapping ErrForbidden.
type Requirement func(*Principal) error

// RequireRole demands a user with one of roles.
func RequireRole(roles ...string) Requirement {
	return func(p *Principal) error {
		if p.IsUser() && slices.Contains(roles, p.Role) {
			return nil
		}
		return fmt.Errorf("%w: needs role %v", ErrForbidden, roles)
	}
}

// RequireScope demands a service account granted scope.
func RequireScope(scope string) Requirement {
	return func(p *Principal) error {
		if p.HasScope(scope) {
			return nil
		}
		return fmt.Errorf("%w: needs scope %q", ErrForbidden, scope)
	}
}

// RequireVerifiedEmail demands a user whose email is verified.
func RequireVerifiedEmail() Requirement {
	return func(p *Principal) error {
		if p.IsUser() && p.EmailVerified {
			return nil
		}
		return fmt.Errorf("%w: needs a verified email", ErrForbidden)
	}
}

// RequireUser demands a user (any role), not a service account.
func RequireUser() Requirement {
	return func(p *Principal) error {
		if p.IsUser() {
			return nil
		}
		return fmt.Errorf("%w: needs a user", ErrForbidden)
	}
}

// AnyOf is met when one of reqs is: e.g. an admin, or a service account
// with the "orders:read" scope.
func AnyOf(reqs ...Requirement) Requirement {
	return func(p *Principal) error {
		var first error
		for _, r := range reqs {
			err := r(p)
			if err == nil {
				return nil
			}
			if first == nil {
				first = err
			}
		}
		if first == nil {
			first = fmt.Errorf("%w: no requirement met", ErrForbidden)
		}
		return first
	}
}

// Check applies every requirement to the principal in ctx: ErrNoToken
// without one, an error wrapping ErrForbidden for the first unmet demand.
// Handlers call it for demands the route-level middleware did not make.
func Check(ctx context.Context, reqs ...Requirement) (*Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, ErrNoToken
	}
	for _, r := range reqs {
		if err := r(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// SignedInWithin reports whether p is a user whose sign-in used a second
// factor when mfa is true, and happened no longer than maxAge before now
// (maxAge 0: any age): a service's step-up check before a sensitive action.
func (p *Principal) SignedInWithin(now time.Time, maxAge time.Duration, mfa bool) bool {
	if !p.IsUser() || p.AuthTime.IsZero() {
		return false
	}
	if maxAge > 0 && now.Sub(p.AuthTime) > maxAge {
		return false
	}
	return !mfa || slices.Contains(p.AMR, "mfa")
}
