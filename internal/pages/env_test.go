package pages_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/pages"
	"github.com/usersvc/usersvc/internal/rpc"
	"github.com/usersvc/usersvc/internal/telemetry"
	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/testenv/stack"
	"github.com/usersvc/usersvc/internal/user"
)

// Passwords that pass password.DefaultPolicy.
const (
	adminPassword = "correct horse battery staple"
	userPassword  = "Tr0ub4dor&3xyz"
)

// env is the real stack (SQLite, go-micro over an in-memory registry, the
// API with the pages mounted) in one process.
type env struct {
	t     *testing.T
	st    *stack.Stack
	url   string
	admin *user.User
	logs  *testenv.LogBuffer
}

func newEnv(t *testing.T, cfg pages.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, user.Config{})
}

// newEnvWith is newEnv on a user service with the rules rules.
func newEnvWith(t *testing.T, cfg pages.Config, rules user.Config) *env {
	t.Helper()
	logs := &testenv.LogBuffer{}
	log := telemetry.NewJSONLogger(logs, slog.LevelDebug, "user.api")
	st := stack.New(t, stack.Options{Logger: log, Config: rules})
	reg := rpc.NewMemoryRegistry()
	srv, err := rpc.StartUserServer(rpc.ServerConfig{Address: "127.0.0.1:0", Registry: reg, GracePeriod: time.Second},
		// As the app wires it: the API on loopback spends the budgets at its
		// own door and is not limited again at the port.
		rpc.NewHandler(st.Service, st.Keys.JWKS, rpc.ClientLimits{Limits: cfg.Limits,
			Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}))
	if err != nil {
		t.Fatalf("start rpc server: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	users := rpc.NewUsers(rpc.ClientConfig{Registry: reg, Timeout: 10 * time.Second})
	hs := httptest.NewUnstartedServer(nil)
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + hs.Listener.Addr().String()
	}
	cfg.ClientIP = httpapi.ClientIP
	web, err := pages.New(cfg, users, log)
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.Config{Mount: web.Mount, NotFound: web.NotFound}
	// As the app wires it: one limiter per action for the API's route and
	// the pages' form.
	for action, l := range cfg.Limits {
		method, path, _ := strings.Cut(string(action), " ")
		api.RateLimits = append(api.RateLimits, httpapi.RateLimit{Method: method, Path: path, PerIP: l})
	}
	hs.Config.Handler = httpapi.New(api, users, log)
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	admin, err := st.Service.Create(context.Background(), user.SystemActor, user.CreateInput{Email: "admin@example.com",
		Password: adminPassword, Name: "Admin", Role: user.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, st: st, url: hs.URL, admin: admin, logs: logs}
}

// createUser registers a plain user.
func (e *env) createUser(email, name string) *user.User {
	e.t.Helper()
	u, err := e.st.Service.Create(context.Background(), user.SystemActor,
		user.CreateInput{Email: email, Password: userPassword, Name: name})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// browser is an HTTP client with a cookie jar that fills in forms like a
// person would: the CSRF token comes from the page the form is on.
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string // from the last page read
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, c: &http.Client{Jar: jar}}
}

type page struct {
	status int
	header http.Header
	body   string
	url    string
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) read(resp *http.Response, err error) page {
	b.t.Helper()
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfRE.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body), url: resp.Request.URL.Path}
}

func (b *browser) get(path string) page {
	b.t.Helper()
	return b.read(b.c.Get(b.e.url + path))
}

// post sends a form as the page's own form would (with its CSRF token and
// the browser's same-origin header); hdr adds or overrides headers.
func (b *browser) post(path string, form url.Values, hdr map[string]string) page {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return b.read(b.c.Do(req))
}

// signIn signs in to area ("/admin" or "/account").
func (b *browser) signIn(area, email, pw string) page {
	b.t.Helper()
	b.get(area)
	return b.post(area+"/sign-in", url.Values{"email": {email}, "password": {pw}}, nil)
}

func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.e.url)
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// sessionCookie is the content of the pages' session cookie.
type sessionCookie struct {
	A string `json:"a"` // access token
	R string `json:"r"` // refresh token
}

// session reads the browser's session cookie.
func (b *browser) session() sessionCookie {
	b.t.Helper()
	var s sessionCookie
	c := b.cookie("usersvc_session")
	if c == nil {
		return s
	}
	raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
	if err := json.Unmarshal(raw, &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// setSession replaces the browser's session cookie with s.
func (b *browser) setSession(s sessionCookie) {
	raw, _ := json.Marshal(s)
	u, _ := url.Parse(b.e.url)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "usersvc_session", Value: base64.RawURLEncoding.EncodeToString(raw), Path: "/"}})
}

// editClaims rewrites the claims of an access token as the pages read them
// (its signature no longer matches, which only the API would notice).
func editClaims(access string, edit func(claims map[string]any)) string {
	parts := strings.Split(access, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	_ = json.Unmarshal(payload, &claims)
	edit(claims)
	payload, _ = json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}
