package pages

import (
	"context"
	"errors"
	"net/http"

	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/user"
)

// linkForm serves the page a mailed link lands on (GET path?token=…): the
// page name with the token as a hidden field of its form, or the expired
// page when there is no token. The page's script (when it runs) then
// removes the token from the address bar and history. The access log
// records the path only, and Referrer-Policy keeps the URL from travelling.
func (p *Pages) linkForm(name, title, expired, expiredTitle string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := r.URL.Query().Get("token")
		if tok == "" || len(tok) > 512 {
			p.render(w, r, expired, pageData{Title: expiredTitle})
			return
		}
		p.render(w, r, name, pageData{Title: title, Token: tok})
	}
}

// mailAgain serves the "send me a new link" form of an expired page
// (expired, with its title): send, a method of Users, mails the posted
// address, and the answer is the same whether or not it is registered.
// Each post spends the client's budget of action, the one the JSON API
// route spends; unlimited, the form was a way around it.
func (p *Pages) mailAgain(action ratelimit.Action, expired, title, op, sent string,
	send func(u Users, ctx context.Context, email string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		email := r.PostFormValue("email")
		if d := (pageData{Title: title, Form: map[string]string{"email": email}}); !p.allowClient(w, r, action, &d) {
			p.renderStatus(w, r, http.StatusTooManyRequests, expired, d)
			return
		}
		ctx, cancel := p.rpcContext(r, "")
		defer cancel()
		if err := send(p.users, ctx, email); err != nil {
			p.renderFailure(w, r, expired, op, err, pageData{Title: title, Form: map[string]string{"email": email}})
			return
		}
		p.render(w, r, "mail-sent", pageData{Title: "Check your mail", Message: sent})
	}
}

// resetSubmit sets the new password: POST /reset-password.
func (p *Pages) resetSubmit(w http.ResponseWriter, r *http.Request) {
	tok, pw, again := r.PostFormValue("token"), r.PostFormValue("password"), r.PostFormValue("password_again")
	d := pageData{Title: "Choose a new password", Token: tok}
	if pw != again {
		d.Fields = map[string]string{"password_again": "does not match the new password"}
		d.Error = "The two passwords differ."
		p.renderStatus(w, r, http.StatusBadRequest, "reset", d)
		return
	}
	ctx, cancel := p.rpcContext(r, "")
	defer cancel()
	err := p.users.ResetPassword(ctx, tok, pw)
	switch {
	case err == nil:
		p.render(w, r, "reset-done", pageData{Title: "Password changed"})
	case errors.Is(err, user.ErrResetTokenInvalid):
		p.renderStatus(w, r, http.StatusBadRequest, "reset-expired", pageData{Title: "Reset link not valid"})
	default:
		status := p.failure(r, "reset password", err, &d)
		p.renderStatus(w, r, status, "reset", d)
	}
}
