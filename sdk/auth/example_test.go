package auth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/usersvc/usersvc/sdk/auth"
	"github.com/usersvc/usersvc/sdk/auth/authtest"
)

// testIssuer stands in for the user service: it signs tokens of the same
// shape with its own key.
var testIssuer = authtest.NewIssuer("k1")

func ExampleVerifier_Verify() {
	v, err := auth.NewVerifier(auth.Config{
		// In a service: auth.JWKSURL("http://gateway/.well-known/jwks.json", nil)
		Keys:   testIssuer.Keys(),
		Issuer: "usersvc", Audience: "usersvc",
	})
	if err != nil {
		panic(err)
	}
	tok := testIssuer.UserToken("u-1", auth.RoleAdmin, nil)
	p, err := v.Verify(context.Background(), tok)
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Kind, p.ID, p.Role, p.EmailVerified)

	_, err = v.Verify(context.Background(), tok[:len(tok)-4]+"AAAA")
	fmt.Println(errors.Is(err, auth.ErrInvalidToken), auth.Status(err))
	// Output:
	// user u-1 admin true
	// true 401
}

func ExampleMiddleware() {
	v, _ := auth.NewVerifier(auth.Config{Keys: testIssuer.Keys(), Issuer: "usersvc", Audience: "usersvc"})
	mux := http.NewServeMux()
	// Only service accounts granted "orders:read", or admins.
	demand := auth.AnyOf(auth.RequireScope("orders:read"), auth.RequireRole(auth.RoleAdmin))
	mux.Handle("GET /orders", auth.Middleware(v, demand)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "orders for %s", p.ID)
	})))

	tok := testIssuer.ServiceToken("sa-1", "orders:read")
	req := httptest.NewRequest(http.MethodGet, "/orders", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Body.String())

	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/orders", nil))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 200 orders for sa-1
	// 401 {"error":"unauthenticated"}
}
