package auth

import (
	"errors"
	"net/http"
	"strings"
)

// BearerToken returns the token of an "Authorization: Bearer <token>"
// value ("" if it is not one). The scheme is case-insensitive (RFC 7235).
func BearerToken(authorization string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

// Status is the HTTP status for an error of this package: 401 for a
// missing or refused token, 403 for an unmet requirement, 503 when the
// token cannot be judged now, 500 otherwise.
func Status(err error) int {
	switch {
	case errors.Is(err, ErrNoToken), errors.Is(err, ErrInvalidToken):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Code is a short machine-readable name for an error of this package, for
// response bodies: "unauthenticated", "token_expired", "token_revoked",
// "forbidden", "unavailable" or "internal". It never carries the detail.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrExpired):
		return "token_expired"
	case errors.Is(err, ErrRevoked):
		return "token_revoked"
	case errors.Is(err, ErrNoToken), errors.Is(err, ErrInvalidToken):
		return "unauthenticated"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	}
	return "internal"
}

// Middleware returns net/http middleware that verifies the request's
// bearer token, enforces reqs, and puts the principal in the request's
// context (FromContext). A refusal is answered with Status(err) and a JSON
// body {"error": Code(err)}; a 401 carries WWW-Authenticate.
func Middleware(v *Verifier, reqs ...Requirement) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := v.Authorize(r.Context(), r.Header.Get("Authorization"), reqs...)
			if err != nil {
				WriteError(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
		})
	}
}

// WriteError answers a refused request as Middleware does.
func WriteError(w http.ResponseWriter, err error) {
	status := Status(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":"` + Code(err) + `"}`))
}
