package pages_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/pages"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

// wantPageHeaders checks the headers every page carries.
func wantPageHeaders(t *testing.T, what string, h http.Header) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": pages.ContentSecurityPolicy,
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
}

// Every page, signed in or not, and every form answer carries the security
// headers; the CSP has no inline script or style.
func TestPagesSecurityHeaders(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	anon := e.browser()
	for _, path := range []string{"/reset-password?token=abc", "/reset-password", "/verify-email?token=abc", "/verify-email", "/admin", "/account"} {
		p := anon.get(path)
		if p.status != http.StatusOK {
			t.Errorf("GET %s = %d", path, p.status)
		}
		wantPageHeaders(t, "GET "+path, p.header)
	}
	if strings.Contains(pages.ContentSecurityPolicy, "unsafe-inline") {
		t.Error("the CSP allows inline code")
	}
	admin := e.browser()
	wantPageHeaders(t, "POST /admin/sign-in", admin.signIn("/admin", "admin@example.com", adminPassword).header)
	for _, path := range []string{"/admin", "/admin?q=ali", "/admin/users/" + u.ID} {
		p := admin.get(path)
		if p.status != http.StatusOK {
			t.Errorf("GET %s = %d", path, p.status)
		}
		wantPageHeaders(t, "GET "+path, p.header)
	}
	wantPageHeaders(t, "POST refused", anon.post("/admin/sign-in", url.Values{"csrf": {"forged"}}, nil).header)
	account := e.browser()
	account.signIn("/account", "alice@example.com", userPassword)
	wantPageHeaders(t, "GET /account signed in", account.get("/account").header)
	css := anon.get("/static/style.css")
	if css.status != http.StatusOK || css.header.Get("Content-Security-Policy") == "" ||
		css.header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(css.header.Get("Content-Type"), "text/css") {
		t.Errorf("GET /static/style.css = %d %v", css.status, css.header)
	}
}

// A mistyped page address is a page saying so, with the security headers;
// an unknown path outside the pages stays the API's JSON 404.
func TestPagesNotFound(t *testing.T) {
	e := newEnv(t, pages.Config{})
	b := e.browser()
	for _, path := range []string{"/admin/user/x", "/admin/", "/account/settings", "/reset-password/x", "/verify-email/x/y"} {
		p := b.get(path)
		if p.status != http.StatusNotFound || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") ||
			!strings.Contains(p.body, "Page not found") {
			t.Errorf("GET %s = %d %s %.80q, want the 404 page", path, p.status, p.header.Get("Content-Type"), p.body)
		}
		wantPageHeaders(t, "GET "+path, p.header)
	}
	for _, path := range []string{"/administrator", "/accounts", "/static/nope.css", "/nope"} {
		p := b.get(path)
		if p.status != http.StatusNotFound || strings.Contains(p.body, "Page not found") {
			t.Errorf("GET %s = %d %.80q, want a plain 404, not the page", path, p.status, p.body)
		}
	}
	if p := b.get("/nope"); !strings.HasPrefix(p.header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /nope: Content-Type %q, want the API's JSON error", p.header.Get("Content-Type"))
	}
}

// postRoutes are every form of the pages, with a valid body each.
func postRoutes(userID string) map[string]url.Values {
	return map[string]url.Values{
		"/reset-password":                            {"token": {"x"}, "password": {"a"}, "password_again": {"a"}},
		"/reset-password/request":                    {"email": {"alice@example.com"}},
		"/verify-email":                              {"token": {"x"}},
		"/verify-email/request":                      {"email": {"alice@example.com"}},
		"/admin/sign-in":                             {"email": {"admin@example.com"}, "password": {adminPassword}},
		"/admin/sign-out":                            {},
		"/admin/users/" + userID:                     {"name": {"Mallory"}, "role": {"admin"}, "status": {"active"}},
		"/admin/users/" + userID + "/delete":         {},
		"/admin/users/" + userID + "/end-sessions":   {},
		"/account":                                   {"name": {"Mallory"}},
		"/account/sign-in":                           {"email": {"alice@example.com"}, "password": {userPassword}},
		"/account/sign-out":                          {},
		"/account/end-sessions":                      {},
		"/account/sign-in/factor":                    {"ticket": {"x"}, "factor": {"totp"}, "code": {"123456"}},
		"/admin/sign-in/factor":                      {"ticket": {"x"}, "factor": {"totp"}, "code": {"123456"}},
		"/account/factors/totp":                      {"factor_name": {"phone"}},
		"/account/factors/confirm":                   {"factor_id": {"x"}, "code": {"123456"}},
		"/account/recovery-codes":                    {},
		"/account/factors/x/remove":                  {},
		"/admin/users/" + userID + "/factors/remove": {},
		"/account/factors/passkey":                   {"passkey_name": {"laptop"}},
		"/account/factors/passkey/confirm":           {"factor_id": {"x"}, "credential": {"{}"}},
		"/account/sign-in/passkey":                   {},
		"/account/sign-in/passkey/finish":            {"ceremony": {"x"}, "credential": {"{}"}},
		"/admin/sign-in/passkey":                     {},
		"/admin/sign-in/passkey/finish":              {"ceremony": {"x"}, "credential": {"{}"}},
	}
}

// Every form is refused without its CSRF token, with another token, and
// from another origin even with the right token; the signed-in admin's
// data is untouched.
func TestPagesCSRF(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	b := e.browser()
	b.signIn("/admin", "admin@example.com", adminPassword)
	b.get("/admin")
	routes := postRoutes(u.ID)
	if n := countPostRoutes(t); n != len(routes) {
		t.Fatalf("the pages have %d POST routes, the test knows %d: add the new one", n, len(routes))
	}
	for path, form := range routes {
		for _, tc := range []struct {
			name string
			csrf string
			hdr  map[string]string
		}{
			{"no token", "", nil},
			{"wrong token", "AAAAAAAAAAAAAAAAAAAAAAAAAA", nil},
			{"cross-site", b.csrf, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}},
			{"same-site sibling", b.csrf, map[string]string{"Sec-Fetch-Site": "same-site"}},
			{"foreign Origin, no Sec-Fetch-Site", b.csrf, map[string]string{"Sec-Fetch-Site": "", "Origin": "http://evil.example"}},
		} {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			f.Set("csrf", tc.csrf)
			if p := b.post(path, f, tc.hdr); p.status != http.StatusForbidden || !strings.Contains(p.body, "Request refused") {
				t.Errorf("POST %s, %s = %d, want 403", path, tc.name, p.status)
			}
		}
	}
	got, err := e.st.Service.Get(context.Background(), user.SystemActor, u.ID)
	if err != nil || got.Name != "Alice" || got.Role != user.RoleUser {
		t.Fatalf("after refused posts: %+v, %v", got, err)
	}
	// The same form with its token from this origin goes through.
	b.get("/admin/users/" + u.ID)
	if p := b.post("/admin/users/"+u.ID, url.Values{"name": {"Alice B"}, "role": {"user"}, "status": {"active"}},
		map[string]string{"Origin": e.url}); p.status != http.StatusOK || !strings.Contains(p.body, "Changes saved") {
		t.Fatalf("same-origin post = %d %s", p.status, p.body)
	}
}

// countPostRoutes counts the pages' POST routes.
func countPostRoutes(t *testing.T) int {
	t.Helper()
	web, err := pages.New(pages.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	web.Mount(func(method, _ string, _ http.Handler) {
		if method == http.MethodPost {
			n++
		}
	})
	return n
}

// The session cookie is HttpOnly and SameSite=Strict, lives the idle
// timeout, and under an https public URL is Secure with the __Host- prefix.
func TestPagesCookies(t *testing.T) {
	for _, tc := range []struct {
		public string
		name   string
		secure bool
	}{
		{"", "usersvc_session", false},
		{"https://id.example.com", "__Host-usersvc_session", true},
	} {
		e := newEnv(t, pages.Config{PublicURL: tc.public, IdleTimeout: 10 * time.Minute})
		req, _ := http.NewRequest("GET", e.url+"/admin", nil)
		b := e.browser()
		b.read(b.c.Do(req))
		form := url.Values{"email": {"admin@example.com"}, "password": {adminPassword}, "csrf": {b.csrf}}
		req, _ = http.NewRequest("POST", e.url+"/admin/sign-in", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// The jar does not send Secure cookies over http: copy them over.
		csrfName := strings.TrimSuffix(tc.name, "session") + "csrf"
		req.AddCookie(&http.Cookie{Name: csrfName, Value: b.csrf})
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var sess *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == tc.name {
				sess = c
			}
		}
		if resp.StatusCode != http.StatusSeeOther || sess == nil {
			t.Fatalf("%q: sign-in = %d, cookies %v", tc.public, resp.StatusCode, resp.Cookies())
		}
		if !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode || sess.Secure != tc.secure ||
			sess.MaxAge != 600 || sess.Path != "/" {
			t.Errorf("%q: session cookie %+v", tc.public, sess)
		}
	}
}

// A session whose access token has expired has been idle at least that
// long: the page asks to sign in again and its refresh token is revoked.
func TestPagesIdleSessionEnds(t *testing.T) {
	e := newEnv(t, pages.Config{})
	b := e.browser()
	b.signIn("/admin", "admin@example.com", adminPassword)
	s := b.session()
	s.A = editClaims(s.A, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() })
	b.setSession(s)
	if p := b.get("/admin"); !strings.Contains(p.body, `action="/admin/sign-in"`) {
		t.Fatalf("idle session still signed in: %s", p.body)
	}
	if b.cookie("usersvc_session") != nil {
		t.Error("the session cookie was not cleared")
	}
	if _, err := e.st.Service.Refresh(context.Background(), s.R); !errors.Is(err, user.ErrInvalidToken) {
		t.Errorf("refresh token of the idle session: %v, want revoked", err)
	}
}

// Two tabs whose requests cross a rotation both present the session's
// refresh token: the first rotates it, the second reuses it. Within the
// service's reuse grace both stay signed in; without one (strict reuse
// detection) the second is signed out.
func TestPagesTwoTabsCrossingARotation(t *testing.T) {
	for _, tc := range []struct {
		grace    time.Duration
		signedIn bool
	}{{10 * time.Second, true}, {0, false}} {
		clock := testenv.NewClock(time.Now())
		e := newEnvWith(t, pages.Config{Now: clock.Now}, user.Config{RefreshReuseGrace: tc.grace})
		first := e.browser()
		first.signIn("/admin", "admin@example.com", adminPassword)
		s := first.session()
		// Two minutes later the next request rotates the tokens.
		clock.Add(2 * time.Minute)
		second := e.browser()
		second.setSession(s) // sent before the first tab's answer replaced the cookie
		if p := first.get("/admin"); strings.Contains(p.body, `action="/admin/sign-in"`) {
			t.Fatalf("grace %v: the first tab was signed out: %s", tc.grace, p.body)
		}
		p := second.get("/admin")
		if in := !strings.Contains(p.body, `action="/admin/sign-in"`); in != tc.signedIn {
			t.Errorf("grace %v: the second tab signed in %v, want %v", tc.grace, in, tc.signedIn)
		}
		for name, b := range map[string]*browser{"first": first, "second": second} {
			if got := b.session().R; tc.signedIn && (got == "" || got == s.R) {
				t.Errorf("grace %v: the %s tab's session was not rotated", tc.grace, name)
			}
		}
		if tc.signedIn && first.session().R == second.session().R {
			t.Errorf("grace %v: both tabs hold the same refresh token", tc.grace)
		}
	}
}

// Names are attacker-controlled: a script in one is shown as text.
func TestPagesEscapeNames(t *testing.T) {
	e := newEnv(t, pages.Config{})
	evil := `<script>alert(1)</script>`
	u := e.createUser("mallory@example.com", evil)
	b := e.browser()
	b.signIn("/admin", "admin@example.com", adminPassword)
	for _, path := range []string{"/admin?q=mallory", "/admin/users/" + u.ID} {
		p := b.get(path)
		if strings.Contains(p.body, evil) || !strings.Contains(p.body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("GET %s does not escape the name:\n%s", path, p.body)
		}
	}
	m := e.browser()
	m.signIn("/account", "mallory@example.com", userPassword)
	if p := m.get("/account"); strings.Contains(p.body, evil) {
		t.Errorf("/account does not escape the name")
	}
}

// The page sign-in draws on the same per-IP budget as POST /user/token
// (the key the API's middleware uses), and a non-admin cannot sign in to
// the admin console.
func TestPagesSignIn(t *testing.T) {
	e := newEnv(t, pages.Config{Limits: map[ratelimit.Action]ratelimit.Limiter{
		ratelimit.SignIn: ratelimit.NewLocal(ratelimit.Rule{Limit: 4, Window: time.Minute})}})
	e.createUser("alice@example.com", "Alice")
	resp, err := http.Post(e.url+"/user/token", "application/json",
		strings.NewReader(`{"email":"alice@example.com","password":"`+userPassword+`"}`))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("API login: %v %v", resp, err)
	}
	resp.Body.Close()
	b := e.browser()
	if p := b.signIn("/admin", "alice@example.com", userPassword); p.status != http.StatusForbidden ||
		!strings.Contains(p.body, "not an administrator") || b.cookie("usersvc_session") != nil {
		t.Errorf("a user's admin sign-in = %d", p.status)
	}
	if p := b.signIn("/account", "alice@example.com", "wrong password"); p.status != http.StatusUnauthorized ||
		!strings.Contains(p.body, "Invalid email or password") {
		t.Errorf("wrong password = %d %s", p.status, p.body)
	}
	if p := b.signIn("/account", "alice@example.com", userPassword); p.status != http.StatusOK || p.url != "/account" ||
		!strings.Contains(p.body, "Sign out everywhere") {
		t.Errorf("sign-in = %d at %s", p.status, p.url)
	}
	if p := b.signIn("/account", "alice@example.com", userPassword); p.status != http.StatusTooManyRequests ||
		p.header.Get("Retry-After") == "" {
		t.Errorf("fifth sign-in in a minute (one over the API) = %d, want 429 with Retry-After", p.status)
	}
}

// The reset page: the policy's own reasons next to the field, a mismatch,
// the used-link page with its request form, and success.
func TestPagesResetPassword(t *testing.T) {
	e := newEnv(t, pages.Config{})
	e.createUser("alice@example.com", "Alice")
	if err := e.st.Service.CreatePasswordReset(context.Background(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	tok := mailToken(t, e.st.MailDir, "alice@example.com", resetSubject)
	b := e.browser()
	b.get("/reset-password?token=" + url.QueryEscape(tok))
	for _, tc := range []struct{ pw, again, want string }{
		{"short", "short", `id="password-error" role="alert"`},
		{"alice@example.com-horse", "alice@example.com-horse", "password-error"},
		{"kV9#mQ2!xL-7pw", "kV9#mQ2!xL-7pX", `id="password_again-error"`},
	} {
		p := b.post("/reset-password", url.Values{"token": {tok}, "password": {tc.pw}, "password_again": {tc.again}}, nil)
		if p.status != http.StatusBadRequest || !strings.Contains(p.body, tc.want) ||
			!strings.Contains(p.body, `aria-describedby="`) {
			t.Errorf("password %q = %d, want 400 with %s:\n%s", tc.pw, p.status, tc.want, p.body)
		}
	}
	p := b.post("/reset-password", url.Values{"token": {tok}, "password": {"kV9#mQ2!xL-7pw"}, "password_again": {"kV9#mQ2!xL-7pw"}}, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "Your password has been changed") {
		t.Fatalf("reset = %d %s", p.status, p.body)
	}
	if _, err := e.st.Service.Auth(context.Background(), "alice@example.com", "kV9#mQ2!xL-7pw"); err != nil {
		t.Errorf("sign-in with the new password: %v", err)
	}
	p = b.post("/reset-password", url.Values{"token": {tok}, "password": {"an0ther-Good-pass!"}, "password_again": {"an0ther-Good-pass!"}}, nil)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `action="/reset-password/request"`) {
		t.Fatalf("used link = %d %s", p.status, p.body)
	}
	if p = b.post("/reset-password/request", url.Values{"email": {"alice@example.com"}}, nil); p.status != http.StatusOK ||
		!strings.Contains(p.body, "new reset link is on its way") {
		t.Errorf("new link request = %d", p.status)
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Error("the reset token is in the log")
	}
}

// mailToken returns the token of the newest mail with subject to addr.
func mailToken(t *testing.T, dir, addr, subject string) string {
	t.Helper()
	return mail.ResetToken(testenv.WaitMail(t, dir, addr, subject, 5*time.Second).Text)
}

// Subjects of the mails the tests read.
const (
	resetSubject  = "Reset your password"
	verifySubject = "Confirm your email address"
)

var (
	controlRE = regexp.MustCompile(`<(input|select|textarea)\b[^>]*>`)
	idRE      = regexp.MustCompile(`\bid="([^"]+)"`)
)

// Every visible form control on every page has a label, and the pages
// declare a language and a viewport (readable on a phone).
func TestPagesLabels(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	anon, admin, account := e.browser(), e.browser(), e.browser()
	admin.signIn("/admin", "admin@example.com", adminPassword)
	account.signIn("/account", "alice@example.com", userPassword)
	pagesSeen := map[string]string{
		"reset":         anon.get("/reset-password?token=abc").body,
		"reset-expired": anon.get("/reset-password").body,
		"verify":        anon.get("/verify-email?token=abc").body,
		"verify-used":   anon.get("/verify-email").body,
		"sign-in":       anon.get("/admin").body,
		"admin":         admin.get("/admin").body,
		"admin-user":    admin.get("/admin/users/" + u.ID).body,
		"account":       account.get("/account").body,
	}
	for name, body := range pagesSeen {
		checkLabels(t, name, body)
	}
}

// checkLabels fails t when the page has no language or viewport, or a
// visible control without a label.
func checkLabels(t *testing.T, name, body string) {
	t.Helper()
	if !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, `name="viewport"`) {
		t.Errorf("%s: no lang or viewport", name)
	}
	for _, control := range controlRE.FindAllString(body, -1) {
		if strings.Contains(control, `type="hidden"`) {
			continue
		}
		m := idRE.FindStringSubmatch(control)
		if m == nil || !strings.Contains(body, `<label for="`+m[1]+`"`) {
			t.Errorf("%s: control without a label: %s", name, control)
		}
	}
}

// The account page changes the name, the email (with the current
// password, which the service asks for) and the password; a new password
// ends the sessions, this one too.
func TestPagesAccount(t *testing.T) {
	e := newEnv(t, pages.Config{})
	u := e.createUser("alice@example.com", "Alice")
	b := e.browser()
	b.signIn("/account", "alice@example.com", userPassword)
	if p := b.post("/account", url.Values{"email": {"alice2@example.com"}}, nil); p.status != http.StatusBadRequest ||
		!strings.Contains(p.body, `id="current_password-error"`) {
		t.Errorf("email change without the current password = %d", p.status)
	}
	// A new address waits for its confirmation; the current one stays the
	// login until then.
	if p := b.post("/account", url.Values{"name": {"Alice B"}, "email": {"alice2@example.com"},
		"current_password": {userPassword}}, nil); p.status != http.StatusOK || !strings.Contains(p.body, "link to confirm it") ||
		!strings.Contains(p.body, "alice2@example.com") {
		t.Fatalf("name and email change = %d %s", p.status, p.body)
	}
	got, err := e.st.Service.Get(context.Background(), user.SystemActor, u.ID)
	if err != nil || got.Name != "Alice B" || got.Email != "alice@example.com" || got.PendingEmail != "alice2@example.com" {
		t.Fatalf("after the change: %+v, %v", got, err)
	}
	tok := mailToken(t, e.st.MailDir, "alice2@example.com", verifySubject)
	b.get("/verify-email?token=" + url.QueryEscape(tok))
	if p := b.post("/verify-email", url.Values{"token": {tok}}, nil); p.status != http.StatusOK {
		t.Fatalf("confirming the new address = %d %s", p.status, p.body)
	}
	const newPW = "kV9#mQ2!xL-7pw"
	p := b.post("/account", url.Values{"password": {newPW}, "password_again": {newPW}, "current_password": {userPassword}}, nil)
	if p.status != http.StatusOK || !strings.Contains(p.body, "sessions ended") {
		t.Fatalf("password change = %d %s", p.status, p.body)
	}
	if p := b.get("/account"); !strings.Contains(p.body, `action="/account/sign-in"`) {
		t.Error("still signed in after the password change")
	}
	if _, err := e.st.Service.Auth(context.Background(), "alice2@example.com", newPW); err != nil {
		t.Errorf("sign-in with the new password: %v", err)
	}
}

// The verification page: opening the link changes nothing (mail scanners
// open links too); the button confirms; a used link offers a new one; the
// token is never logged.
func TestPagesVerifyEmail(t *testing.T) {
	e := newEnv(t, pages.Config{})
	ctx := context.Background()
	u, err := e.st.Service.Create(ctx, user.Actor{}, user.CreateInput{Email: "bob@example.com", Password: userPassword, Name: "Bob"})
	if err != nil {
		t.Fatal(err)
	}
	tok := mailToken(t, e.st.MailDir, "bob@example.com", verifySubject)
	b := e.browser()
	p := b.get("/verify-email?token=" + url.QueryEscape(tok))
	if p.status != http.StatusOK || !strings.Contains(p.body, `action="/verify-email"`) || !strings.Contains(p.body, `name="token"`) {
		t.Fatalf("verification page = %d %s", p.status, p.body)
	}
	if got, _ := e.st.Service.Get(ctx, user.SystemActor, u.ID); got.EmailVerified {
		t.Fatal("opening the link verified the address: a link scanner would do the same")
	}
	if p := b.post("/verify-email", url.Values{"token": {tok}}, nil); p.status != http.StatusOK || !strings.Contains(p.body, "is confirmed") {
		t.Fatalf("confirm = %d %s", p.status, p.body)
	}
	if got, _ := e.st.Service.Get(ctx, user.SystemActor, u.ID); !got.EmailVerified {
		t.Error("the address is not verified after confirming")
	}
	p = b.post("/verify-email", url.Values{"token": {tok}}, nil)
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, `action="/verify-email/request"`) {
		t.Fatalf("used link = %d %s", p.status, p.body)
	}
	if p := b.get("/verify-email"); !strings.Contains(p.body, `action="/verify-email/request"`) {
		t.Errorf("a link without a token = %d, want the page that mails a new one", p.status)
	}
	if p := b.post("/verify-email/request", url.Values{"email": {"nobody@example.com"}}, nil); p.status != http.StatusOK ||
		!strings.Contains(p.body, "new link is on its way") {
		t.Errorf("new link request = %d %s", p.status, p.body)
	}
	if strings.Contains(e.logs.String(), tok) {
		t.Error("the verification token is in the log")
	}
}

// A session cookie whose access token was edited by hand (here: an expiry
// pushed into the future and an issue time old enough to ask for a
// refresh) is refused, not refreshed: only values the service verified
// decide a page session.
func TestPagesEditedSessionRefused(t *testing.T) {
	e := newEnv(t, pages.Config{})
	b := e.browser()
	b.signIn("/admin", "admin@example.com", adminPassword)
	s := b.session()
	s.A = editClaims(s.A, func(c map[string]any) {
		c["iat"] = time.Now().Add(-10 * time.Minute).Unix()
		c["exp"] = time.Now().Add(time.Hour).Unix()
	})
	b.setSession(s)
	if p := b.get("/admin"); !strings.Contains(p.body, `action="/admin/sign-in"`) {
		t.Fatalf("an edited session cookie still signed in: %d", p.status)
	}
	if b.cookie("usersvc_session") != nil {
		t.Error("the edited session cookie was not cleared")
	}
}

// The double-submit check wants a token of the full random length: a
// short cookie copied into the form, with no Sec-Fetch-Site or Origin to
// tell a browser's request apart, is refused.
func TestPagesCSRFShortToken(t *testing.T) {
	e := newEnv(t, pages.Config{})
	b := e.browser()
	b.get("/reset-password")
	u, _ := url.Parse(e.url)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "usersvc_csrf", Value: "x", Path: "/"}})
	if p := b.post("/reset-password/request", url.Values{"email": {"a@example.com"}, "csrf": {"x"}}, map[string]string{"Sec-Fetch-Site": ""}); p.status != http.StatusForbidden {
		t.Fatalf("a 1-character token = %d, want 403", p.status)
	}
}

// The "mail me a new link" forms spend the client's budget of the API
// route they stand for (POST /user/password, POST /user/verification):
// one request through the API and two forms use up a budget of three, and
// the fourth form is refused with 429, the page and a Retry-After.
func TestPagesMailFormsLimited(t *testing.T) {
	limits := map[ratelimit.Action]ratelimit.Limiter{}
	for _, a := range []ratelimit.Action{ratelimit.ResetRequest, ratelimit.VerificationResend} {
		limits[a] = ratelimit.NewLocal(ratelimit.Rule{Limit: 3, Window: time.Minute})
	}
	e := newEnv(t, pages.Config{Limits: limits})
	for _, door := range []struct{ api, form string }{
		{"/user/password", mail.ResetPath + "/request"},
		{"/user/verification", mail.VerifyPath + "/request"},
	} {
		resp, err := http.Post(e.url+door.api, "application/json", strings.NewReader(`{"email":"x@example.com"}`))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST %s: %v %v", door.api, resp, err)
		}
		resp.Body.Close()
		b := e.browser()
		b.get(door.form[:len(door.form)-len("/request")])
		for i := range 3 {
			p := b.post(door.form, url.Values{"email": {"x@example.com"}}, nil)
			if limited := p.status == http.StatusTooManyRequests && p.header.Get("Retry-After") != ""; limited != (i == 2) {
				t.Errorf("POST %s, form %d after one API request: %d", door.form, i+1, p.status)
			}
		}
	}
}
