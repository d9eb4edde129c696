package pages

import (
	"errors"
	"net/http"

	"github.com/usersvc/usersvc/internal/user"
)

// verifyForm is the page the verification mail links to: GET
// /verify-email?token=…. It does not use the token: mail scanners and link
// previews fetch links before the person does, and a GET that consumed the
// token would verify the address without them (and spend the link). The
// person confirms with a button, which posts the token like the reset form.
func (p *Pages) verifyForm(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if tok == "" || len(tok) > 512 {
		p.render(w, r, "verify-expired", pageData{Title: "Verification link not valid"})
		return
	}
	p.render(w, r, "verify", pageData{Title: "Confirm your email address", Token: tok})
}

// verifySubmit confirms the address: POST /verify-email.
func (p *Pages) verifySubmit(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := p.rpcContext(r, "")
	defer cancel()
	err := p.users.VerifyEmail(ctx, r.PostFormValue("token"))
	switch {
	case err == nil:
		p.render(w, r, "verify-done", pageData{Title: "Email address confirmed"})
	case errors.Is(err, user.ErrVerifyTokenInvalid):
		p.renderStatus(w, r, http.StatusBadRequest, "verify-expired", pageData{Title: "Verification link not valid"})
	default:
		// ErrEmailTaken: another account took the pending address meanwhile.
		p.renderFailure(w, r, "verify-expired", "verify email", err, pageData{Title: "Verification failed"})
	}
}

// verifyRequest mails a new verification link: POST /verify-email/request.
// It answers the same whether or not the address is registered.
func (p *Pages) verifyRequest(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	ctx, cancel := p.rpcContext(r, "")
	defer cancel()
	if err := p.users.ResendVerification(ctx, email); err != nil {
		p.renderFailure(w, r, "verify-expired", "resend verification", err,
			pageData{Title: "Verification link not valid", Form: map[string]string{"email": email}})
		return
	}
	p.render(w, r, "mail-sent", pageData{Title: "Check your mail",
		Message: "If an account is waiting for this address to be confirmed, a new link is on its way."})
}
