package pages

import (
	"net/http"
	"strings"

	"github.com/usersvc/usersvc/internal/user"
)

// accountHome shows the signed-in person their account: GET /account.
func (p *Pages) accountHome(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	p.accountPage(w, r, s, http.StatusOK, pageData{Message: notice(r)})
}

// accountUpdate changes the person's name, email or password: POST
// /account. Fields left empty stay as they are; a new email or password
// needs the current password (the service's rule), and a new password must
// be typed twice.
func (p *Pages) accountUpdate(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	f := func(k string) string { return r.PostFormValue(k) }
	d := pageData{Title: "Your account", Area: "/account", SignedIn: true,
		Form: map[string]string{"name": f("name"), "email": strings.TrimSpace(f("email"))}}
	var in user.UpdateInput
	if v := f("name"); v != "" {
		in.Name = &v
	}
	if v := strings.TrimSpace(f("email")); v != "" {
		in.Email = &v
	}
	if pw := f("password"); pw != "" {
		if pw != f("password_again") {
			d.Fields = map[string]string{"password_again": "does not match the new password"}
		}
		in.Password = &pw
	}
	if in.Email != nil || in.Password != nil {
		// The service asks for it before either changes.
		cur := f("current_password")
		in.CurrentPassword = &cur
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	var err error
	var u *user.User
	if d.Fields != nil {
		err = user.Invalid(d.Fields)
	} else if u, err = p.users.Update(ctx, s.claims.Subject, in); err == nil {
		if in.Password != nil {
			// The service ended every session, this one too: sign in anew.
			p.clearSession(w)
			p.render(w, r, "signin", pageData{Title: "Sign in", Area: "/account",
				Message: "Your password was changed and your sessions ended. Sign in with the new password."})
			return
		}
		done := "saved"
		if in.Email != nil && u.PendingEmail != "" {
			done = "pending" // the address changes once the mailed link is used
		}
		seeOther(w, r, "/account?done="+done)
		return
	}
	d.Me, _ = p.users.Get(ctx, s.claims.Subject)
	p.renderFailure(w, r, "account", "update", err, d)
}

// accountEndSessions signs the person out everywhere, this browser too:
// POST /account/end-sessions.
func (p *Pages) accountEndSessions(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	if err := p.users.EndSessions(ctx, s.claims.Subject); err != nil {
		p.renderFailure(w, r, "account", "end sessions", err, pageData{Title: "Your account", Area: "/account", SignedIn: true})
		return
	}
	p.clearSession(w)
	p.newCSRF(w)
	p.render(w, r, "signin", pageData{Title: "Sign in", Area: "/account",
		Message: "You were signed out everywhere, on this device too."})
}

// loadUser reads the user with id and their sessions into d, or renders
// the page name with why it could not and returns false.
func (p *Pages) loadUser(w http.ResponseWriter, r *http.Request, s *session, id, name string, d *pageData) bool {
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	var err error
	op := "get"
	if d.User, err = p.users.Get(ctx, id); err == nil {
		op = "sessions"
		d.Sessions, err = p.users.Sessions(ctx, id)
	}
	if err != nil {
		p.renderFailure(w, r, name, op, err, *d)
		return false
	}
	return true
}
