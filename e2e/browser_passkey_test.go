package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// virtualAuthenticator gives the tab Chromium's virtual authenticator (the
// DevTools WebAuthn domain): a platform authenticator with discoverable
// credentials that verifies its user (as a fingerprint reader would) and
// is present at once. It returns the authenticator's id.
func (b *browser) virtualAuthenticator() webauthn.AuthenticatorID {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatalf("browser: enable webauthn: %v", err)
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{Protocol: webauthn.AuthenticatorProtocolCtap2,
			Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
	if err != nil {
		b.t.Fatalf("browser: add a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

// credentials are the passkeys the virtual authenticator holds.
func (b *browser) credentials(id webauthn.AuthenticatorID) []*webauthn.Credential {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: id})
	if err != nil {
		b.t.Fatalf("browser: the authenticator's credentials: %v", err)
	}
	return res.Credentials
}

// TestBrowserPasskeys, in Chromium with its virtual authenticator: a person
// adds a passkey on /account, signs in with the password and the passkey
// as the second factor, then without the password (the passkey alone,
// discoverable), and removes it; the password alone then signs them in.
// The dev mode is reached as localhost: a relying party cannot be an IP.
func TestBrowserPasskeys(t *testing.T) {
	_, base := cluster.StartDev(t, map[string]string{"USERSVC_PUBLIC_URL": "http://localhost:{port}"})
	base = strings.Replace(base, "127.0.0.1", "localhost", 1)
	registerUser(t, base, "fay@example.com", "Fay", browserPassword)
	b := newBrowser(t)
	auth := b.virtualAuthenticator()
	password := func() {
		b.do("account", chromedp.Navigate(base+"/account"))
		b.waitFor("Sign in")
		b.fill("sign in", map[string]string{"email": "fay@example.com", "password": browserPassword}, "main form[action='/account/sign-in'] button")
	}

	password()
	b.waitFor("Your account")
	b.fill("add a passkey", map[string]string{"passkey-name": "laptop"}, "form[action='/account/factors/passkey'] button")
	b.waitFor("Add a passkey")
	b.screenshot("passkey-add")
	b.do("create it", chromedp.Click(chromedp.CSS("main form[data-webauthn] button")))
	b.waitFor("Your recovery codes")
	creds := b.credentials(auth)
	if len(creds) != 1 || !creds[0].IsResidentCredential {
		t.Fatalf("the authenticator holds %d credentials (%+v), want one discoverable", len(creds), creds)
	}
	b.do("account", chromedp.Navigate(base+"/account"))
	if s := b.text("table"); !strings.Contains(s, "laptop") || !strings.Contains(s, "passkey") {
		t.Fatalf("the factors table does not list the passkey: %q", s)
	}
	b.screenshot("passkey-account")

	// The second factor after the password.
	b.signOut()
	password()
	b.waitFor("Second factor")
	b.screenshot("passkey-second-step")
	b.do("use the passkey", chromedp.Click(chromedp.CSS("main form[data-webauthn] button")))
	b.waitFor("Your account")
	signCount := b.credentials(auth)[0].SignCount

	// Without the password.
	b.signOut()
	b.do("passwordless", chromedp.Click(chromedp.CSS("main form[action='/account/sign-in/passkey'] button")))
	b.waitFor("Sign in with a passkey")
	b.do("use the passkey", chromedp.Click(chromedp.CSS("main form[data-webauthn] button")))
	b.waitFor("Your account")
	if got := b.credentials(auth)[0].SignCount; got <= signCount {
		t.Errorf("sign count %v after another sign-in, was %v", got, signCount)
	}

	// Removed (the sign-in just now is recent, with the factor: step-up
	// holds), after which the password alone signs in.
	b.do("remove", chromedp.Click(chromedp.CSS("form[action$='/remove'] button")))
	b.waitText(".notice", "removed")
	b.screenshot("passkey-removed")
	b.signOut()
	password()
	b.waitFor("Your account")
}
