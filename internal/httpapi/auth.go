package httpapi

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
)

const ctxKeyActor = "httpapi.actor"

// authenticate resolves the bearer token to the acting user with the
// Validate RPC. The actor is the user Validate returns, not the token's
// claims, so a role change or a disabled account takes effect at once.
//
// With required, a request without a token is refused with 401. Without it
// (registration), no token means an anonymous caller, but a token that is
// sent must be valid: a client that meant to act as an admin must not be
// silently downgraded.
func (s *server) authenticate(required bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		header := c.GetHeader("Authorization")
		if header == "" {
			if required {
				writeError(c, http.StatusUnauthorized, codeUnauthenticated, "a bearer token is required", nil)
				return
			}
			c.Next()
			return
		}
		tok, ok := bearerToken(header)
		if !ok {
			writeError(c, http.StatusUnauthorized, codeUnauthenticated,
				`the Authorization header must be "Bearer <access token>"`, nil)
			return
		}
		ctx, cancel := s.rpcContext(c)
		defer cancel()
		resp, err := s.users.Validate(ctx, &userv1.ValidateRequest{AccessToken: tok})
		if err != nil {
			s.fail(c, "validate", err)
			return
		}
		u := resp.GetUser()
		if u.GetId() == "" {
			s.log.ErrorContext(c.Request.Context(), "validate returned no user", "request_id", requestIDOf(c))
			writeError(c, http.StatusInternalServerError, codeInternal, "internal error", nil)
			return
		}
		c.Set(ctxKeyActor, &userv1.Actor{Id: u.GetId(), Role: u.GetRole()})
		c.Next()
	}
}

// bearerToken extracts the token of an RFC 6750 "Bearer" credential; the
// scheme name is case-insensitive. The token must be visible ASCII (RFC 6750
// token68 is a subset), which also keeps bytes the RPC cannot carry from
// reaching it.
func bearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", false
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] <= ' ' || tok[i] > '~' {
			return "", false
		}
	}
	return tok, true
}

// actorOf returns the authenticated caller, or an anonymous actor (no ID, no
// role) when there is none. It never returns nil: in the RPC contract an
// unset actor means a trusted internal caller with admin rights, which no
// HTTP client may ever be.
func actorOf(c *gin.Context) *userv1.Actor {
	if a, ok := c.Get(ctxKeyActor); ok {
		if actor, ok := a.(*userv1.Actor); ok {
			return actor
		}
	}
	return &userv1.Actor{}
}
