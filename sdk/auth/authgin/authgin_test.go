package authgin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authgin"
	"github.com/usersvc/usersvc/sdk/auth/authtest"
)

func TestMiddleware(t *testing.T) {
	gin.SetMode(gin.TestMode)
	iss := authtest.NewIssuer("k1")
	v, err := auth.NewVerifier(auth.Config{Keys: iss.Keys(), Issuer: "usersvc", Audience: "usersvc"})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	api := r.Group("/", authgin.Middleware(v))
	api.GET("/me", func(c *gin.Context) {
		p, _ := authgin.Principal(c)
		c.String(200, p.ID)
	})
	api.GET("/admin", authgin.Require(auth.RequireRole(auth.RoleAdmin)), func(c *gin.Context) { c.String(200, "ok") })
	for _, c := range []struct {
		path, token string
		status      int
		body        string
	}{
		{"/me", iss.UserToken("u-1", auth.RoleUser, nil), 200, "u-1"},
		{"/me", "", 401, `{"error":"unauthenticated"}`},
		{"/me", iss.UserToken("u-1", auth.RoleUser, map[string]any{"exp": 1}), 401, `{"error":"token_expired"}`},
		{"/admin", iss.UserToken("u-1", auth.RoleUser, nil), 403, `{"error":"forbidden"}`},
		{"/admin", iss.UserToken("u-2", auth.RoleAdmin, nil), 200, "ok"},
	} {
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		if rec.Code != c.status || rec.Body.String() != c.body {
			t.Errorf("%s: %d %s, want %d %s", c.path, rec.Code, rec.Body, c.status, c.body)
		}
	}
}
