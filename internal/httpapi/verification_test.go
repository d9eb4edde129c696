package httpapi_test

import (
	"bytes"
	"testing"

	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// emailVerifiedClaim is the access token's email_verified claim.
func emailVerifiedClaim(t *testing.T, access string) bool {
	t.Helper()
	var c struct {
		EmailVerified *bool `json:"email_verified"`
	}
	if jwtClaims(t, access, &c); c.EmailVerified == nil {
		t.Fatalf("access token without email_verified: %s", access)
	}
	return *c.EmailVerified
}

// Sign-up mails a link; the link's token verifies the address once, which
// the next access token says.
func TestEmailVerification(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	alice := e.register("alice@example.com", "Alice")
	if emailVerifiedClaim(t, alice.Access) {
		t.Fatal("email_verified before verification")
	}
	var u apiclient.User
	e.Do("GET", "/user/"+alice.ID, alice.Access, nil).WantStatus(200).Decode(&u)
	if u.EmailVerified || u.PendingEmail != "" {
		t.Fatalf("new user: %+v", u)
	}
	tok := e.verifyToken("alice@example.com")
	e.Do("PUT", "/user/verification", "", map[string]any{"token": "not-the-token"}).WantError(400, "invalid_argument", "token")
	e.Send("PUT", "/user/verification", apiclient.JSONHeader(""), `{}`).WantError(400, "invalid_argument", "token")
	e.Do("PUT", "/user/verification", "", map[string]any{"token": tok}).WantStatus(204)
	e.Do("PUT", "/user/verification", "", map[string]any{"token": tok}).WantError(400, "invalid_argument", "token")
	if !emailVerifiedClaim(t, e.login("alice@example.com", userPassword).Access) {
		t.Fatal("no email_verified after verification")
	}
	// Resend answers the same for anyone; other methods are 405.
	for _, addr := range []string{"alice@example.com", "nobody@example.com"} {
		e.Do("POST", "/user/verification", "", map[string]any{"email": addr}).WantStatus(202)
	}
	e.Send("POST", "/user/verification", apiclient.JSONHeader(""), `{"email":"not an email"}`).WantError(400, "invalid_argument", "email")
	for _, m := range []string{"GET", "DELETE"} {
		if r := e.Send(m, "/user/verification", nil, ""); r.Status != 405 || r.Header.Get("Allow") != "POST, PUT" {
			t.Errorf("%s /user/verification: %d, Allow %q", m, r.Status, r.Header.Get("Allow"))
		}
	}
	if n := e.mailCount(verifySubject, 2); n != 1 {
		t.Errorf("%d verification mails, want 1 (none to a verified or unknown address)", n)
	}
}

// With verified addresses required, the right password of an unverified
// account is 403 email_not_verified; a resent link lets it in.
func TestRequireVerifiedEmailOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, stack.Options{Config: user.Config{RequireVerifiedEmail: true}})
	e.Do("POST", "/user", "", map[string]any{"email": "vera@example.com", "password": userPassword, "name": "Vera"}).WantStatus(201)
	e.Do("POST", "/user/token", "", map[string]any{"email": "vera@example.com", "password": "a wrong passphrase!"}).
		WantError(401, "unauthenticated")
	e.Do("POST", "/user/token", "", map[string]any{"email": "vera@example.com", "password": userPassword}).
		WantError(403, "email_not_verified")
	first := e.verifyToken("vera@example.com")
	e.Do("POST", "/user/verification", "", map[string]any{"email": "vera@example.com"}).WantStatus(202)
	e.mailCount(verifySubject, 2)
	second := e.verifyToken("vera@example.com")
	if second == first {
		t.Fatal("resend mailed the same token")
	}
	e.Do("PUT", "/user/verification", "", map[string]any{"token": second}).WantStatus(204)
	if !emailVerifiedClaim(t, e.login("vera@example.com", userPassword).Access) {
		t.Fatal("no email_verified")
	}
}

// In enumeration-safe mode a new and a taken address get the same status
// and body, from an anonymous caller and a signed-in plain user alike; the
// owner of the taken one is mailed; admins still get 201/409.
func TestEnumerationSafeSignupOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnvOn(t, stack.Options{Config: user.Config{SignupEnumerationSafe: true}})
	body := func(email string) map[string]any {
		return map[string]any{"email": email, "password": userPassword, "name": "Someone"}
	}
	fresh := e.Do("POST", "/user", "", body("new@example.com")).WantStatus(202)
	taken := e.Do("POST", "/user", "", body("admin@example.com")).WantStatus(202)
	if !bytes.Equal(fresh.Body, taken.Body) || fresh.Header.Get("Location") != "" || taken.Header.Get("Location") != "" {
		t.Fatalf("answers differ:\n%s %v\n%s %v", fresh.Body, fresh.Header, taken.Body, taken.Header)
	}
	if e.mailCount("Someone tried to create an account with your address", 1) != 1 {
		t.Fatal("the owner of the taken address got no mail")
	}
	e.verifyToken("new@example.com")
	e.Do("POST", "/user", e.admin.Access, body("plain@example.com")).WantStatus(201)
	plain := e.login("plain@example.com", userPassword)
	byUserFresh := e.Do("POST", "/user", plain.Access, body("newer@example.com")).WantStatus(202)
	byUserTaken := e.Do("POST", "/user", plain.Access, body("admin@example.com")).WantStatus(202)
	if !bytes.Equal(byUserFresh.Body, fresh.Body) || !bytes.Equal(byUserTaken.Body, fresh.Body) {
		t.Fatalf("a plain user's answers differ from the anonymous one:\n%s\n%s\n%s", fresh.Body, byUserFresh.Body, byUserTaken.Body)
	}
	e.Do("POST", "/user", e.admin.Access, body("new@example.com")).WantError(409, "already_exists")
	e.Do("POST", "/user", e.admin.Access, body("other@example.com")).WantStatus(201)
}
