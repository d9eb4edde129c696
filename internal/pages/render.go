package pages

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"

	"github.com/usersvc/usersvc/internal/user"
)

// pageData is what every template gets. Everything in it is escaped by
// html/template; names and emails are attacker-controlled.
type pageData struct {
	Title    string
	CSRF     string
	Message  string            // a notice at the top (role=status)
	Error    string            // an error at the top (role=alert)
	Fields   map[string]string // field errors, shown next to their input
	Form     map[string]string // values to put back into the form
	Me       *user.User        // the signed-in person, nil before sign-in
	Area     string            // "/admin" or "/account": where sign-in and sign-out post
	SignedIn bool              // shows the sign-out button
	Token    string            // reset page: the token, as a hidden field

	User  *user.User   // admin: the user being looked at
	Users []*user.User // admin: the list

	Sessions       []user.SessionInfo // the user's live sessions
	CurrentSession string             // account: the session of this browser
	Query          string
	Page           int
	Prev           int
	Next           int
	Total          int64
	// The second factor: the sign-in's second step, and the account's
	// factors.
	Ticket        string   // the MFA ticket (or a passwordless ceremony), as a hidden field
	FactorKinds   []string // the kinds the sign-in's second step accepts
	FactorList    []user.FactorInfo
	CodesLeft     int                 // unused recovery codes
	Enrolment     *user.TOTPEnrolment // a TOTP enrolment to confirm
	QR            template.URL        // its QR code as a data: URL
	RecoveryCodes []string            // new recovery codes, shown once
	// WebAuthnOptions are the service's options for the browser's
	// authenticator (JSON), which pages.js hands to navigator.credentials.
	WebAuthnOptions string

	Roles []user.Role
	Stati []user.Status
}

// CodeKinds are the factor kinds of the sign-in's second step answered
// with a typed code: all but the passkey, which has its own form.
func (d pageData) CodeKinds() []string {
	var out []string
	for _, k := range d.FactorKinds {
		if k != "webauthn" {
			out = append(out, k)
		}
	}
	return out
}

// render writes the page with status 200.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, name string, d pageData) {
	p.renderStatus(w, r, http.StatusOK, name, d)
}

// renderStatus executes the template into a buffer first, so a template
// error is a clean 500 rather than half a page.
func (p *Pages) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	if d.CSRF == "" {
		d.CSRF = p.csrfToken(w, r)
	}
	d.Roles = []user.Role{user.RoleUser, user.RoleAdmin}
	d.Stati = []user.Status{user.StatusActive, user.StatusDisabled}
	var buf bytes.Buffer
	t, ok := p.tmpl[name]
	if !ok {
		p.log.ErrorContext(r.Context(), "no such page template", "template", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, d); err != nil {
		p.log.ErrorContext(r.Context(), "page template failed", "template", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// seeOther redirects after a successful post (post/redirect/get), so a
// reload does not repeat the action.
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// failure turns a service error into what a page shows: the field errors
// next to their fields, and a message at the top; the status mirrors the
// API's (user.HTTPStatus). Internal causes are logged, never shown.
func (p *Pages) failure(r *http.Request, op string, err error, d *pageData) int {
	e := user.AsError(err)
	status, known := user.HTTPStatus(e.Code)
	if !known || status >= http.StatusInternalServerError {
		p.log.ErrorContext(r.Context(), "page: user service call failed", "op", op, "error", err)
		d.Error = "Something went wrong on our side. Please try again in a moment."
		if e.Code == user.CodeUnavailable {
			d.Error = "The service is busy or restarting. Please try again in a moment."
		}
		return max(status, http.StatusInternalServerError)
	}
	d.Error = sentence(e.Message)
	d.Fields = e.Fields
	if errors.Is(err, user.ErrForbidden) {
		d.Error = "You are not allowed to do that."
	}
	return status
}

// sentence capitalises a service message for display.
func sentence(s string) string {
	if s == "" {
		return s
	}
	if s[0] >= 'a' && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s + "."
}

// renderFailure shows the page name with what went wrong in a service call.
func (p *Pages) renderFailure(w http.ResponseWriter, r *http.Request, name, op string, err error, d pageData) {
	status := p.failure(r, op, err, &d)
	p.renderStatus(w, r, status, name, d)
}
