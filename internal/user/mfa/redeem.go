package mfa

import (
	"context"
	"errors"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

// Redeem completes a sign-in: the ticket a right password got, and a code
// of one of the account's factors (kind "totp" or "recovery_code"; for
// "webauthn" the code is the passkey's assertion response, JSON). It
// spends the account's password budget, consumes the code (a TOTP step or
// a recovery code, once) and then the ticket, and returns the user with
// the sign-in's amr: the password, the factor, and "mfa".
//
// A wrong code leaves the ticket usable, so a typo does not send the
// person back to their password, but only for maxTicketAttempts codes:
// each completion counts one on the ticket before its code is checked, so
// a ticket allows that many guesses at most, on any number of instances,
// besides the account's password budget. A used, expired, unknown or
// spent ticket is user.ErrMFATicketInvalid.
func (f *Flow) Redeem(ctx context.Context, ticket, kind, code string) (*user.User, []string, error) {
	if err := redeemInput(ticket, kind, code); err != nil {
		return nil, nil, err
	}
	if f.factors == nil {
		return nil, nil, user.ErrMFATicketInvalid
	}
	hash := token.HashOpaque(ticket)
	counted, err := f.factors.AttemptTicket(ctx, hash, maxTicketAttempts, f.clock.Now())
	if err != nil {
		return nil, nil, user.StoreErr("count mfa ticket attempt", err)
	}
	if !counted {
		return nil, nil, user.ErrMFATicketInvalid
	}
	t, err := f.factors.Ticket(ctx, hash, f.clock.Now())
	if errors.Is(err, factor.ErrNotFound) {
		return nil, nil, user.ErrMFATicketInvalid
	}
	if err != nil {
		return nil, nil, user.StoreErr("get mfa ticket", err)
	}
	u, err := f.users.UserByID(ctx, t.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return nil, nil, user.ErrMFATicketInvalid
	}
	if err != nil {
		return nil, nil, user.StoreErr("get user", err)
	}
	if err := user.AllowAttempt(ctx, f.log, f.tries, "password|"+u.Email); err != nil {
		return nil, nil, err
	}
	var amr string
	switch factor.Kind(kind) {
	case factor.KindTOTP:
		amr, err = f.redeemTOTP(ctx, u, code)
	case factor.KindRecoveryCode:
		amr, err = f.redeemRecoveryCode(ctx, u, code)
	case factor.KindWebAuthn:
		amr, err = f.redeemPasskey(ctx, u, hash, code)
	}
	if err != nil {
		return nil, nil, err
	}
	used, err := f.factors.UseTicket(ctx, hash, f.clock.Now())
	if err != nil {
		return nil, nil, user.StoreErr("use mfa ticket", err)
	}
	if !used { // a concurrent completion got there first
		return nil, nil, user.ErrMFATicketInvalid
	}
	return u, []string{token.AMRPassword, amr, token.AMRMFA}, nil
}

// maxTicketAttempts is how many codes one ticket may try: enough for a
// few typos, and a cap on guessing with one password check.
const maxTicketAttempts = 5

func redeemInput(ticket, kind, code string) error {
	fields := map[string]string{}
	if ticket == "" || len(ticket) > user.MaxTokenBytes {
		fields["mfa_ticket"] = "is required"
	}
	k := factor.Kind(kind)
	if k != factor.KindTOTP && k != factor.KindRecoveryCode && k != factor.KindWebAuthn {
		fields["factor"] = "must be totp, recovery_code or webauthn"
	}
	if code == "" {
		fields["code"] = "is required"
	}
	if len(fields) > 0 {
		return user.Invalid(fields)
	}
	// A passkey's "code" is its assertion (JSON, a few hundred bytes up
	// to a few KiB); a typed code keeps the short bound.
	if len(code) > maxCodeLen && (k != factor.KindWebAuthn || len(code) > maxCredentialLen) {
		return user.ErrBadFactorCode
	}
	return nil
}

// redeemTOTP accepts code from any of the user's active TOTP factors,
// moving that factor's last step forward; the store's conditional update
// refuses the same code on a concurrent request.
func (f *Flow) redeemTOTP(ctx context.Context, u *user.User, code string) (string, error) {
	list, err := f.factors.Factors(ctx, u.ID)
	if err != nil {
		return "", user.StoreErr("list factors", err)
	}
	for i := range list {
		fac := &list[i]
		if fac.Kind != factor.KindTOTP || !fac.Active() {
			continue
		}
		step, ok, err := f.checkTOTP(fac, code)
		if errors.Is(err, user.ErrBadFactorCode) {
			continue
		}
		if err != nil {
			return "", err
		}
		if ok {
			accepted, err := f.factors.AcceptTOTPStep(ctx, fac.ID, step, f.clock.Now())
			if err != nil || !accepted {
				return "", errOr(err, user.ErrBadFactorCode, "accept totp step")
			}
			return token.AMROTP, nil
		}
	}
	return "", user.ErrBadFactorCode
}

func (f *Flow) redeemRecoveryCode(ctx context.Context, u *user.User, code string) (string, error) {
	hash, ok := factor.HashRecoveryCode(u.ID, code)
	if !ok {
		return "", user.ErrBadFactorCode
	}
	used, err := f.factors.UseRecoveryCode(ctx, u.ID, hash, f.clock.Now())
	if err != nil || !used {
		return "", errOr(err, user.ErrBadFactorCode, "use recovery code")
	}
	f.log.InfoContext(ctx, "recovery code used", "user.id", u.ID)
	return token.AMRRecoveryCode, nil
}
