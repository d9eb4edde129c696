package httpapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/reqmeta"
)

const ctxKeyBearer = "httpapi.bearer"

// authenticate checks the shape of the Authorization header and keeps the
// token for the one RPC the handler makes: the service verifies it, so the
// API makes no call of its own for it.
//
// With required, a request without a token is refused with 401 before any
// call. Without it (registration), no token means an anonymous caller, but
// a token that is sent must be well-formed: a client that meant to act as
// an admin must not be silently downgraded (the service refuses an invalid
// one the same way).
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
		tok, ok := reqmeta.BearerToken(header)
		if !ok {
			writeError(c, http.StatusUnauthorized, codeUnauthenticated,
				`the Authorization header must be "Bearer <access token>"`, nil)
			return
		}
		c.Set(ctxKeyBearer, tok)
		c.Next()
	}
}

// bearerOf returns the token authenticate accepted, "" for none.
func bearerOf(c *gin.Context) string { return c.GetString(ctxKeyBearer) }
