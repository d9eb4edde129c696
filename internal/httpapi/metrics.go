package httpapi

import (
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/user"
)

// countLogin records a password sign-in's outcome in usersvc_logins_total:
// a fixed word, never the account.
func countLogin(err error) {
	telemetry.Logins.WithLabelValues(loginOutcome(err)).Inc()
}

func loginOutcome(err error) string {
	if err == nil {
		return telemetry.LoginSuccess
	}
	switch user.AsError(err).Code {
	case user.CodeUnauthenticated:
		return telemetry.LoginBadCredentials
	case user.CodePermissionDenied:
		return telemetry.LoginDisabled
	case user.CodeResourceExhausted:
		return telemetry.LoginLimited
	case user.CodeInvalidArgument:
		return telemetry.LoginInvalid
	default:
		return telemetry.LoginError
	}
}

// countLimited records a sign-in the API refused with 429 (its per-IP
// limit) as a limited login; the limiters count their own rejections.
func countLimited(method, path string) {
	if method == "POST" && path == "/user/token" {
		telemetry.Logins.WithLabelValues(telemetry.LoginLimited).Inc()
	}
}
