package pages

import (
	"net/http"
	"strings"

	"github.com/usersvc/usersvc/internal/user"
)

// maxCredentialBytes bounds a passkey's answer taken from a form before it
// goes to the service (which bounds it again).
const maxCredentialBytes = 16 << 10

// credential is the form's passkey answer (the JSON pages.js put in it),
// or nil when it is missing or too large.
func credential(r *http.Request) []byte {
	c := r.PostFormValue("credential")
	if c == "" || len(c) > maxCredentialBytes {
		return nil
	}
	return []byte(c)
}

// accountBeginPasskey starts a passkey registration: POST
// /account/factors/passkey. The page it answers carries the service's
// options for the browser; the person's click runs the authenticator
// (pages.js) and posts its answer to accountFinishPasskey.
func (p *Pages) accountBeginPasskey(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	name := r.PostFormValue("passkey_name")
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	reg, err := p.users.BeginPasskey(ctx, s.claims.Subject, name)
	if err != nil {
		d := pageData{Form: map[string]string{"passkey_name": name}}
		status := p.failure(r, "begin passkey", err, &d)
		if msg, ok := d.Fields["name"]; ok { // the passkey's name, not the person's
			d.Fields = map[string]string{"passkey_name": msg}
		}
		p.accountPage(w, r, s, status, d)
		return
	}
	p.render(w, r, "passkey-enrol", pageData{Title: "Add a passkey", Area: "/account", SignedIn: true,
		Form: map[string]string{"factor_id": reg.FactorID, "name": name}, WebAuthnOptions: string(reg.Options)})
}

// accountFinishPasskey activates the passkey with the authenticator's
// answer: POST /account/factors/passkey/confirm. The account's first
// factor comes with its recovery codes, shown once.
func (p *Pages) accountFinishPasskey(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	codes, err := p.users.FinishPasskey(ctx, s.claims.Subject, r.PostFormValue("factor_id"), credential(r))
	if err != nil {
		d := pageData{}
		status := p.failure(r, "finish passkey", err, &d)
		if d.Fields != nil {
			d.Error, d.Fields = "The passkey was not added: "+strings.TrimSuffix(d.Error, ".")+". Try again.", nil
		}
		p.accountPage(w, r, s, status, d)
		return
	}
	p.showRecoveryCodes(w, r, s, codes, "The passkey is set up.")
}

// signInPasskey starts a passwordless sign-in: POST {area}/sign-in/passkey.
// The page it answers asks the browser for a passkey of this site (any
// account's: the passkey says whose), then posts it to
// signInPasskeyFinish. It spends the sign-in budget like a password.
func (p *Pages) signInPasskey(area string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := pageData{Title: "Sign in", Area: area}
		if !p.signInAllowed(w, r, &d) {
			return
		}
		ctx, cancel := p.rpcContext(r, "")
		defer cancel()
		c, err := p.users.BeginPasswordless(ctx)
		if err != nil {
			status := p.failure(r, "begin passwordless", err, &d)
			p.renderStatus(w, r, status, "signin", d)
			return
		}
		p.render(w, r, "signin-passkey", pageData{Title: "Sign in with a passkey", Area: area,
			Ticket: c.Ceremony, WebAuthnOptions: string(c.Options)})
	}
}

// signInPasskeyFinish completes a passwordless sign-in: POST
// {area}/sign-in/passkey/finish, the same as POST /user/token with
// grant_type webauthn.
func (p *Pages) signInPasskeyFinish(area string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := pageData{Title: "Sign in", Area: area}
		if !p.signInAllowed(w, r, &d) {
			return
		}
		ctx, cancel := p.rpcContext(r, "")
		defer cancel()
		s, err := p.users.CompletePasswordless(ctx, r.PostFormValue("ceremony"), credential(r))
		if c := user.AsError(err).Code; err != nil && (c == user.CodeInvalidArgument || c == user.CodeUnauthenticated) {
			d.Error = "That passkey did not sign you in. Try again, or sign in with your password."
			p.renderStatus(w, r, http.StatusUnauthorized, "signin", d)
			return
		}
		p.finishSignIn(w, r, area, s, err, d)
	}
}
