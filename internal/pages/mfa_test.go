package pages_test

import (
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/pages"
	"github.com/usersvc/usersvc/internal/user"
)

// TestSignInWithFactorRefusedPlainly: the pages cannot ask for a second
// factor yet, so an account with one is told to use the API, and no
// session starts (no cookie, the sign-in form again), rather than a
// session cookie with no tokens in it.
func TestSignInWithFactorRefusedPlainly(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	ctx, owner := context.Background(), user.Actor{ID: u.ID, Role: u.Role}
	enrol, err := e.st.Service.EnrolTOTP(ctx, owner, u.ID, "phone")
	if err != nil {
		t.Fatal(err)
	}
	code, _ := factor.TOTPCode(enrol.Secret, time.Now())
	if _, err := e.st.Service.ConfirmTOTP(ctx, owner, u.ID, enrol.FactorID, code); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	p := b.signIn("/account", u.Email, userPassword)
	if p.status != 403 || !strings.Contains(html.UnescapeString(p.body), "has a second factor") || !strings.Contains(p.body, `action="/account/sign-in"`) {
		t.Fatalf("sign-in of an account with a factor: %d\n%s", p.status, p.body)
	}
	if c := b.cookie("usersvc_session"); c != nil && c.Value != "" {
		t.Errorf("a session cookie was set: %v", c)
	}
}
