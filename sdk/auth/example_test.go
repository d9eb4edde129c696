package auth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/usersvc/usersvc/sdk/auth"
)

// exampleToken signs a user token with a fixed key, standing in for the
// user service; exampleJWKS is that key's JWKS.
var exampleKey = ed25519.NewKeyFromSeed(make([]byte, 32))

func exampleJWKS(context.Context) ([]byte, error) {
	return json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
		"x": base64.RawURLEncoding.EncodeToString(exampleKey.Public().(ed25519.PublicKey))}}})
}

func exampleToken(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": "k1"})
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(exampleKey, []byte(in)))
}

func ExampleVerifier_Verify() {
	v, err := auth.NewVerifier(auth.Config{
		// In a service: auth.JWKSURL("http://gateway/.well-known/jwks.json", nil)
		Keys:   auth.KeySourceFunc(exampleJWKS),
		Issuer: "usersvc", Audience: "usersvc",
	})
	if err != nil {
		panic(err)
	}
	now := time.Now()
	tok := exampleToken(map[string]any{"iss": "usersvc", "aud": "usersvc", "sub": "u-1", "role": "admin", "sv": 0,
		"sid": "s-1", "jti": "j-1", "email_verified": true, "iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()})
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
	v, _ := auth.NewVerifier(auth.Config{Keys: auth.KeySourceFunc(exampleJWKS), Issuer: "usersvc", Audience: "usersvc"})
	mux := http.NewServeMux()
	// Only service accounts granted "orders:read", or admins.
	demand := auth.AnyOf(auth.RequireScope("orders:read"), auth.RequireRole(auth.RoleAdmin))
	mux.Handle("GET /orders", auth.Middleware(v, demand)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprintf(w, "orders for %s", p.ID)
	})))

	now := time.Now()
	tok := exampleToken(map[string]any{"iss": "usersvc", "aud": "usersvc", "sub": "sa-1", "client_id": "sa-1",
		"scope": "orders:read", "sv": 0, "jti": "j-2", "iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix()})
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
