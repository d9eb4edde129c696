package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// routes registers every endpoint. Which routes need a bearer token is
// decided here, in one place, rather than inside each handler.
func (s *server) routes(e *gin.Engine) {
	authed := s.authenticate(true)
	optional := s.authenticate(false)

	e.POST("/user", optional, s.createUser)
	e.GET("/user", authed, s.listUsers)
	e.GET("/user/:id", authed, s.getUser)
	e.PUT("/user/:id", authed, s.updateUser)
	e.DELETE("/user/:id", authed, s.deleteUser)
	e.GET("/user/:id/sessions", authed, s.listSessions)
	e.DELETE("/user/:id/sessions", authed, s.endSessions)
	e.GET("/user/:id/factors", authed, s.listFactors)
	e.POST("/user/:id/factors/totp", authed, s.enrolTOTP)
	e.POST("/user/:id/factors/webauthn", authed, s.beginPasskey)
	e.POST("/user/:id/factors/:factor_id/confirmation", authed, s.confirmFactor)
	e.DELETE("/user/:id/factors", authed, s.removeFactors)
	e.DELETE("/user/:id/factors/:factor_id", authed, s.removeFactor)
	e.POST("/user/:id/recovery-codes", authed, s.regenerateRecoveryCodes)

	e.POST("/user/token", s.issueToken)
	e.POST("/user/token/webauthn", s.beginPasswordless)
	e.DELETE("/user/token", s.revokeToken)
	e.POST("/user/password", s.requestPasswordReset)
	e.PUT("/user/password", s.resetPassword)
	e.POST("/user/verification", s.resendVerification)
	e.PUT("/user/verification", s.verifyEmail)

	// /user/token, /user/password and /user/verification share their prefix with /user/:id, so
	// gin would route GET /user/token to getUser and answer "id must be a
	// UUID". For clients (and in OpenAPI, where literal paths win over
	// templates) they are resources of their own: their other methods are
	// 405, like anywhere else.
	for path, allowed := range map[string][]string{
		"/user/token":          {http.MethodPost, http.MethodDelete},
		"/user/token/webauthn": {http.MethodPost},
		"/user/password":       {http.MethodPost, http.MethodPut},
		"/user/verification":   {http.MethodPost, http.MethodPut},
	} {
		for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			if !slices.Contains(allowed, m) {
				e.Handle(m, path, methodNotAllowed(allowed))
			}
		}
	}

	if s.cfg.Mount != nil {
		s.cfg.Mount(func(method, path string, h http.Handler) { e.Handle(method, path, mount(h)) })
	}

	e.GET("/.well-known/jwks.json", s.jwks)
	e.GET("/openapi.yaml", s.openAPI)
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
}

// methodNotAllowed answers 405 with the methods the path does support.
func methodNotAllowed(allowed []string) gin.HandlerFunc {
	allow := strings.Join(allowed, ", ")
	return func(c *gin.Context) {
		c.Header("Allow", allow)
		writeError(c, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed on this route", nil)
	}
}

type clientIPKey struct{}

// mount adapts a net/http handler: gin's path parameters become the
// request's path values, and the client address gin derived (believing
// only the trusted proxies) travels in the context for ClientIP.
func mount(h http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		for _, p := range c.Params {
			c.Request.SetPathValue(p.Key, p.Value)
		}
		r := c.Request.WithContext(context.WithValue(c.Request.Context(), clientIPKey{}, c.ClientIP()))
		h.ServeHTTP(c.Writer, r)
	}
}

// ClientIP is the client address of a request served by a mounted route,
// as the API's rate limits and logs see it ("" outside one).
func ClientIP(r *http.Request) string {
	ip, _ := r.Context().Value(clientIPKey{}).(string)
	return ip
}
