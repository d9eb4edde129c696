package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/cluster"
)

// The browser tests drive Debian's headless Chromium from Go with chromedp
// (the DevTools protocol): the test toolchain stays Go only, with no npm or
// node to install, pin and audit.

// chromiumEnv names the Chromium binary; scripts/test.sh sets it
// (scripts/services.sh installs Debian's chromium when missing).
const chromiumEnv = "USERSVC_TEST_CHROMIUM"

// screenshotsEnv names a directory for screenshots of each page; unset
// means none are written.
const screenshotsEnv = "USERSVC_TEST_SCREENSHOTS"

// chromium returns the browser binary, or skips the test (fails it under
// USERSVC_TEST_REQUIRE_ALL=1) when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv(chromiumEnv)
	if bin == "" {
		bin, _ = exec.LookPath("chromium")
	}
	if bin == "" {
		if os.Getenv("USERSVC_TEST_REQUIRE_ALL") == "1" {
			t.Fatalf("no Chromium (%s unset, none on PATH) but USERSVC_TEST_REQUIRE_ALL=1: run the tests with `make test`", chromiumEnv)
		}
		t.Skipf("no Chromium: set %s or install Debian's chromium", chromiumEnv)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", chromiumEnv, bin, err)
	}
	return bin
}

// browser is one headless Chromium tab.
type browser struct {
	t       *testing.T
	ctx     context.Context
	mu      sync.Mutex
	dialogs []string // messages of the JavaScript dialogs that opened
}

// stepTimeout bounds one browser step (a navigation, a click and the page
// it loads).
const stepTimeout = 30 * time.Second

// newBrowser starts Chromium with a fresh profile; it is closed when the
// test ends. Dialogs (the delete confirmation) are accepted and recorded.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.UserDataDir(t.TempDir()),
		// Chromium puts its singleton socket directory
		// (org.chromium.Chromium.*) in TMPDIR and leaves it behind.
		chromedp.Env("TMPDIR="+t.TempDir()),
		chromedp.WindowSize(1024, 768),
		// The tests run as root in containers, where Chromium's sandbox
		// cannot start; the pages it loads are our own.
		chromedp.NoSandbox,
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first Do starts the browser; it has no timeout, which would
	// stop the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	b := &browser{t: t, ctx: ctx}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	return b
}

// do runs steps and fails the test on an error, saying what it did.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// read runs an action that returns a value.
func read[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %s: %v", what, err)
	}
	return v
}

// fill types values into the inputs named by their ids and clicks the
// button matched by the CSS selector submit.
func (b *browser) fill(what string, values map[string]string, submit string) {
	b.t.Helper()
	var steps []chromedp.Action[chromedp.Void]
	for id, v := range values {
		steps = append(steps, chromedp.Clear(chromedp.ID(id)), chromedp.SendKeys(chromedp.ID(id), v))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(submit)))
	b.do(what, steps...)
}

// text returns the visible text of the first element matching the CSS
// selector sel, once it is there.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return read(b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// waitText waits until the first element matching the CSS selector sel
// (on the page a click is loading) contains want.
func (b *browser) waitText(sel, want string) {
	b.t.Helper()
	testenv.Eventually(b.t, 20*time.Second, fmt.Sprintf("%s containing %q", sel, want), func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		txt, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return err == nil && strings.Contains(txt, want)
	})
}

// waitURL waits until the address bar contains want: after a form
// submission that lands on a page like the one it left (same h1, same
// links), nodes found before the new page replaced the old are gone.
func (b *browser) waitURL(want string) {
	b.t.Helper()
	testenv.Eventually(b.t, 20*time.Second, "the address "+want, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		loc, err := chromedp.Run(ctx, chromedp.Location())
		return err == nil && strings.Contains(loc, want)
	})
}

// waitFor waits until the page's h1 contains want.
func (b *browser) waitFor(want string) {
	b.t.Helper()
	testenv.Eventually(b.t, 20*time.Second, "a page titled "+want, func() bool {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		defer cancel()
		h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		return err == nil && strings.Contains(h1, want)
	})
}

// screenshot saves the page as name.png in $USERSVC_TEST_SCREENSHOTS
// (quality 100 makes it a PNG; below, a JPEG).
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	png := read(b, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

var linkRE = regexp.MustCompile(`https?://\S+/(reset-password|verify-email)\?token=\S+`)

// mailedLink waits for the mail with subject to addr in the dev mode's mail
// directory and returns the link in it, as a person would click it.
func mailedLink(t *testing.T, dev *cluster.Proc, addr, subject string) string {
	t.Helper()
	m := testenv.WaitMail(t, dev.Getenv("USERSVC_MAIL_DIR"), addr, subject, 10*time.Second)
	link := linkRE.FindString(m.Text)
	if link == "" {
		t.Fatalf("no link in the mail %q to %s:\n%s", subject, addr, m.Text)
	}
	return link
}

// loginStatus signs in over the JSON API and returns the status.
func loginStatus(t *testing.T, base, email, pw string) int {
	t.Helper()
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, email, pw)
	resp, err := http.Post(base+"/user/token", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// registerUser creates a user over the JSON API.
func registerUser(t *testing.T, base, email, name, pw string) {
	t.Helper()
	body := fmt.Sprintf(`{"email":%q,"password":%q,"name":%q}`, email, pw, name)
	resp, err := http.Post(base+"/user", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("register %s: %d", email, resp.StatusCode)
	}
}

const (
	browserPassword = "Tr0ub4dor&3xyz"
	browserNewPass  = "kV9#mQ2!xL-7pw"
	browserAdminPW  = "correct horse battery staple"
)

// TestBrowserResetPassword: a reset requested over HTTP, the link from the
// mail opened in Chromium, a refused weak password with the policy's
// reason next to the field, the new password set, the token gone from the
// address bar, and the new password working for a login over HTTP; the
// link then shows the expired page. Then the account page.
func TestBrowserResetPassword(t *testing.T) {
	dev, base := cluster.StartDev(t, nil)
	b := newBrowser(t)
	registerUser(t, base, "carol@example.com", "Carol", browserPassword)
	resp, err := http.Post(base+"/user/password", "application/json", strings.NewReader(`{"email":"carol@example.com"}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("reset request: %v %v", resp, err)
	}
	resp.Body.Close()
	link := mailedLink(t, dev, "carol@example.com", resetSubject)

	b.do("open the link", chromedp.Navigate(link))
	b.waitFor("Choose a new password")
	loc := read(b, "location", chromedp.Location())
	if strings.Contains(loc, "token=") {
		t.Errorf("the token is still in the address bar: %s", loc)
	}
	b.screenshot("reset-password")
	b.fill("weak password", map[string]string{"password": "password1", "password_again": "password1"}, "button[type=submit]")
	b.waitText("#password-error", "password")
	b.screenshot("reset-password-refused")
	b.fill("new password", map[string]string{"password": browserNewPass, "password_again": browserNewPass}, "button[type=submit]")
	b.waitFor("Password changed")
	b.screenshot("reset-password-done")
	if got := loginStatus(t, base, "carol@example.com", browserNewPass); got != http.StatusOK {
		t.Fatalf("login with the new password: %d", got)
	}
	if got := loginStatus(t, base, "carol@example.com", browserPassword); got != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d", got)
	}

	b.do("open the used link", chromedp.Navigate(link))
	b.waitFor("Choose a new password")
	b.fill("used link", map[string]string{"password": "an0ther-Good-pass!", "password_again": "an0ther-Good-pass!"}, "button[type=submit]")
	b.waitFor("Reset link not valid")
	b.screenshot("reset-password-expired")

	b.do("account", chromedp.Navigate(base+"/account"))
	// From the keyboard only: type, Tab to the next field, Enter submits.
	b.do("account sign-in by keyboard", chromedp.Focus(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "carol@example.com"+kb.Tab+browserNewPass+kb.Enter))
	b.waitFor("Your account")
	b.fill("rename", map[string]string{"name": "Carol Q"}, "form[action='/account'] button[type=submit]")
	b.waitText(".notice", "saved")
	if s := b.text("table"); !strings.Contains(s, "this browser") {
		t.Errorf("the sessions table does not mark this browser: %q", s)
	}
	b.screenshot("account")
}

// TestBrowserVerifyEmail: with verified addresses required, a sign-up is
// accepted (202) and its login refused until the address is confirmed;
// the link from the mail, opened in Chromium, asks for a click (opening it
// alone changes nothing), the click confirms the address, and the login
// over HTTP then works. The used link offers to mail a new one.
func TestBrowserVerifyEmail(t *testing.T) {
	dev, base := cluster.StartDev(t, map[string]string{"USERSVC_REQUIRE_VERIFIED_EMAIL": "true"})
	b := newBrowser(t)
	body := fmt.Sprintf(`{"email":"dora@example.com","password":%q,"name":"Dora"}`, browserPassword)
	resp, err := http.Post(base+"/user", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("sign-up: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := loginStatus(t, base, "dora@example.com", browserPassword); got != http.StatusForbidden {
		t.Fatalf("login before the address is confirmed: %d, want 403", got)
	}
	link := mailedLink(t, dev, "dora@example.com", verifySubject)

	b.do("open the link", chromedp.Navigate(link))
	b.waitFor("Confirm your email address")
	if loc := read(b, "location", chromedp.Location()); strings.Contains(loc, "token=") {
		t.Errorf("the token is still in the address bar: %s", loc)
	}
	if got := loginStatus(t, base, "dora@example.com", browserPassword); got != http.StatusForbidden {
		t.Errorf("login after only opening the link: %d, want 403", got)
	}
	b.screenshot("verify-email")
	b.fill("confirm", nil, "button[type=submit]")
	b.waitFor("Email address confirmed")
	b.screenshot("verify-email-done")
	if got := loginStatus(t, base, "dora@example.com", browserPassword); got != http.StatusOK {
		t.Fatalf("login after confirming: %d", got)
	}

	b.do("open the used link", chromedp.Navigate(link))
	b.fill("confirm again", nil, "button[type=submit]")
	b.waitFor("Verification link not valid")
	b.screenshot("verify-email-expired")
}

// TestBrowserAdmin: an admin signs in to /admin in Chromium, searches a
// user, disables them (whose login over HTTP is then refused), ends a
// session, and deletes a user; a name holding a script is shown as text
// and never runs.
func TestBrowserAdmin(t *testing.T) {
	dev, base := cluster.StartDev(t, nil)
	dev.Admin(t, "root@example.com", browserAdminPW)
	registerUser(t, base, "dave@example.com", "Dave", browserPassword)
	registerUser(t, base, "mallory@example.com", "<script>alert(1)</script>", browserPassword)
	b := newBrowser(t)

	b.do("admin", chromedp.Navigate(base+"/admin"))
	b.waitFor("Sign in")
	b.screenshot("admin-sign-in")
	b.fill("admin sign-in", map[string]string{"email": "root@example.com", "password": browserAdminPW}, "button[type=submit]")
	b.waitFor("Users")
	b.screenshot("admin-users")
	// On a phone-sized screen the page fits its width (the table scrolls
	// inside its own box rather than the page sideways).
	b.do("phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	if w := read(b, "page width", chromedp.Evaluate[int]("document.documentElement.scrollWidth")); w > 390 {
		t.Errorf("on a 390px screen the page is %dpx wide", w)
	}
	b.screenshot("admin-users-phone")
	b.do("desktop", chromedp.ResetViewport())
	if s := b.text("table"); !strings.Contains(s, "<script>alert(1)</script>") {
		t.Errorf("the script name is not shown as text: %q", s)
	}

	b.fill("search", map[string]string{"q": "dave"}, ".search button")
	b.waitURL("q=dave")
	b.do("open dave", chromedp.Click(`//a[text()="dave@example.com"]`))
	b.waitFor("User dave@example.com")
	b.do("disable", chromedp.SetValue(chromedp.ID("status"), "disabled"),
		chromedp.Click(chromedp.CSS("form.card button[type=submit]")))
	b.waitText(".notice", "saved")
	b.screenshot("admin-user")
	if got := loginStatus(t, base, "dave@example.com", browserPassword); got != http.StatusForbidden {
		t.Errorf("login of the disabled user: %d, want 403", got)
	}

	b.do("search mallory", chromedp.Navigate(base+"/admin?q=mallory"))
	b.do("open mallory", chromedp.Click(`//a[text()="mallory@example.com"]`))
	b.waitFor("User mallory@example.com")
	b.do("end sessions", chromedp.Click(chromedp.CSS(`form[action$="/end-sessions"] button`)))
	b.waitText(".notice", "sessions were ended")
	b.do("delete", chromedp.Click(chromedp.CSS(`form[action$="/delete"] button`)))
	b.waitText(".notice", "deleted")
	if got := loginStatus(t, base, "mallory@example.com", browserPassword); got != http.StatusUnauthorized {
		t.Errorf("login of the deleted user: %d, want 401", got)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range b.dialogs {
		if d == "1" {
			t.Error("the script in a user's name ran")
		}
	}
	if len(b.dialogs) != 1 {
		t.Errorf("dialogs %q, want only the delete confirmation", b.dialogs)
	}
}

// TestBrowserCSRF: while an admin is signed in, a page on another site
// auto-submits a form to the console that would promote a user; the post
// is refused and the user keeps their role. A direct POST with a foreign
// Origin and no token is refused too.
func TestBrowserCSRF(t *testing.T) {
	dev, base := cluster.StartDev(t, nil)
	dev.Admin(t, "root@example.com", browserAdminPW)
	registerUser(t, base, "erin@example.com", "Erin", browserPassword)
	b := newBrowser(t)
	b.do("admin", chromedp.Navigate(base+"/admin?q=erin"))
	b.fill("admin sign-in", map[string]string{"email": "root@example.com", "password": browserAdminPW}, "button[type=submit]")
	b.waitFor("Users")
	b.do("search erin", chromedp.Navigate(base+"/admin?q=erin"))
	href := read(b, "erin's page", chromedp.AttributeValue(`//a[text()="erin@example.com"]`, "href"))
	target := base + href.Value

	// Another site: "localhost" is a different site from 127.0.0.1.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><h1>Win a prize</h1>
<form id="f" method="post" action="%s"><input name="name" value="Erin"><input name="role" value="admin">
<input name="status" value="active"><input name="csrf" value="guessed"></form>
<script>document.getElementById("f").submit()</script>`, target)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	b.do("visit the other site", chromedp.Navigate(evilURL))
	b.waitFor("Request refused")
	b.screenshot("csrf-refused")

	form := url.Values{"name": {"Erin"}, "role": {"admin"}, "status": {"active"}}
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("direct foreign POST: %d, want 403", resp.StatusCode)
	}

	b.do("erin again", chromedp.Navigate(target))
	role := read(b, "role", chromedp.Value(chromedp.ID("role")))
	if role != "user" {
		t.Errorf("erin's role after the attacks: %q, want user", role)
	}
}
