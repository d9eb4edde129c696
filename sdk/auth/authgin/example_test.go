package authgin_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authgin"
	"github.com/usersvc/usersvc/sdk/auth/authtest"
)

func ExampleMiddleware() {
	issuer := authtest.NewIssuer("k1") // stands in for the user service
	v, err := auth.NewVerifier(auth.Config{Keys: issuer.Keys(), Issuer: "usersvc", Audience: "usersvc"})
	if err != nil {
		panic(err)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	api := r.Group("/", authgin.Middleware(v))
	api.POST("/orders", authgin.Require(auth.RequireVerifiedEmail()), func(c *gin.Context) {
		p, _ := authgin.Principal(c)
		c.String(http.StatusCreated, "order for "+p.ID)
	})

	for _, tok := range []string{
		issuer.UserToken("u-1", auth.RoleUser, nil),
		issuer.UserToken("u-2", auth.RoleUser, map[string]any{"email_verified": false}),
	} {
		req := httptest.NewRequest(http.MethodPost, "/orders", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		fmt.Println(rec.Code, rec.Body.String())
	}
	// Output:
	// 201 order for u-1
	// 403 {"error":"forbidden"}
}
