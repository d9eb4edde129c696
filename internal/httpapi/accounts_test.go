package httpapi_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/testenv/stack"
)

// The account rules of issue 7, through the HTTP API on the real stack.

// A reset link mailed to the old address must not take the account back
// after the owner moved it to a new one.
func TestResetTokenMailedBeforeAnEmailChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	e.do("POST", "/user/password", "", map[string]any{"email": "alice@example.com"}).wantStatus(202)
	tok := e.resetToken("alice@example.com")
	e.do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"email": "alice@new.example.com",
		"current_password": userPassword}).wantStatus(200)
	e.do("PUT", "/user/password", "", map[string]any{"token": tok, "password": newPassword}).
		wantError(400, "invalid_argument", "token")
	e.do("PUT", "/user/verification", "", map[string]any{"token": e.verifyToken("alice@new.example.com")}).wantStatus(204)
	e.login("alice@new.example.com", userPassword)
}

// The only admin deleting themself would leave nobody who can administer.
func TestLastAdminCannotLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.do("DELETE", "/user/"+e.admin.ID, e.admin.Access, nil).wantError(409, "failed_precondition")
	e.do("GET", "/user/"+e.admin.ID, e.admin.Access, nil).wantStatus(200)
	// With a second admin, the first may go.
	bob := e.register("bob@example.com", "Bob")
	e.do("PUT", "/user/"+bob.ID, e.admin.Access, map[string]any{"role": "admin"}).wantStatus(200)
	e.do("DELETE", "/user/"+e.admin.ID, e.admin.Access, nil).wantStatus(204)
}

// Disabling an account ends its sessions; enabling it again does not
// revive them.
func TestReenabledAccountsOldTokensStayDead(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	e.do("PUT", "/user/"+alice.ID, e.admin.Access, map[string]any{"status": "disabled"}).wantStatus(200)
	e.do("PUT", "/user/"+alice.ID, e.admin.Access, map[string]any{"status": "active"}).wantStatus(200)
	e.do("GET", "/user/"+alice.ID, alice.Access, nil).wantError(401, "unauthenticated")
	e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		wantError(401, "unauthenticated")
	fresh := e.login("alice@example.com", userPassword)
	e.do("GET", "/user/"+alice.ID, fresh.Access, nil).wantStatus(200)
}

// A used refresh token presented again revokes its family, and the access
// tokens that family handed out stop working with it; other sign-ins of
// the same user are untouched.
func TestRevokedFamilysAccessTokensDie(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	other := e.login("alice@example.com", userPassword)
	r := e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh})
	r.wantStatus(200)
	var rotated struct {
		AccessToken string `json:"access_token"`
	}
	r.decode(&rotated)
	e.do("POST", "/user/token", "", map[string]any{"grant_type": "refresh_token", "refresh_token": alice.Refresh}).
		wantError(401, "unauthenticated")
	e.do("GET", "/user/"+alice.ID, alice.Access, nil).wantError(401, "unauthenticated")
	e.do("GET", "/user/"+alice.ID, rotated.AccessToken, nil).wantError(401, "unauthenticated")
	e.do("GET", "/user/"+alice.ID, other.Access, nil).wantStatus(200)

	// Logout ends the access token it is sent with.
	e.do("DELETE", "/user/token", other.Access, map[string]any{"refresh_token": other.Refresh}).wantStatus(204)
	e.do("GET", "/user/"+alice.ID, other.Access, nil).wantError(401, "unauthenticated")
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
	e.do("POST", "/user", "", body("\uff43arol@example\uff0ecom", "Mallory")).wantError(409, "already_exists")
	e.do("POST", "/user", "", body("c\u0430rol@example.com", "Mallory")).wantError(400, "invalid_argument", "email")
	e.do("POST", "/user", "", body("car\u200bol@example.com", "Mallory")).wantError(400, "invalid_argument", "email")
	e.login("\uff23AROL@example.com", userPassword)
	e.send("POST", "/user", jsonHeader(""), "{\"email\":\"dave@example.com\",\"password\":\""+userPassword+"\",\"name\":\"Da\xffve\"}").
		wantError(400, "invalid_argument")
	e.do("POST", "/user/token", "", map[string]any{"email": "dave@example.com", "password": userPassword}).
		wantError(401, "unauthenticated")
}

// Wrong current_password answers spend the account's password budget, the
// same one sign-ins spend: past it both are 429 with Retry-After.
func TestCurrentPasswordGuessesAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, stack.Options{PasswordAttempts: ratelimit.NewLocal(ratelimit.Rule{Limit: 4, Window: time.Minute})})
	alice := e.register("alice@example.com", "Alice") // attempt 1: the sign-in
	guess := func(pw string) *response {
		return e.do("PUT", "/user/"+alice.ID, alice.Access, map[string]any{"password": newPassword, "current_password": pw})
	}
	for range 3 { // attempts 2 to 4
		guess("a wrong guess").wantError(400, "invalid_argument", "current_password")
	}
	r := guess(userPassword)
	r.wantError(429, "resource_exhausted")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want 1 to 60 seconds", r.Header.Get("Retry-After"))
	}
	e.do("POST", "/user/token", "", map[string]any{"email": "alice@example.com", "password": userPassword}).
		wantError(429, "resource_exhausted")
}
