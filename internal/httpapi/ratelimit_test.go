package httpapi_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

// TestRateLimits: past the per-IP limit of a route a request gets 429 with
// Retry-After before any RPC, while other routes keep working.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) {
		c.RateLimits = []httpapi.RateLimit{{Method: "POST", Path: "/user/token",
			PerIP: ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: time.Minute})}}
	})
	bob := e.register("bob@example.com", "Bob")                                                                               // Bob signs in (1; the admin signed in in process)
	e.Do("POST", "/user/token", "", map[string]any{"email": "x@example.com", "password": "wrong password!!"}).WantStatus(401) // (2)
	r := e.Do("POST", "/user/token", "", map[string]any{"email": bob.Email, "password": userPassword})
	r.WantError(429, "resource_exhausted")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds", r.Header.Get("Retry-After"))
	}
	e.Do("GET", "/user/"+bob.ID, bob.Access, nil).WantStatus(200)
}

// TestResetRequestsPerAddress: reset mails are limited per canonical
// address in the service, registered or not (so the limit reveals
// nothing), whatever spelling the client uses; other addresses go on.
func TestResetRequestsPerAddress(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, stack.Options{ResetRequests: ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: time.Minute})})
	e.register("carol@example.com", "Carol")
	for _, addr := range []string{"carol@example.com", "nobody@example.com"} {
		e.Do("POST", "/user/password", "", map[string]any{"email": addr}).WantStatus(202)
		e.Do("POST", "/user/password", "", map[string]any{"email": " " + addr}).WantStatus(202)
		r := e.Do("POST", "/user/password", "", map[string]any{"email": addr})
		r.WantError(429, "resource_exhausted")
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", addr)
		}
	}
	e.Do("POST", "/user/password", "", map[string]any{"email": "dave@example.com"}).WantStatus(202)
}

// TestRateLimitsEveryAction hammers each anonymous action through the JSON
// API from one client: sign-in, sign-up, reset request and verification
// resend are each limited (the page forms and the gRPC port spend the same
// budgets: internal/pages, internal/rpc).
func TestRateLimitsEveryAction(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *httpapi.Config) {
		for _, a := range []ratelimit.Action{ratelimit.SignIn, ratelimit.SignUp, ratelimit.ResetRequest, ratelimit.VerificationResend} {
			method, path, _ := strings.Cut(string(a), " ")
			c.RateLimits = append(c.RateLimits, httpapi.RateLimit{Method: method, Path: path,
				PerIP: ratelimit.NewLocal(ratelimit.Rule{Limit: 3, Window: time.Minute})})
		}
	})
	for _, a := range []struct {
		path string
		body func(i int) map[string]any
	}{
		{"/user/token", func(int) map[string]any {
			return map[string]any{"email": "x@example.com", "password": "wrong password!!"}
		}},
		{"/user", func(i int) map[string]any {
			return map[string]any{"email": fmt.Sprintf("u%d@example.com", i), "password": userPassword, "name": "U"}
		}},
		{"/user/password", func(int) map[string]any { return map[string]any{"email": "x@example.com"} }},
		{"/user/verification", func(int) map[string]any { return map[string]any{"email": "x@example.com"} }},
	} {
		var statuses []int
		for i := range 4 {
			statuses = append(statuses, e.Do("POST", a.path, "", a.body(i)).Status)
		}
		if statuses[0] == 429 || statuses[3] != 429 {
			t.Errorf("POST %s four times from one client: %v, want the last 429", a.path, statuses)
		}
	}
}
