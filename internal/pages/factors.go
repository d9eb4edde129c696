package pages

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/usersvc/usersvc/internal/user"
)

// factorStep is the sign-in's second step: the ticket a right password
// got, and the factor kinds that may complete it.
func factorStep(area string, mfa *user.MFAChallenge) pageData {
	return pageData{Title: "Second factor", Area: area, Ticket: mfa.Ticket, FactorKinds: mfa.Factors,
		WebAuthnOptions: string(mfa.WebAuthn)}
}

// signInFactor completes a sign-in with the ticket and a code: POST
// {area}/sign-in/factor, the same completion as POST /user/token with
// grant_type mfa. A wrong code shows the step again with the same ticket
// (the service keeps it usable, and every attempt spends the account's
// password budget); a spent or expired ticket sends the person back to
// the password.
func (p *Pages) signInFactor(area string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := pageData{Title: "Sign in", Area: area}
		if !p.signInAllowed(w, r, &d) {
			return
		}
		ticket, kind := r.PostFormValue("ticket"), r.PostFormValue("factor")
		code := strings.Join(strings.Fields(r.PostFormValue("code")), "")
		if kind == "webauthn" {
			code = string(credential(r)) // the authenticator's answer, as JSON
		}
		ctx, cancel := p.rpcContext(r, "")
		defer cancel()
		s, err := p.users.CompleteMFA(ctx, ticket, kind, code)
		if errors.Is(err, user.ErrMFATicketInvalid) {
			d.Error = "The sign-in took too long or was finished already. Sign in again."
			p.renderStatus(w, r, http.StatusUnauthorized, "signin", d)
			return
		}
		if c := user.AsError(err).Code; c == user.CodeInvalidArgument || c == user.CodeUnauthenticated {
			// A wrong, used or malformed code: the same step again, with
			// the same ticket.
			var kinds []string // as the first step offered them; only known ones
			for _, k := range strings.Split(r.PostFormValue("kinds"), ",") {
				if k == "totp" || k == "recovery_code" || k == "webauthn" {
					kinds = append(kinds, k)
				}
			}
			var options []byte // the passkey's, as the first step gave them
			if o := r.PostFormValue("webauthn_options"); len(o) <= maxCredentialBytes {
				options = []byte(o)
			}
			step := factorStep(area, &user.MFAChallenge{Ticket: ticket, Factors: kinds, WebAuthn: options})
			status := p.failure(r, "complete sign-in", err, &step)
			switch {
			case kind == "webauthn":
				step.Error, step.Fields = "The passkey did not confirm it is you. Try again, or type a code.", nil
			case step.Fields == nil:
				step.Fields = map[string]string{"code": "is wrong or was used already"}
				step.Error = ""
			}
			p.renderStatus(w, r, status, "signin-factor", step)
			return
		}
		p.finishSignIn(w, r, area, s, err, d)
	}
}

// accountPage renders the account page with d's message or error, its
// factors read anew.
func (p *Pages) accountPage(w http.ResponseWriter, r *http.Request, s *session, status int, d pageData) {
	d.Title, d.Area, d.SignedIn, d.CurrentSession = "Your account", "/account", true, s.claims.Session
	if !p.loadUser(w, r, s, s.claims.Subject, "account", &d) {
		return
	}
	d.Me, d.User = d.User, nil
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	var err error
	if d.FactorList, d.CodesLeft, err = p.users.Factors(ctx, s.claims.Subject); err != nil {
		p.renderFailure(w, r, "account", "list factors", err, d)
		return
	}
	p.renderStatus(w, r, status, "account", d)
}

// accountEnrolTOTP starts a TOTP enrolment: POST /account/factors/totp.
// The secret and its QR code are shown once, with the form that confirms
// the enrolment with a first code.
func (p *Pages) accountEnrolTOTP(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	e, err := p.users.EnrolTOTP(ctx, s.claims.Subject, r.PostFormValue("factor_name"))
	if err != nil {
		d := pageData{Form: map[string]string{"factor_name": r.PostFormValue("factor_name")}}
		status := p.failure(r, "enrol totp", err, &d)
		if msg, ok := d.Fields["name"]; ok { // the factor's name, not the person's
			d.Fields = map[string]string{"factor_name": msg}
		}
		p.accountPage(w, r, s, status, d)
		return
	}
	p.render(w, r, "totp-enrol", enrolData(e, "", nil))
}

// enrolData is the TOTP enrolment page: the secret, its QR code, and the
// confirmation form.
func enrolData(e *user.TOTPEnrolment, errMsg string, fields map[string]string) pageData {
	d := pageData{Title: "Set up an authenticator app", Area: "/account", SignedIn: true, Enrolment: e,
		Error: errMsg, Fields: fields}
	if len(e.QRPNG) > 0 {
		// Built here from the service's PNG, never from the request.
		d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG))
	}
	return d
}

// accountConfirmTOTP activates an enrolment with a first code: POST
// /account/factors/confirm. The account's first factor comes with its
// recovery codes, shown on this answer only. A wrong code shows the
// enrolment again (the secret travels in the form, so the person can
// still scan it; it is theirs and the page is no-store).
func (p *Pages) accountConfirmTOTP(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	f := r.PostFormValue
	code := strings.Join(strings.Fields(f("code")), "")
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	codes, err := p.users.ConfirmTOTP(ctx, s.claims.Subject, f("factor_id"), code)
	if err != nil && user.AsError(err).Code == user.CodeInvalidArgument {
		d := enrolData(&user.TOTPEnrolment{FactorID: f("factor_id"), Secret: f("secret"), URI: f("uri")}, "", nil)
		status := p.failure(r, "confirm totp", err, &d)
		p.renderStatus(w, r, status, "totp-enrol", d)
		return
	}
	if err != nil {
		d := pageData{}
		status := p.failure(r, "confirm totp", err, &d)
		p.accountPage(w, r, s, status, d)
		return
	}
	p.showRecoveryCodes(w, r, s, codes, "The authenticator app is set up.")
}

// accountRecoveryCodes replaces the recovery codes by ten new ones: POST
// /account/recovery-codes.
func (p *Pages) accountRecoveryCodes(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	codes, err := p.users.RegenerateRecoveryCodes(ctx, s.claims.Subject)
	if err != nil {
		d := pageData{}
		status := p.failure(r, "regenerate recovery codes", err, &d)
		p.accountPage(w, r, s, status, d)
		return
	}
	p.showRecoveryCodes(w, r, s, codes, "New recovery codes were made; the old ones no longer work.")
}

// showRecoveryCodes shows new recovery codes once (the service keeps only
// their hashes), or, when there are none, the account page with msg.
func (p *Pages) showRecoveryCodes(w http.ResponseWriter, r *http.Request, s *session, codes []string, msg string) {
	if len(codes) == 0 {
		p.accountPage(w, r, s, http.StatusOK, pageData{Message: msg})
		return
	}
	p.render(w, r, "recovery-codes", pageData{Title: "Your recovery codes", Area: "/account", SignedIn: true,
		Message: msg, RecoveryCodes: codes})
}

// accountRemoveFactor removes one of the person's factors: POST
// /account/factors/:id/remove. The service asks for a recent sign-in
// (with the factor) first.
func (p *Pages) accountRemoveFactor(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/account")
	if s == nil {
		return
	}
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	if err := p.users.RemoveFactor(ctx, s.claims.Subject, r.PathValue("id")); err != nil {
		d := pageData{}
		status := p.failure(r, "remove factor", err, &d)
		p.accountPage(w, r, s, status, d)
		return
	}
	seeOther(w, r, "/account?done=factor-removed")
}

// adminRemoveFactors removes every second factor of a user (they lost
// them all): POST /admin/users/:id/factors/remove. The service mails the
// owner.
func (p *Pages) adminRemoveFactors(w http.ResponseWriter, r *http.Request) {
	s := p.requireSession(w, r, "/admin")
	if s == nil {
		return
	}
	id := r.PathValue("id")
	ctx, cancel := p.rpcContext(r, s.Access)
	defer cancel()
	if err := p.users.RemoveFactors(ctx, id); err != nil {
		d := pageData{Title: "User", Area: "/admin", SignedIn: true}
		d.User, _ = p.users.Get(ctx, id)
		p.renderFailure(w, r, "admin-user", "remove factors", err, d)
		return
	}
	seeOther(w, r, "/admin/users/"+id+"?done=factors-removed")
}
