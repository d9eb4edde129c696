package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/apiclient"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// Email verification and enumeration-safe sign-up, end to end: the
// deployment requires verified addresses (which turns enumeration-safe
// sign-up on by default), and every mail is read from the mailer's
// directory as a person would open it.
var requireVerified = map[string]string{"USERSVC_REQUIRE_VERIFIED_EMAIL": "true"}

func TestDevEmailVerification(t *testing.T) {
	p, url := cluster.StartDev(t, requireVerified)
	verificationFlow(t, target{url: url, mailDir: p.Getenv("USERSVC_MAIL_DIR"), admin: p.Admin})
}

func TestDistributedEmailVerification(t *testing.T) {
	c := startCluster(t, requireVerified)
	verificationFlow(t, target{url: c.GatewayURL(), mailDir: c.MailDir(), admin: c.Admin})
}

// verificationFlow: sign-up answers alike for a new and a taken address
// and mails the taken one's owner; an unverified sign-in is refused until
// a (resent) link is used; the token then says email_verified; an email
// change notifies the old address and moves the login only once the new
// one is verified.
func verificationFlow(t *testing.T, tg target) {
	c := apiclient.New(t, tg.url)
	const owner, owned = "owner@example.com", "an owner passphrase of some length"
	tg.admin(t, owner, owned)
	email := "vera@example.com"
	signup := func(addr string) *apiclient.Response {
		return c.Do("POST", "/user", "", map[string]any{"email": addr, "password": userPassword, "name": "Vera"}).WantStatus(202)
	}
	fresh, taken := signup(email), signup(owner)
	if !bytes.Equal(fresh.Body, taken.Body) {
		t.Errorf("sign-up answers differ: %s vs %s", fresh.Body, taken.Body)
	}
	attempt := testenv.WaitMail(t, tg.mailDir, owner, "Someone tried to create an account with your address", 20*time.Second)
	if mail.ResetToken(attempt.Text) != "" {
		t.Errorf("the sign-up attempt notice carries a token:\n%s", attempt.Text)
	}

	c.Do("POST", "/user/token", "", map[string]any{"email": email, "password": userPassword}).WantError(403, "email_not_verified")
	first := mail.ResetToken(testenv.WaitMail(t, tg.mailDir, email, verifySubject, 20*time.Second).Text)
	c.Do("POST", "/user/verification", "", map[string]any{"email": email}).WantStatus(202)
	var second string
	for deadline := time.Now().Add(20 * time.Second); second == "" || second == first; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no second verification mail after the resend")
		}
		second = mail.ResetToken(testenv.WaitMail(t, tg.mailDir, email, verifySubject, time.Second).Text)
	}
	msg := testenv.WaitMail(t, tg.mailDir, email, verifySubject, time.Second)
	if !strings.Contains(msg.Text, tg.url+mail.VerifyPath+"?token=") {
		t.Errorf("the link does not point at %s%s:\n%s", tg.url, mail.VerifyPath, msg.Text)
	}
	c.Do("PUT", "/user/verification", "", map[string]any{"token": first}).WantError(400, "invalid_argument", "token")
	c.Do("PUT", "/user/verification", "", map[string]any{"token": second}).WantStatus(204)
	claims := verifiedClaims(t, c, email, userPassword)
	if claims.EmailVerified == nil || !*claims.EmailVerified {
		t.Fatalf("access token email_verified = %v, want true", claims.EmailVerified)
	}
	emailChange(t, c, tg, claims.Sub, email)
}

// emailChange moves the account at email to a new address: the old one is
// told, the new one is the login only once its link is used.
func emailChange(t *testing.T, c *apiclient.Client, tg target, id, email string) {
	t.Helper()
	newEmail := "vera.new@example.com"
	tok := login(c, email, userPassword)
	var u apiclient.User
	c.Do("PUT", "/user/"+id, tok.AccessToken, map[string]any{"email": newEmail, "current_password": userPassword}).
		WantStatus(200).Decode(&u)
	if u.Email != email || u.PendingEmail != newEmail {
		t.Fatalf("after the change request: email %q, pending %q", u.Email, u.PendingEmail)
	}
	notice := testenv.WaitMail(t, tg.mailDir, email, "Your email address is being changed", 20*time.Second)
	if !strings.Contains(notice.Text, newEmail) {
		t.Errorf("the notice does not name the new address:\n%s", notice.Text)
	}
	c.Do("POST", "/user/token", "", map[string]any{"email": newEmail, "password": userPassword}).WantError(401, "unauthenticated")
	login(c, email, userPassword)
	link := mail.ResetToken(testenv.WaitMail(t, tg.mailDir, newEmail, verifySubject, 20*time.Second).Text)
	c.Do("PUT", "/user/verification", "", map[string]any{"token": link}).WantStatus(204)
	if claims := verifiedClaims(t, c, newEmail, userPassword); claims.Sub != id || claims.EmailVerified == nil || !*claims.EmailVerified {
		t.Errorf("after verification: %+v", claims)
	}
	c.Do("POST", "/user/token", "", map[string]any{"email": email, "password": userPassword}).WantError(401, "unauthenticated")
}

// verifiedClaims signs in and returns the access token's claims, checked
// against the published JWKS.
func verifiedClaims(t *testing.T, c *apiclient.Client, email, password string) jwtClaims {
	t.Helper()
	tok := login(c, email, password)
	var jwks jwksJSON
	c.Do("GET", "/.well-known/jwks.json", "", nil).WantStatus(200).Decode(&jwks)
	return verifyJWT(t, jwks, tok.AccessToken)
}
