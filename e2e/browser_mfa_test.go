package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// signInFactor answers the sign-in's second step in the browser: the
// radio of kind, the code typed, Continue.
func (b *browser) signInFactor(kind, code string) {
	b.t.Helper()
	b.waitFor("Second factor")
	b.do("choose "+kind, chromedp.Click(chromedp.ID("factor-"+kind)))
	b.fill("second factor", map[string]string{"code": code}, "main button[type=submit]")
}

// signOut clicks Sign out, which lands on the area's sign-in page.
func (b *browser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.CSS("header button")))
	b.waitFor("Sign in")
}

// adminPassword opens the console and signs in with the password.
func (b *browser) adminPassword(base string) {
	b.t.Helper()
	b.do("admin", chromedp.Navigate(base+"/admin"))
	b.waitFor("Sign in")
	b.fill("admin sign-in", map[string]string{"email": "root@example.com", "password": browserAdminPW}, "main button[type=submit]")
}

// TestBrowserAdminSetsUpTOTP: with USERSVC_REQUIRE_ADMIN_MFA on, an admin
// signing in to the console without a factor lands on their account page,
// sets up an authenticator app there (the QR code shows, CSP and all; the
// code is computed from the key the page shows), saves the recovery codes
// shown once, and signs in to the console again with a code; then with a
// recovery code, which works once.
func TestBrowserAdminSetsUpTOTP(t *testing.T) {
	dev, base := cluster.StartDev(t, map[string]string{"USERSVC_REQUIRE_ADMIN_MFA": "true"})
	dev.Admin(t, "root@example.com", browserAdminPW)
	b := newBrowser(t)

	b.adminPassword(base)
	b.waitFor("Your account")
	b.waitText(".notice", "Administrators need a second factor")
	b.screenshot("mfa-admin-needs-factor")

	b.fill("set up an app", map[string]string{"factor-name": "work phone"}, "form[action='/account/factors/totp'] button")
	b.waitFor("Set up an authenticator app")
	if w := read(b, "QR code width", chromedp.Evaluate[int]("document.querySelector('img.qr').naturalWidth")); w == 0 {
		t.Error("the QR code did not load (CSP?)")
	}
	secret := strings.TrimSpace(b.text(".secret"))
	b.screenshot("mfa-totp-enrol")
	code, err := factor.TOTPCode(secret, time.Now())
	if err != nil {
		t.Fatalf("the key on the page %q: %v", secret, err)
	}
	b.fill("confirm", map[string]string{"code": code}, "main button[type=submit]")
	b.waitFor("Your recovery codes")
	codes := strings.Fields(b.text(".codes"))
	if len(codes) != 10 {
		t.Fatalf("recovery codes shown: %q", codes)
	}
	b.screenshot("mfa-recovery-codes")

	// The code that confirmed the app is spent; the next step's is good
	// now (one step of skew).
	next, _ := factor.TOTPCode(secret, time.Now().Add(30*time.Second))
	b.signOut()
	b.adminPassword(base)
	b.waitFor("Second factor")
	b.screenshot("mfa-second-step")
	b.signInFactor("totp", next)
	b.waitFor("Users")
	b.screenshot("mfa-admin-console")

	for i, want := range []string{"Users", "Second factor"} {
		b.signOut()
		b.adminPassword(base)
		b.signInFactor("recovery_code", codes[0])
		b.waitFor(want)
		if i == 1 {
			b.waitText("#code-error", "wrong or was used")
		}
	}
}
