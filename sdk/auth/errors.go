package auth

import (
	"errors"
	"fmt"
)

// The errors a Verifier returns, wrapped with detail meant for logs (never
// show the detail to the caller: it can help an attacker). Test them with
// errors.Is.
var (
	// ErrNoToken: the request carried no bearer token.
	ErrNoToken = errors.New("auth: no access token")
	// ErrInvalidToken is wrapped by every refusal of a token as such
	// (HTTP 401): malformed, forged, for another issuer or audience, not
	// yet valid, expired, or revoked.
	ErrInvalidToken = errors.New("auth: invalid access token")
	// ErrExpired: the token is genuine but past its expiry; the client
	// should refresh it. Wraps ErrInvalidToken.
	ErrExpired = fmt.Errorf("%w: expired", ErrInvalidToken)
	// ErrUnknownKey: the token names a key the JWKS does not hold, even
	// after fetching it again (or the refetch floor forbade asking).
	// Wraps ErrInvalidToken.
	ErrUnknownKey = fmt.Errorf("%w: unknown signing key", ErrInvalidToken)
	// ErrRevoked: the user service revoked the token (logout, disabled
	// user, ...). Wraps ErrInvalidToken.
	ErrRevoked = fmt.Errorf("%w: revoked", ErrInvalidToken)
	// ErrUnavailable: the token cannot be judged now, because the keys
	// could not be fetched or (failing closed) revocations are not being
	// received. HTTP 503: the token may be fine.
	ErrUnavailable = errors.New("auth: cannot verify now")
	// ErrForbidden: the principal is authenticated but lacks the role,
	// scope or verified email an operation demands (HTTP 403).
	ErrForbidden = errors.New("auth: forbidden")
)

// invalid wraps ErrInvalidToken with a detail.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}
