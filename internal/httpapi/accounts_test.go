package httpapi_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

// The account rules of issue 7, through the HTTP API on the real stack.

// A reset link mailed to the old address must not take the account back
// after the owner moved it to a new one.
func TestResetTokenMailedBeforeAnEmailChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	e.Do("POST", "/user/password", "", map[string]any{"email": "alice@example.com"}).WantStatus(202)
	tok := e.resetToken("alice@example.com")
	e.Do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"email": "alice@new.example.com",
		"current_password": userPassword}).WantStatus(200)
	e.Do("PUT", "/user/password", "", map[string]any{"token": tok, "password": newPassword}).
		WantError(400, "invalid_argument", "token")
	e.Do("PUT", "/user/verification", "", map[string]any{"token": e.verifyToken("alice@new.example.com")}).WantStatus(204)
	e.login("alice@new.example.com", userPassword)
}

// The only admin deleting themself would leave nobody who can administer.
func TestLastAdminCannotLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.Do("DELETE", "/user/"+e.admin.ID, e.admin.Access, nil).WantError(409, "failed_precondition")
	e.Do("GET", "/user/"+e.admin.ID, e.admin.Access, nil).WantStatus(200)
	// With a second admin, the first may go.
	bob := e.register("bob@example.com", "Bob")
	e.Do("PUT", "/user/"+bob.ID, e.admin.Access, map[string]any{"role": "admin"}).WantStatus(200)
	e.Do("DELETE", "/user/"+e.admin.ID, e.admin.Access, nil).WantStatus(204)
}

// Disabling an account ends its sessions; enabling it again does not
// revive them.
func TestReenabledAccountsOldTokensStayDead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	e.Do("PUT", "/user/"+alice.ID, e.admin.Access, map[string]any{"status": "disabled"}).WantStatus(200)
	e.Do("PUT", "/user/"+alice.ID, e.admin.Access, map[string]any{"status": "active"}).WantStatus(200)
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantError(401, "unauthenticated")
	fresh := e.login("alice@example.com", userPassword)
	e.Do("GET", "/user/"+alice.ID, fresh.Access, nil).WantStatus(200)
}

// A used refresh token presented again revokes its family, and the access
// tokens that family handed out stop working with it; other sign-ins of
// the same user are untouched.
func TestRevokedFamilysAccessTokensDie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	other := e.login("alice@example.com", userPassword)
	r := e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh})
	r.WantStatus(200)
	var rotated struct {
		AccessToken string `json:"access_token"`
	}
	r.Decode(&rotated)
	e.Do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		WantError(401, "unauthenticated")
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantError(401, "unauthenticated")
	e.Do("GET", "/user/"+alice.ID, rotated.AccessToken, nil).WantError(401, "unauthenticated")
	e.Do("GET", "/user/"+alice.ID, other.Access, nil).WantStatus(200)

	// Logout ends the access token it is sent with.
	e.Do("DELETE", "/user/token", other.Access, map[string]any{"refresh_token": other.Refresh}).WantStatus(204)
	e.Do("GET", "/user/"+alice.ID, other.Access, nil).WantError(401, "unauthenticated")
}

// Look-alike addresses through the API: the same account (409, and the
// sign-in works) or refused (400); bodies that are not UTF-8 are refused
// instead of being stored with U+FFFD in place of the bad bytes.
func TestLookAlikeEmailsAndInvalidUTF8(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register("carol@example.com", "Carol")
	body := func(email, name string) map[string]any {
		return map[string]any{"email": email, "password": userPassword, "name": name}
	}
	e.Do("POST", "/user", "", body("\uff43arol@example\uff0ecom", "Mallory")).WantError(409, "already_exists")
	e.Do("POST", "/user", "", body("c\u0430rol@example.com", "Mallory")).WantError(400, "invalid_argument", "email")
	e.Do("POST", "/user", "", body("car\u200bol@example.com", "Mallory")).WantError(400, "invalid_argument", "email")
	e.login("\uff23AROL@example.com", userPassword)
	e.Send("POST", "/user", apiclient.JSONHeader(""), "{\"email\":\"dave@example.com\",\"password\":\""+userPassword+"\",\"name\":\"Da\xffve\"}").
		WantError(400, "invalid_argument")
	e.Do("POST", "/user/token", "", map[string]any{"email": "dave@example.com", "password": userPassword}).
		WantError(401, "unauthenticated")
}

// Wrong current_password answers spend the account's password budget, the
// same one sign-ins spend: past it both are 429 with Retry-After.
func TestCurrentPasswordGuessesAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, stack.Options{PasswordAttempts: ratelimit.NewLocal(ratelimit.Rule{Limit: 4, Window: time.Minute})})
	alice := e.register("alice@example.com", "Alice") // attempt 1: the sign-in
	guess := func(pw string) *apiclient.Response {
		return e.Do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"password": newPassword, "current_password": pw})
	}
	for range 3 { // attempts 2 to 4
		guess("a wrong guess").WantError(400, "invalid_argument", "current_password")
	}
	r := guess(userPassword)
	r.WantError(429, "resource_exhausted")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", r.Header.Get("Retry-After"))
	}
	e.Do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": userPassword}).
		WantError(429, "resource_exhausted")
}
