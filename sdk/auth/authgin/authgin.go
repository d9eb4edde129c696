// Package authgin is the gin middleware of package auth: it verifies the
// request's bearer token, enforces requirements, and puts the principal in
// the request's context. It is its own package so that importing auth does
// not pull in gin.
package authgin

import (
	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/sdk/auth"
)

// Middleware verifies the bearer token and applies reqs. A refusal aborts
// with auth.Status(err) and {"error": auth.Code(err)}; otherwise the
// principal is in c.Request.Context() (auth.FromContext) and Principal(c).
func Middleware(v *auth.Verifier, reqs ...auth.Requirement) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := v.Authorize(c.Request.Context(), c.GetHeader("Authorization"), reqs...)
		if err != nil {
			abort(c, err)
			return
		}
		c.Request = c.Request.WithContext(auth.WithPrincipal(c.Request.Context(), p))
		c.Next()
	}
}

// Require applies further demands on a route behind Middleware, e.g.
// r.POST("/orders", authgin.Require(auth.RequireVerifiedEmail()), create).
func Require(reqs ...auth.Requirement) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := auth.Check(c.Request.Context(), reqs...); err != nil {
			abort(c, err)
			return
		}
		c.Next()
	}
}

// Principal returns the principal Middleware established.
func Principal(c *gin.Context) (*auth.Principal, bool) { return auth.FromContext(c.Request.Context()) }

func abort(c *gin.Context, err error) {
	if auth.Status(err) == 401 {
		c.Header("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	c.AbortWithStatusJSON(auth.Status(err), gin.H{"error": auth.Code(err)})
}
