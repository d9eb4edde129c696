package user

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Code is the machine-readable class of a domain error. Transports map it to
// their own status codes (gRPC/go-micro, HTTP); the strings are part of the
// public contract and never change.
type Code string

const (
	CodeInvalidArgument   Code = "invalid_argument"
	CodeNotFound          Code = "not_found"
	CodeAlreadyExists     Code = "already_exists"
	CodeUnauthenticated   Code = "unauthenticated"
	CodePermissionDenied  Code = "permission_denied"
	CodeResourceExhausted Code = "resource_exhausted"
	CodeInternal          Code = "internal"
	// CodeUnavailable: no instance of the service could answer (none
	// registered, unreachable, or out of time: the transport's), or the
	// service is overloaded (ErrOverloaded). A client may retry.
	CodeUnavailable Code = "unavailable"
	// CodeFailedPrecondition: the request is well-formed and allowed, but
	// the system's state forbids it (removing the last active admin).
	CodeFailedPrecondition Code = "failed_precondition"
	// CodeEmailNotVerified: the credentials are right, but the platform
	// requires a verified address and this account's is not (yet).
	CodeEmailNotVerified Code = "email_not_verified"
	// CodeReauthenticationRequired: the caller's token is valid, but its
	// sign-in is too old (or lacks the account's second factor) for this
	// change; sign in again and retry.
	CodeReauthenticationRequired Code = "reauthentication_required"
)

// Codes lists every code, for transports that must map each one.
var Codes = []Code{CodeInvalidArgument, CodeNotFound, CodeAlreadyExists, CodeUnauthenticated,
	CodePermissionDenied, CodeResourceExhausted, CodeInternal, CodeUnavailable, CodeFailedPrecondition,
	CodeEmailNotVerified, CodeReauthenticationRequired}

// statusOf is the one table from domain codes to HTTP statuses. The HTTP
// API answers with these, and the RPC layer carries them as go-micro error
// codes (which go-micro maps to gRPC codes), so both edges agree.
var statusOf = map[Code]int{
	CodeInvalidArgument:   http.StatusBadRequest,
	CodeNotFound:          http.StatusNotFound,
	CodeAlreadyExists:     http.StatusConflict,
	CodeUnauthenticated:   http.StatusUnauthorized,
	CodePermissionDenied:  http.StatusForbidden,
	CodeResourceExhausted: http.StatusTooManyRequests,
	CodeInternal:          http.StatusInternalServerError,
	CodeUnavailable:       http.StatusServiceUnavailable,
	// 409: the request conflicts with the current state (the last admin).
	CodeFailedPrecondition: http.StatusConflict,
	// 403: authenticated, but not allowed in until the address is proved;
	// a code of its own so a client can offer to resend the mail.
	CodeEmailNotVerified: http.StatusForbidden,
	// 401, as RFC 9470's step-up answers: the credential is not enough
	// for this request, a new sign-in is.
	CodeReauthenticationRequired: http.StatusUnauthorized,
}

// HTTPStatus returns the HTTP status of code and whether code is one of
// ours (an unknown code, from a newer peer, should be treated as 500).
func HTTPStatus(code Code) (int, bool) {
	s, ok := statusOf[code]
	if !ok {
		return http.StatusInternalServerError, false
	}
	return s, true
}

// Error is the one error type that crosses the domain boundary. Its Message is
// safe to show to a client; the wrapped cause is for logs only.
type Error struct {
	Code    Code
	Message string
	// Fields maps an offending input field to what is wrong with it
	// (invalid_argument only).
	Fields map[string]string
	// RetryAfter says when to try again (resource_exhausted only).
	RetryAfter time.Duration
	cause      error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	b.WriteString(": ")
	b.WriteString(e.Message)
	for _, k := range slices.Sorted(maps.Keys(e.Fields)) {
		fmt.Fprintf(&b, "; %s %s", k, e.Fields[k])
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.cause }

// Is makes errors.Is(err, ErrNotFound) match any not-found error with the same
// message, so sentinel comparison survives wrapping and copying.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && t.Message == e.Message
}

// CodeOf returns the code of the first *Error in err's chain, CodeInternal
// for anything else (a bug or an infrastructure failure).
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError returns err as a domain *Error, turning anything unknown into an
// internal error whose message reveals nothing.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", cause: err}
}

// Sentinel errors the store and the service return. Compare with errors.Is.
var (
	ErrNotFound        = &Error{Code: CodeNotFound, Message: "user not found"}
	ErrEmailTaken      = &Error{Code: CodeAlreadyExists, Message: "a user with this email already exists"}
	ErrBadCredentials  = &Error{Code: CodeUnauthenticated, Message: "invalid email or password"}
	ErrInvalidToken    = &Error{Code: CodeUnauthenticated, Message: "invalid or expired token"}
	ErrAccountDisabled = &Error{Code: CodePermissionDenied, Message: "account is disabled"}
	ErrForbidden       = &Error{Code: CodePermissionDenied, Message: "not allowed"}
	// ErrTooManyAttempts refuses a password attempt (sign-in or a current
	// password) past the account's budget; see TooManyAttempts.
	ErrTooManyAttempts = &Error{Code: CodeResourceExhausted, Message: "too many password attempts for this account; retry later"}
	// ErrLastAdmin refuses a deletion, disable or demotion that would leave
	// no active admin, whoever asks: nobody could administer any more.
	ErrLastAdmin = &Error{Code: CodeFailedPrecondition,
		Message: "the last active admin cannot be deleted, disabled or demoted"}
	// ErrNoCredential answers an operation that needs a caller's token
	// when the call carried none.
	ErrNoCredential = &Error{Code: CodeUnauthenticated, Message: "a bearer token is required"}
	// ErrBadClient is one message for an unknown, revoked or wrongly
	// authenticated service account.
	ErrBadClient = &Error{Code: CodeUnauthenticated, Message: "invalid client id or secret"}
	// ErrOverloaded answers a request that needs a password hash while too
	// many are in progress (the hasher's limit bounds their memory).
	ErrOverloaded = &Error{Code: CodeUnavailable, Message: "too many sign-ins in progress; retry shortly"}
	// ErrDatabaseUnavailable is what a store wraps when it cannot reach its
	// database: the instance cannot serve the request, so the client gets
	// 503 and retries (elsewhere or later), never a 500.
	ErrDatabaseUnavailable = &Error{Code: CodeUnavailable, Message: "the database is unavailable; retry later"}
	// ErrResetTokenInvalid is deliberately one message for unknown, used and
	// expired reset tokens.
	ErrResetTokenInvalid = &Error{Code: CodeInvalidArgument, Message: "invalid or expired reset token",
		Fields: map[string]string{"token": "is invalid or expired"}}
	// ErrVerifyTokenInvalid is one message for unknown, used, expired and
	// superseded verification tokens.
	ErrVerifyTokenInvalid = &Error{Code: CodeInvalidArgument, Message: "invalid or expired verification token",
		Fields: map[string]string{"token": "is invalid or expired"}}
	// ErrEmailNotVerified refuses a sign-in with the right password while
	// verified addresses are required (Config.RequireVerifiedEmail).
	ErrEmailNotVerified = &Error{Code: CodeEmailNotVerified,
		Message: "the email address is not verified; open the link in the verification mail or ask for a new one"}
)

// ErrReauthenticationRequired refuses a sensitive change (email, password,
// deletion) with a token whose sign-in is older than Config.ReauthWindow,
// or was made without the account's second factor.
var ErrReauthenticationRequired = &Error{Code: CodeReauthenticationRequired,
	Message: "this change needs a recent sign-in (with your second factor, if you have one): sign in again and retry"}

// Second-factor errors. ErrBadFactorCode is one message for a wrong code,
// a used one and a kind the account has not enrolled.
var (
	ErrBadFactorCode = &Error{Code: CodeUnauthenticated, Message: "the code is wrong or was used already"}
	// ErrMFATicketInvalid is an unknown, used or expired MFA ticket: sign
	// in with the password again.
	ErrMFATicketInvalid = &Error{Code: CodeUnauthenticated, Message: "invalid or expired mfa ticket; sign in again"}
	// ErrMFAUnavailable refuses a TOTP enrolment on a service without
	// keys to seal the secret with (USERSVC_MFA_KEYS).
	ErrMFAUnavailable = &Error{Code: CodeFailedPrecondition, Message: "TOTP is not configured on this service"}
)

// ErrServiceAccountSignOut refuses a sign-out with a service account's
// access token as the bearer: its token expires on its own, and ending it
// early is revoking the account (usersvc admin service-account revoke).
var ErrServiceAccountSignOut = Invalid(map[string]string{
	"authorization": "a service account's token cannot be signed out; it expires on its own, or revoke the account"})

// TooManyAttempts is ErrTooManyAttempts with when to retry.
func TooManyAttempts(retryAfter time.Duration) *Error {
	e := *ErrTooManyAttempts
	e.RetryAfter = retryAfter
	return &e
}

// Invalid builds an invalid_argument error naming each offending field.
func Invalid(fields map[string]string) *Error {
	return &Error{Code: CodeInvalidArgument, Message: "invalid request", Fields: fields}
}

// Forbidden builds a permission_denied error saying what was refused.
func Forbidden(msg string) *Error {
	return &Error{Code: CodePermissionDenied, Message: msg}
}

// Unavailable wraps a transport's failure to reach any instance of the
// service; the client may retry.
func Unavailable(err error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the user service is unavailable; retry later", cause: err}
}

// Internal wraps an unexpected failure; the client sees only "internal error".
// An unreachable database is no fault of the request either: it stays
// ErrDatabaseUnavailable (a 503 to retry), with op in its cause.
func Internal(op string, err error) *Error {
	if errors.Is(err, ErrOverloaded) { // shed load is no fault: keep it retryable
		return ErrOverloaded
	}
	if errors.Is(err, ErrDatabaseUnavailable) {
		return &Error{Code: CodeUnavailable, Message: ErrDatabaseUnavailable.Message, cause: fmt.Errorf("%s: %w", op, err)}
	}
	return &Error{Code: CodeInternal, Message: "internal error", cause: fmt.Errorf("%s: %w", op, err)}
}
