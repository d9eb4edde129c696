package pages_test

import (
	"encoding/base64"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/factor/webauthntest"
	"github.com/usersvc/usersvc/internal/pages"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

var (
	secretRE = regexp.MustCompile(`<code class="secret">([A-Z2-7]+)</code>`)
	ticketRE = regexp.MustCompile(`name="ticket" value="([^"]+)"`)
	codeRE   = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)
	removeRE = regexp.MustCompile(`action="/account/factors/([^/"]+)/remove"`)
)

// enrolTOTP sets up an authenticator app on the signed-in account through
// the pages, as a person would: the key shown is typed into the app, whose
// code confirms it. It returns the key and the recovery codes shown once.
func (b *browser) enrolTOTP(name string) (secret string, codes []string) {
	b.t.Helper()
	if p := b.get("/account"); !strings.Contains(p.body, "No second factor yet") {
		b.t.Fatalf("account page before enrolment:\n%s", p.body)
	}
	p := b.post("/account/factors/totp", url.Values{"factor_name": {name}}, nil)
	m := secretRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || m == nil || !strings.Contains(p.body, `src="data:image/png;base64,`) {
		b.t.Fatalf("enrolment page = %d:\n%s", p.status, p.body)
	}
	secret = m[1]
	checkLabels(b.t, "totp enrolment", p.body)
	// A wrong code shows the enrolment again, still confirmable.
	p = b.post("/account/factors/confirm", formOf(p.body, "code", "000000"), nil)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "is wrong") || !strings.Contains(p.body, secret) {
		b.t.Fatalf("wrong confirmation code = %d:\n%s", p.status, p.body)
	}
	code, _ := factor.TOTPCode(secret, time.Now())
	p = b.post("/account/factors/confirm", formOf(p.body, "code", code), nil)
	for _, c := range codeRE.FindAllStringSubmatch(p.body, -1) {
		codes = append(codes, c[1])
	}
	if p.status != http.StatusOK || len(codes) != 10 || !strings.Contains(p.body, "shown only now") {
		b.t.Fatalf("confirmation = %d, %d codes:\n%s", p.status, len(codes), p.body)
	}
	checkLabels(b.t, "recovery codes", p.body)
	if p := b.get("/account"); !strings.Contains(p.body, html.EscapeString(name)) || !strings.Contains(p.body, "Recovery codes left: 10") {
		b.t.Fatalf("account page after enrolment:\n%s", p.body)
	} else {
		checkLabels(b.t, "account with a factor", p.body)
	}
	return secret, codes
}

// formOf is the hidden fields of the page's form with factor_id, plus
// key=value.
func formOf(body, key, value string) url.Values {
	f := url.Values{key: {value}}
	for _, name := range []string{"factor_id", "secret", "uri", "ticket", "kinds"} {
		if m := regexp.MustCompile(`name="` + name + `" value="([^"]*)"`).FindStringSubmatch(body); m != nil {
			f.Set(name, html.UnescapeString(m[1]))
		}
	}
	return f
}

// signInWithFactor signs in to area with the password, then answers the
// second step with kind and code; it returns the step's answer.
func (b *browser) signInWithFactor(area, email, pw, kind, code string) page {
	b.t.Helper()
	p := b.signIn(area, email, pw)
	if p.status != http.StatusOK || ticketRE.FindStringSubmatch(p.body) == nil {
		b.t.Fatalf("password step of an account with a factor = %d:\n%s", p.status, p.body)
	}
	if b.session().A != "" {
		b.t.Fatal("a session started before the second factor")
	}
	checkLabels(b.t, "second step", p.body)
	f := formOf(p.body, "code", code)
	f.Set("factor", kind)
	return b.post(area+"/sign-in/factor", f, nil)
}

// TestPagesTOTP: an account sets up an authenticator app on /account
// (QR code, key, one confirmed code, recovery codes shown once); its
// sign-in then asks for a code, refuses a wrong or replayed one, and
// accepts each recovery code once.
func TestPagesTOTP(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	b := e.browser()
	b.signIn("/account", u.Email, userPassword)
	secret, codes := b.enrolTOTP("phone")
	b.post("/account/sign-out", nil, nil)

	code := nextCode(secret)
	p := b.signInWithFactor("/account", u.Email, userPassword, "totp", "000000")
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "is wrong") || ticketRE.FindString(p.body) == "" {
		t.Fatalf("wrong code = %d:\n%s", p.status, p.body)
	}
	f := formOf(p.body, "code", code)
	f.Set("factor", "totp")
	if p = b.post("/account/sign-in/factor", f, nil); p.url != "/account" || !strings.Contains(p.body, "Alice") {
		t.Fatalf("right code after a wrong one = %d %s:\n%s", p.status, p.url, p.body)
	}
	if c, ok := claimsOf(b.session().A); !ok || !strings.Contains(strings.Join(c.AMR, " "), "otp") {
		t.Fatalf("the session's token: %+v", c)
	}
	b.post("/account/sign-out", nil, nil)
	if p = b.signInWithFactor("/account", u.Email, userPassword, "totp", code); p.status != http.StatusUnauthorized {
		t.Fatalf("replayed code = %d:\n%s", p.status, p.body)
	}

	// A recovery code works once.
	if p = b.signInWithFactor("/account", u.Email, userPassword, "recovery_code", codes[0]); p.url != "/account" {
		t.Fatalf("recovery code = %d %s:\n%s", p.status, p.url, p.body)
	}
	if !strings.Contains(p.body, "Recovery codes left: 9") {
		t.Errorf("account page after a recovery code:\n%s", p.body)
	}
	b.post("/account/sign-out", nil, nil)
	if p = b.signInWithFactor("/account", u.Email, userPassword, "recovery_code", codes[0]); p.status != http.StatusUnauthorized {
		t.Fatalf("recovery code again = %d:\n%s", p.status, p.body)
	}
}

// TestPagesFactorTicketSpent: a second step with a made-up ticket goes
// back to the password, with no session.
func TestPagesFactorTicketSpent(t *testing.T) {
	e := newEnv(t, pages.Config{})
	b := e.browser()
	b.get("/account")
	p := b.post("/account/sign-in/factor", url.Values{"ticket": {"made-up"}, "factor": {"totp"}, "code": {"123456"}}, nil)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "Sign in again") || !strings.Contains(p.body, `action="/account/sign-in"`) {
		t.Fatalf("made-up ticket = %d:\n%s", p.status, p.body)
	}
	if b.session().A != "" {
		t.Error("a session started")
	}
}

// TestPagesRecoveryCodesRegenerated: new codes replace the old ones, shown
// once.
func TestPagesRecoveryCodesRegenerated(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	b := e.browser()
	b.signIn("/account", u.Email, userPassword)
	_, old := b.enrolTOTP("phone")
	p := b.post("/account/recovery-codes", nil, nil)
	fresh := codeRE.FindAllStringSubmatch(p.body, -1)
	if p.status != http.StatusOK || len(fresh) != 10 || fresh[0][1] == old[0] {
		t.Fatalf("regenerated codes = %d:\n%s", p.status, p.body)
	}
	b.post("/account/sign-out", nil, nil)
	if p = b.signInWithFactor("/account", u.Email, userPassword, "recovery_code", old[0]); p.status != http.StatusUnauthorized {
		t.Fatalf("an old code after regeneration = %d", p.status)
	}
	if p = b.signInWithFactor("/account", u.Email, userPassword, "recovery_code", fresh[0][1]); p.url != "/account" {
		t.Fatalf("a new code = %d %s", p.status, p.url)
	}
}

// TestPagesAdminNeedsFactor: with USERSVC_REQUIRE_ADMIN_MFA, an admin who
// signs in to the console without a factor is sent to their account to
// enrol one, and the console lists nobody for that session; after
// enrolling, a sign-in with the factor opens the console.
func TestPagesAdminNeedsFactor(t *testing.T) {
	e := newEnvWith(t, pages.Config{RequireAdminMFA: true}, user.Config{RequireAdminMFA: true})
	e.createUser("alice@example.com", "Alice")
	b := e.browser()
	p := b.signIn("/admin", "admin@example.com", adminPassword)
	if p.url != "/account" || !strings.Contains(p.body, "Administrators need a second factor") {
		t.Fatalf("admin without a factor = %d %s:\n%s", p.status, p.url, p.body)
	}
	if p = b.get("/admin"); p.status != http.StatusForbidden || strings.Contains(p.body, "alice@example.com") {
		t.Fatalf("console without the factor = %d:\n%s", p.status, p.body)
	}
	secret, _ := b.enrolTOTP("admin phone")
	b.post("/account/sign-out", nil, nil)
	code := nextCode(secret)
	if p = b.signInWithFactor("/admin", "admin@example.com", adminPassword, "totp", code); p.url != "/admin" || !strings.Contains(p.body, "alice@example.com") {
		t.Fatalf("console with the factor = %d %s:\n%s", p.status, p.url, p.body)
	}
}

// nextCode is the app's code of the next time step: the step of the code
// that confirmed the enrolment is spent, and the service accepts one step
// of skew, so the next one is good now without waiting for it.
func nextCode(secret string) string {
	code, _ := factor.TOTPCode(secret, time.Now().Add(30*time.Second))
	return code
}

// claimsOf decodes an access token's claims (not its signature).
func claimsOf(access string) (c struct {
	AMR []string `json:"amr"`
}, ok bool) {
	parts := strings.Split(access, ".")
	if len(parts) != 3 {
		return c, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	return c, err == nil && json.Unmarshal(raw, &c) == nil
}

// TestPagesRemoveFactor: the owner removes their app on /account once
// signed in with it (step-up); the recovery codes go with the last factor,
// and the password alone signs in again.
func TestPagesRemoveFactor(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	b := e.browser()
	b.signIn("/account", u.Email, userPassword)
	secret, _ := b.enrolTOTP("phone")
	m := removeRE.FindStringSubmatch(b.get("/account").body)
	if m == nil {
		t.Fatal("no remove button on the account page")
	}
	// This session's sign-in had no factor: step-up asks for one with it.
	p := b.post("/account/factors/"+m[1]+"/remove", nil, nil)
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "needs a recent sign-in") {
		t.Fatalf("remove from a sign-in without the factor = %d:\n%s", p.status, p.body)
	}
	b.post("/account/sign-out", nil, nil)
	b.signInWithFactor("/account", u.Email, userPassword, "totp", nextCode(secret))
	p = b.post("/account/factors/"+m[1]+"/remove", nil, nil)
	if p.url != "/account" || !strings.Contains(p.body, "The second factor was removed") || !strings.Contains(p.body, "No second factor yet") {
		t.Fatalf("remove = %d %s:\n%s", p.status, p.url, p.body)
	}
	b.post("/account/sign-out", nil, nil)
	if p = b.signIn("/account", u.Email, userPassword); p.url != "/account" || !strings.Contains(p.body, "Alice") {
		t.Fatalf("password sign-in after the removal = %d %s", p.status, p.url)
	}
}

// TestPagesAdminRemovesFactors: an admin removes a user's factors from the
// console (the user lost them all); the user then signs in with the
// password alone.
func TestPagesAdminRemovesFactors(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	alice := e.browser()
	alice.signIn("/account", u.Email, userPassword)
	alice.enrolTOTP("phone")
	alice.post("/account/sign-out", nil, nil)

	admin := e.browser()
	admin.signIn("/admin", "admin@example.com", adminPassword)
	admin.get("/admin/users/" + u.ID)
	p := admin.post("/admin/users/"+u.ID+"/factors/remove", nil, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Their second factors were removed") {
		t.Fatalf("admin removal = %d %s:\n%s", p.status, p.url, p.body)
	}
	if p = alice.signIn("/account", u.Email, userPassword); p.url != "/account" || !strings.Contains(p.body, "No second factor yet") {
		t.Fatalf("the user's sign-in after the removal = %d %s:\n%s", p.status, p.url, p.body)
	}
}

var (
	optionsRE  = regexp.MustCompile(`data-options="([^"]+)"`)
	ceremonyRE = regexp.MustCompile(`name="ceremony" value="([^"]+)"`)
)

// webauthnOptions is the options JSON a passkey form carries for pages.js.
func webauthnOptions(t *testing.T, body string) []byte {
	t.Helper()
	m := optionsRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no passkey form with options:\n%s", body)
	}
	return []byte(html.UnescapeString(m[1]))
}

// TestPagesPasskeys: a passkey added on /account (the options the page
// carries, answered by a software authenticator as pages.js would post
// it), then used as the second factor after the password, then alone;
// a replayed answer is refused. The browser test runs the same with
// Chromium's authenticator and the real script.
func TestPagesPasskeys(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	key := webauthntest.New(stack.PublicURL)
	b := e.browser()
	b.signIn("/account", u.Email, userPassword)

	p := b.post("/account/factors/passkey", url.Values{"passkey_name": {"laptop"}}, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, `data-webauthn="create"`) {
		t.Fatalf("add a passkey = %d:\n%s", p.status, p.body)
	}
	attestation, err := key.Register(webauthnOptions(t, p.body))
	if err != nil {
		t.Fatal(err)
	}
	f := formOf(p.body, "credential", string(attestation))
	if p = b.post("/account/factors/passkey/confirm", f, nil); p.status != http.StatusOK || len(codeRE.FindAllString(p.body, -1)) != 10 {
		t.Fatalf("finish the passkey = %d:\n%s", p.status, p.body)
	}
	b.post("/account/sign-out", nil, nil)

	// The second factor after the password.
	p = b.signIn("/account", u.Email, userPassword)
	assertion, err := key.Assert(webauthnOptions(t, p.body))
	if err != nil {
		t.Fatal(err)
	}
	f = formOf(p.body, "credential", string(assertion))
	f.Set("factor", "webauthn")
	if p = b.post("/account/sign-in/factor", f, nil); p.url != "/account" || !strings.Contains(p.body, "laptop") {
		t.Fatalf("password and passkey = %d %s:\n%s", p.status, p.url, p.body)
	}
	if c, _ := claimsOf(b.session().A); strings.Join(c.AMR, " ") != "pwd hwk mfa" {
		t.Errorf("amr %q", c.AMR)
	}
	b.post("/account/sign-out", nil, nil)

	// Alone, and the same answer again.
	b.get("/account")
	p = b.post("/account/sign-in/passkey", nil, nil)
	ceremony := ceremonyRE.FindStringSubmatch(p.body)
	if p.status != http.StatusOK || ceremony == nil {
		t.Fatalf("passwordless start = %d:\n%s", p.status, p.body)
	}
	if assertion, err = key.Assert(webauthnOptions(t, p.body)); err != nil {
		t.Fatal(err)
	}
	f = url.Values{"ceremony": {ceremony[1]}, "credential": {string(assertion)}}
	if p = b.post("/account/sign-in/passkey/finish", f, nil); p.url != "/account" || !strings.Contains(p.body, "Alice") {
		t.Fatalf("passwordless = %d %s:\n%s", p.status, p.url, p.body)
	}
	if c, _ := claimsOf(b.session().A); strings.Join(c.AMR, " ") != "hwk mfa" {
		t.Errorf("passwordless amr %q", c.AMR)
	}
	b.post("/account/sign-out", nil, nil)
	b.get("/account")
	f.Del("csrf") // the new page's token
	if p = b.post("/account/sign-in/passkey/finish", f, nil); p.status != http.StatusUnauthorized || b.session().A != "" {
		t.Fatalf("a replayed passwordless answer = %d", p.status)
	}
}
