package pages

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
)

// signIn checks an email and password for the area ("/admin" or
// "/account") and starts a page session: the same Auth call as
// POST /user/token, under the same per-IP limiter and the service's
// per-account password budget.
func (p *Pages) signIn(area string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		email := strings.TrimSpace(r.PostFormValue("email"))
		d := pageData{Title: "Sign in", Area: area, Form: map[string]string{"email": email}}
		if !p.signInAllowed(w, r, &d) {
			return
		}
		ctx, cancel := p.rpcContext(r, "")
		defer cancel()
		s, err := p.users.Auth(ctx, email, r.PostFormValue("password"))
		if err == nil && s.MFA != nil {
			// The password was right; the factor is the second step,
			// which carries the ticket (never the password) forward.
			p.render(w, r, "signin-factor", factorStep(area, s.MFA))
			return
		}
		p.finishSignIn(w, r, area, s, err, d)
	}
}

// finishSignIn starts the page session of a completed sign-in (password,
// or password and factor), or shows the sign-in page with why not. The
// admin console takes only administrators; with USERSVC_REQUIRE_ADMIN_MFA
// an administrator who signed in without a factor has no admin powers
// (the service's rule), so they are sent to their account to enrol one.
func (p *Pages) finishSignIn(w http.ResponseWriter, r *http.Request, area string, s *user.Session, err error, d pageData) {
	if err == nil && area == "/admin" && s.User != nil && s.User.Role != user.RoleAdmin {
		// Not an admin: the session is of no use here; end it at once.
		p.endSession(r.Context(), &session{Access: s.AccessToken, Refresh: s.RefreshToken})
		err = user.ErrForbidden
		d.Error = "This account is not an administrator."
	}
	if err != nil {
		status := http.StatusForbidden
		if d.Error == "" {
			status = p.failure(r, "sign in", err, &d)
		}
		p.renderStatus(w, r, status, "signin", d)
		return
	}
	p.setSession(w, s)
	p.newCSRF(w)
	if area == "/admin" && p.cfg.RequireAdminMFA && !hasFactor(s.AccessToken) {
		seeOther(w, r, "/account?done=need-factor")
		return
	}
	seeOther(w, r, area)
}

// hasFactor reports whether the access token's sign-in used a second
// factor (its amr has "mfa"). The service decides what the token may do;
// the pages only choose where to send the person.
func hasFactor(access string) bool {
	c, ok := readClaims(access)
	return ok && slices.Contains(c.AMR, "mfa")
}

// signInAllowed spends one of the client's sign-in attempts (a password,
// a factor or a passkey each spend one), or shows the sign-in page with
// d's area and why not, and returns false.
func (p *Pages) signInAllowed(w http.ResponseWriter, r *http.Request, d *pageData) bool {
	if p.allowClient(w, r, ratelimit.SignIn, d) {
		return true
	}
	p.renderStatus(w, r, http.StatusTooManyRequests, "signin", *d)
	return false
}

// allowClient spends one of the client's attempts at action, from the
// budget the API and the gRPC port spend too. A limiter that cannot decide
// lets the attempt through, as the API does.
func (p *Pages) allowClient(w http.ResponseWriter, r *http.Request, action ratelimit.Action, d *pageData) bool {
	l := p.cfg.Limits[action]
	if l == nil {
		return true
	}
	ok, retry, err := l.Allow(r.Context(), ratelimit.ClientKey(action, p.clientIP(r)))
	if err != nil {
		p.log.WarnContext(r.Context(), "rate limiter failed; page form let through", "error", err)
		return true
	}
	if ok {
		return true
	}
	w.Header().Set("Retry-After", retryAfterSeconds(retry))
	d.Error = "Too many attempts from your network. Please wait a minute and try again."
	return false
}

// signOut ends the page session: the refresh family is revoked and the
// access token denied on every instance, like DELETE /user/token.
func (p *Pages) signOut(area string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := p.currentSession(w, r); s != nil {
			p.endSession(r.Context(), s)
		}
		p.clearSession(w)
		p.newCSRF(w)
		seeOther(w, r, area)
	}
}

// requireSession returns the request's session, or renders the area's
// sign-in page and returns nil.
func (p *Pages) requireSession(w http.ResponseWriter, r *http.Request, area string) *session {
	s := p.currentSession(w, r)
	if s == nil {
		p.render(w, r, "signin", pageData{Title: "Sign in", Area: area})
		return nil
	}
	if area == "/admin" && s.claims.Role != string(user.RoleAdmin) {
		p.renderStatus(w, r, http.StatusForbidden, "signin", pageData{Title: "Sign in", Area: area,
			Error: "This account is not an administrator. Sign in as one."})
		return nil
	}
	return s
}

func retryAfterSeconds(d time.Duration) string {
	secs := int((d + time.Second - 1) / time.Second)
	return strconv.Itoa(max(secs, 1))
}
