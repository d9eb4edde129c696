package pages

import (
	"errors"
	"net/http"

	"github.com/usersvc/usersvc/internal/user"
)

// resetForm is the page the reset mail links to: GET /reset-password?token=….
// The token goes into the form as a hidden field; the page's script (when
// it runs) then removes it from the address bar and history. The access log
// records the path only, and Referrer-Policy keeps the URL from travelling.
func (p *Pages) resetForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 512 {
		p.render(w, r, "reset-expired", pageData{Title: "Reset link not valid"})
		return
	}
	p.render(w, r, "reset", pageData{Title: "Choose a new password", Token: tok})
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

// resetRequest asks for a new reset mail: POST /reset-password/request. It
// answers the same whether or not the address is registered.
func (p *Pages) resetRequest(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	ctx, cancel := p.rpcContext(r, "")
	defer cancel()
	if err := p.users.CreatePasswordReset(ctx, email); err != nil {
		d := pageData{Title: "Reset link not valid", Form: map[string]string{"email": email}}
		status := p.failure(r, "create password reset", err, &d)
		p.renderStatus(w, r, status, "reset-expired", d)
		return
	}
	p.render(w, r, "mail-sent", pageData{Title: "Check your mail",
		Message: "If an account uses this address, a new reset link is on its way."})
}
