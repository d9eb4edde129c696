package pages

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
)

// ContentSecurityPolicy allows the page's own stylesheet and script and
// nothing else: no inline script or style, no framing, forms only to
// this origin. Images may be data: URLs, for the TOTP enrolment's QR
// code, which is part of the page's own answer (an image cannot run
// script, and no page puts a URL it was sent into an img).
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// setHeaders sets the headers every page answer carries. no-store: pages
// show personal data and carry CSRF tokens; no-referrer: the reset page's
// URL holds the token, and no page's URL should travel onward.
func setHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (p *Pages) withHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		next.ServeHTTP(w, r)
	})
}

// withStaticHeaders is withHeaders for the stylesheet and script, which
// hold nothing personal and may be cached for a while.
func (p *Pages) withStaticHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w.Header())
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// csrfField is the form field that carries the CSRF token.
const csrfField = "csrf"

// cookieName returns name with the __Host- prefix under https: the browser
// then accepts the cookie only from this exact host, Secure, with Path=/,
// so a sibling subdomain cannot plant one (cookie tossing).
func (p *Pages) cookieName(name string) string {
	if p.secure {
		return "__Host-" + name
	}
	return name
}

func (p *Pages) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: p.cookieName(name), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteStrictMode}
}

// csrfToken returns the request's CSRF token, setting a new one as a
// cookie when it has none. Double submit: a form is accepted only when its
// field equals the cookie, which another site can neither read nor (with
// SameSite=Strict and __Host-) send or set.
func (p *Pages) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.cookieName("usersvc_csrf")); err == nil && len(c.Value) == csrfLength {
		return c.Value
	}
	return p.newCSRF(w)
}

// newCSRF sets a fresh CSRF token (also at sign-in and sign-out, so a token
// seen before cannot be used after).
func (p *Pages) newCSRF(w http.ResponseWriter) string {
	tok := rand.Text()
	// A session cookie (no Max-Age): it lasts as long as the browser.
	http.SetCookie(w, p.cookie("usersvc_csrf", tok, 0))
	return tok
}

// checkCSRF refuses a POST that another site could have made: the browser
// must say it came from this origin (Sec-Fetch-Site, or Origin when that
// is missing), and the form's token must equal the cookie's.
func (p *Pages) checkCSRF(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.sameOrigin(r) || !p.tokenMatches(r) {
			p.log.InfoContext(r.Context(), "page form refused: cross-site or without a valid CSRF token",
				"url.path", r.URL.Path)
			p.renderStatus(w, r, http.StatusForbidden, "error", pageData{Title: "Request refused",
				Message: "This form was not sent from this site, or it has expired. Go back, reload the page and try again."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin checks the browser's own statement of where a request comes
// from. Sec-Fetch-Site (every current browser) must be same-origin; without
// it, an Origin must be the public URL's. A request with neither is not a
// browser's, and the token check alone decides.
func (p *Pages) sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin"
	}
	if o := r.Header.Get("Origin"); o != "" {
		return p.origin != "" && o == p.origin
	}
	return true
}

// csrfLength is the length of every token newCSRF makes (rand.Text: 128
// random bits). A shorter one was not ours: a cookie of one character,
// which a sibling subdomain or a man in the middle of plain http could
// plant, would otherwise be guessable in the form.
var csrfLength = len(rand.Text())

func (p *Pages) tokenMatches(r *http.Request) bool {
	c, err := r.Cookie(p.cookieName("usersvc_csrf"))
	if err != nil || len(c.Value) != csrfLength {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) == 1
}
