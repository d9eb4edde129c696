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
		return "success"
	}
	switch user.AsError(err).Code {
	case user.CodeUnauthenticated:
		return "bad_credentials"
	case user.CodePermissionDenied:
		return "disabled"
	case user.CodeResourceExhausted:
		return "limited"
	case user.CodeInvalidArgument:
		return "invalid"
	default:
		return "error"
	}
}

// countRejection records a 429 in usersvc_ratelimit_rejections_total under
// the limit's name (route and key kind, e.g. "/user/token:email"), and a
// refused sign-in as a limited login.
func countRejection(method, path, kind string) {
	telemetry.RateLimitRejections.WithLabelValues(path + ":" + kind).Inc()
	if method == "POST" && path == "/user/token" {
		telemetry.Logins.WithLabelValues("limited").Inc()
	}
}
