package auth_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usersvc/usersvc/sdk/auth"
)

func TestMiddleware(t *testing.T) {
	f := newFixture(t, nil)
	h := auth.Middleware(f.v, auth.RequireVerifiedEmail())(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := auth.FromContext(r.Context())
		fmt.Fprint(w, p.ID)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	cases := []struct {
		name, authz string
		status      int
		body        string
	}{
		{"verified user", "Bearer " + f.token(t, nil), 200, "user-1"},
		{"scheme case-insensitive", "bearer " + f.token(t, nil), 200, "user-1"},
		{"no token", "", 401, `{"error":"unauthenticated"}`},
		{"basic auth", "Basic dTpw", 401, `{"error":"unauthenticated"}`},
		{"unverified email", "Bearer " + f.token(t, map[string]any{"email_verified": false}), 403, `{"error":"forbidden"}`},
		{"expired", "Bearer " + f.token(t, map[string]any{"exp": t0.Add(-20e9).Unix()}), 401, `{"error":"token_expired"}`},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if c.authz != "" {
			req.Header.Set("Authorization", c.authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || strings.TrimSpace(string(body)) != c.body {
			t.Errorf("%s: %d %s, want %d %s", c.name, resp.StatusCode, body, c.status, c.body)
		}
		if c.status == 401 && resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
}

func TestRequirements(t *testing.T) {
	admin := &auth.Principal{Kind: auth.KindUser, Role: auth.RoleAdmin}
	sa := &auth.Principal{Kind: auth.KindServiceAccount, Scopes: []string{"orders:read"}}
	adminOrReader := auth.AnyOf(auth.RequireRole(auth.RoleAdmin), auth.RequireScope("orders:read"))
	for _, c := range []struct {
		r  auth.Requirement
		p  *auth.Principal
		ok bool
	}{
		{auth.RequireRole(auth.RoleAdmin), admin, true},
		{auth.RequireRole(auth.RoleAdmin), sa, false},
		{auth.RequireScope("orders:read"), sa, true},
		{auth.RequireScope("orders:write"), sa, false},
		{auth.RequireScope("orders:read"), admin, false},
		{auth.RequireUser(), sa, false},
		{auth.RequireVerifiedEmail(), admin, false},
		{adminOrReader, admin, true},
		{adminOrReader, sa, true},
		{adminOrReader, &auth.Principal{Kind: auth.KindUser, Role: auth.RoleUser}, false},
	} {
		if err := c.r(c.p); (err == nil) != c.ok {
			t.Errorf("requirement on %+v: err = %v, want ok %v", *c.p, err, c.ok)
		}
	}
}
