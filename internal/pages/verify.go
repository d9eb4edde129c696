package pages

import (
	"errors"
	"net/http"

	"github.com/usersvc/usersvc/internal/user"
)

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
