// Package pages is the small server-rendered web interface of the user
// service: the pages the password-reset and verification mails link to, a
// self-service
// account page and an admin console. It is plain html/template over
// net/http, embedded in the binary, and works without JavaScript (every
// action is a form post) except passkeys, whose forms pages.js hands to
// the browser's WebAuthn; the API mounts its routes (httpapi.Config.Mount).
//
// The pages hold no rules of their own. Every action is one call of the
// same Users methods the JSON API makes, with the signed-in person's access
// token in the context (reqmeta), so the service decides who may do what
// exactly as it does for an API client.
//
// Security model (docs/design.md has the reasoning):
//   - The session is the person's access and refresh token, in an HttpOnly,
//     SameSite=Strict cookie (Secure and __Host- prefixed when the public
//     URL is https). No server-side session store: any API replica can serve
//     any request, and ending the session is revoking the refresh token.
//   - Idle timeout: the cookie lives IdleTimeout from the last request, and
//     the server refuses a session whose access token the service does not
//     verify (expired, edited, revoked); active use refreshes (rotates) the
//     tokens, and the service ends an idle or too old refresh family.
//   - CSRF: a double-submit token (random cookie, copied into every form) and
//     a same-origin check on Sec-Fetch-Site / Origin for every POST.
//   - Strict headers on every answer (see setHeaders).
package pages

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/mail"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
)

// Users is the user service as the pages need it; rpc.Users implements it.
// The caller's access token travels in the context (reqmeta).
type Users interface {
	Get(ctx context.Context, id string) (*user.User, error)
	List(ctx context.Context, in user.ListInput) (*user.Page, error)
	Update(ctx context.Context, id string, in user.UpdateInput) (*user.User, error)
	Delete(ctx context.Context, id string) error
	Auth(ctx context.Context, email, password string) (*user.Session, error)
	Refresh(ctx context.Context, refresh string) (*user.Session, error)
	Revoke(ctx context.Context, refresh, access string) error
	Validate(ctx context.Context, access string) error
	CreatePasswordReset(ctx context.Context, email string) error
	ResetPassword(ctx context.Context, token, password string) error
	Sessions(ctx context.Context, id string) ([]user.SessionInfo, error)
	EndSessions(ctx context.Context, id string) error
	VerifyEmail(ctx context.Context, token string) error
	ResendVerification(ctx context.Context, email string) error

	// The second factor (package comment of internal/user/mfa).
	CompleteMFA(ctx context.Context, ticket, kind, code string) (*user.Session, error)
	EnrolTOTP(ctx context.Context, id, name string) (*user.TOTPEnrolment, error)
	ConfirmTOTP(ctx context.Context, id, factorID, code string) ([]string, error)
	Factors(ctx context.Context, id string) ([]user.FactorInfo, int, error)
	RegenerateRecoveryCodes(ctx context.Context, id string) ([]string, error)
	RemoveFactor(ctx context.Context, id, factorID string) error
	RemoveFactors(ctx context.Context, id string) error
	BeginPasskey(ctx context.Context, id, name string) (*user.PasskeyRegistration, error)
	FinishPasskey(ctx context.Context, id, factorID string, credential []byte) ([]string, error)
	BeginPasswordless(ctx context.Context) (*user.PasswordlessChallenge, error)
	CompletePasswordless(ctx context.Context, ceremony string, credential []byte) (*user.Session, error)
}

// Config tunes the pages.
type Config struct {
	// PublicURL is the origin people reach the service at (USERSVC_PUBLIC_URL).
	// Form posts must come from it, and https makes the cookies Secure.
	PublicURL string
	// IdleTimeout ends a session unused for this long. Default 15 minutes,
	// the access token lifetime (USERSVC_ACCESS_TTL), which bounds it on the
	// server side too.
	IdleTimeout time.Duration
	// RPCTimeout bounds each call to the user service. Default 5s.
	RPCTimeout time.Duration
	// Limits are the per-client budgets of the anonymous forms: sign-in
	// (ratelimit.SignIn) and "mail me a new link" (ResetRequest,
	// VerificationResend); an action without one is unlimited here.
	Limits map[ratelimit.Action]ratelimit.Limiter
	// ClientIP returns the client's address of a request (the API's view,
	// which believes only trusted proxies); nil means the TCP peer.
	ClientIP func(*http.Request) string
	// RequireAdminMFA mirrors the service's USERSVC_REQUIRE_ADMIN_MFA: an
	// administrator who signs in to the console without a second factor
	// is sent to their account page to enrol one, since the service gives
	// their session no admin powers.
	RequireAdminMFA bool
	// PageSize is the admin list's page size. Default 20.
	PageSize int
	// Now is the clock that decides when a session's tokens are rotated;
	// nil = time.Now. Tests move it instead of editing a token's iat, which
	// the pages (rightly) refuse.
	Now func() time.Time
}

// Pages serves the pages.
type Pages struct {
	cfg    Config
	users  Users
	log    *slog.Logger
	secure bool   // the public URL is https
	origin string // scheme://host of the public URL
	tmpl   map[string]*template.Template
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// StaticPrefix is where the stylesheet and script are served.
const StaticPrefix = "/static/"

// Paths are the path prefixes the pages own; the gateway and the edge must
// send them to the API (app.GatewayRoutes).
var Paths = []string{mail.ResetPath, "/admin", "/account", mail.VerifyPath, StaticPrefix}

// New returns the pages. log nil means slog.Default().
func New(cfg Config, users Users, log *slog.Logger) (*Pages, error) {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 15 * time.Minute
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = 5 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	p := &Pages{cfg: cfg, users: users, log: log}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		p.secure = u.Scheme == "https"
		p.origin = u.Scheme + "://" + u.Host
	}
	var err error
	if p.tmpl, err = parseTemplates(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseTemplates parses each page together with the shared layout.
func parseTemplates() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		out[base] = t
	}
	return out, nil
}

// Mount adds the pages' routes with add (httpapi.Config.Mount). Paths are
// gin patterns.
func (p *Pages) Mount(add func(method, path string, h http.Handler)) {
	for _, r := range p.routes() {
		add(r.method, r.path, r.handler)
	}
}

// NotFound answers a path under the pages' prefixes that no page serves
// with a page, not the API's JSON (httpapi.Config.NotFound); nil for any
// other path. The static files keep the file server's plain 404.
func (p *Pages) NotFound(path string) http.Handler {
	for _, prefix := range Paths {
		if prefix == StaticPrefix || !(path == prefix || strings.HasPrefix(path, prefix+"/")) {
			continue
		}
		return p.withHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p.renderStatus(w, r, http.StatusNotFound, "error", pageData{Title: "Page not found",
				Message: "There is no page at this address. Check the link, or start again from one of these pages."})
		}))
	}
	return nil
}

type route struct {
	method, path string
	handler      http.Handler
}

func (p *Pages) routes() []route {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(StaticPrefix, http.FileServerFS(static))
	h := func(f http.HandlerFunc) http.Handler { return p.withHeaders(f) }
	post := func(f http.HandlerFunc) http.Handler { return p.withHeaders(p.checkCSRF(f)) }
	return []route{
		{"GET", StaticPrefix + "*file", p.withStaticHeaders(files)},
		// The reset link: the token goes into the form, which posts it.
		{"GET", mail.ResetPath, h(p.linkForm("reset", "Choose a new password", "reset-expired", "Reset link not valid"))},
		{"POST", mail.ResetPath, post(p.resetSubmit)},
		{"POST", mail.ResetPath + "/request", post(p.mailAgain(ratelimit.ResetRequest, "reset-expired", "Reset link not valid", "create password reset",
			"If an account uses this address, a new reset link is on its way.", Users.CreatePasswordReset))},
		// The verification link: opening it changes nothing, since mail
		// scanners and link previews open links too; the person's click
		// posts the token.
		{"GET", mail.VerifyPath, h(p.linkForm("verify", "Confirm your email address", "verify-expired", "Verification link not valid"))},
		{"POST", mail.VerifyPath, post(p.verifySubmit)},
		{"POST", mail.VerifyPath + "/request", post(p.mailAgain(ratelimit.VerificationResend, "verify-expired", "Verification link not valid", "resend verification",
			"If an account is waiting for this address to be confirmed, a new link is on its way.", Users.ResendVerification))},
		{"GET", "/admin", h(p.adminHome)},
		{"POST", "/admin/sign-in", post(p.signIn("/admin"))},
		{"POST", "/admin/sign-in/factor", post(p.signInFactor("/admin"))},
		{"POST", "/admin/sign-in/passkey", post(p.signInPasskey("/admin"))},
		{"POST", "/admin/sign-in/passkey/finish", post(p.signInPasskeyFinish("/admin"))},
		{"POST", "/admin/sign-out", post(p.signOut("/admin"))},
		{"GET", "/admin/users/:id", h(p.adminUser)},
		{"POST", "/admin/users/:id", post(p.adminUpdate)},
		{"POST", "/admin/users/:id/delete", post(p.adminDelete)},
		{"POST", "/admin/users/:id/end-sessions", post(p.adminEndSessions)},
		{"POST", "/admin/users/:id/factors/remove", post(p.adminRemoveFactors)},
		{"GET", "/account", h(p.accountHome)},
		{"POST", "/account", post(p.accountUpdate)},
		{"POST", "/account/sign-in", post(p.signIn("/account"))},
		{"POST", "/account/sign-in/factor", post(p.signInFactor("/account"))},
		{"POST", "/account/sign-in/passkey", post(p.signInPasskey("/account"))},
		{"POST", "/account/sign-in/passkey/finish", post(p.signInPasskeyFinish("/account"))},
		{"POST", "/account/factors/passkey", post(p.accountBeginPasskey)},
		{"POST", "/account/factors/passkey/confirm", post(p.accountFinishPasskey)},
		{"POST", "/account/factors/totp", post(p.accountEnrolTOTP)},
		{"POST", "/account/factors/confirm", post(p.accountConfirmTOTP)},
		{"POST", "/account/recovery-codes", post(p.accountRecoveryCodes)},
		{"POST", "/account/factors/:id/remove", post(p.accountRemoveFactor)},
		{"POST", "/account/sign-out", post(p.signOut("/account"))},
		{"POST", "/account/end-sessions", post(p.accountEndSessions)},
	}
}

// clientIP is the request's client address as the API sees it.
func (p *Pages) clientIP(r *http.Request) string {
	if p.cfg.ClientIP != nil {
		if ip := p.cfg.ClientIP(r); ip != "" {
			return ip
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
