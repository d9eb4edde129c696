package httpapi_test

import (
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/ratelimit"
)

// TestRateLimits: past the per-account limit a login gets 429 with
// Retry-After, while other accounts and the per-IP budget are unaffected;
// the limit is a window, so the owner gets in again after it.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	window := 700 * time.Millisecond
	e := newEnv(t, func(c *httpapi.Config) {
		c.RateLimits = []httpapi.RateLimit{{Method: "POST", Path: "/user/token",
			PerIP:    ratelimit.NewLocal(ratelimit.Rule{Limit: 50, Window: time.Minute}),
			PerEmail: ratelimit.NewLocal(ratelimit.Rule{Limit: 2, Window: window})}}
	})
	alice := e.register("alice@example.com", "Alice") // signs in: attempt 1
	start := time.Now()
	e.do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": "wrong password!!"}).wantStatus(401)
	r := e.do("POST", "/user/token", "", map[string]any{"email": "ALICE@example.com", "password": userPassword})
	r.wantError(429, "resource_exhausted")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another account is not throttled by Alice's attacker.
	e.register("bob@example.com", "Bob")
	// After the window the owner signs in.
	time.Sleep(window - time.Since(start) + 50*time.Millisecond)
	e.login(alice.Email, userPassword)
}
