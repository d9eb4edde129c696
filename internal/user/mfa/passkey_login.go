package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

var errBadCeremony = user.Invalid(map[string]string{"ceremony": "is unknown, expired or used; start the passkey sign-in again"})

// beginSecondFactor starts the assertion that may complete an MFA ticket:
// the options name the account's passkeys, and the session data is kept
// under the ticket's hash until the ticket expires (the ticket's single
// use is the ceremony's).
func (f *Flow) beginSecondFactor(ctx context.Context, u *user.User, ticketHash string, now, expires time.Time) (json.RawMessage, error) {
	pu, _, err := f.userPasskeys(ctx, u)
	if err != nil {
		return nil, err
	}
	assertion, sd, err := f.rp.BeginLogin(pu)
	if err != nil {
		return nil, user.Internal("begin passkey assertion", err)
	}
	if err := f.storeCeremony(ctx, ticketHash, factor.CeremonyMFA, u.ID, sd, now, expires); err != nil {
		return nil, err
	}
	options, err := json.Marshal(assertion)
	if err != nil {
		return nil, user.Internal("encode assertion options", err)
	}
	return options, nil
}

// redeemPasskey checks an assertion against the ticket's ceremony and the
// account's passkeys; any failure is user.ErrBadFactorCode, as a wrong
// code is, so the ticket stays for another try within the budget.
func (f *Flow) redeemPasskey(ctx context.Context, u *user.User, ticketHash, assertion string) (string, error) {
	if f.rp == nil {
		return "", user.ErrBadFactorCode
	}
	c, err := f.passkeys.Ceremony(ctx, ticketHash, factor.CeremonyMFA, f.clock.Now())
	if errors.Is(err, factor.ErrNotFound) {
		return "", user.ErrBadFactorCode
	}
	if err != nil {
		return "", user.StoreErr("get webauthn ceremony", err)
	}
	sd, err := decodeSession(c)
	if err != nil {
		return "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(assertion))
	if err != nil {
		f.log.InfoContext(ctx, "passkey assertion refused", "user.id", u.ID, "error", protocolDetail(err))
		return "", user.ErrBadFactorCode
	}
	pu, list, err := f.userPasskeys(ctx, u)
	if err != nil {
		return "", err
	}
	cred, err := f.rp.ValidateLogin(pu, sd, parsed)
	if err != nil {
		f.log.InfoContext(ctx, "passkey assertion refused", "user.id", u.ID, "error", protocolDetail(err))
		return "", user.ErrBadFactorCode
	}
	if err := f.acceptAssertion(ctx, u, list, cred, parsed.Response.AuthenticatorData.Counter); err != nil {
		_ = err // logged by acceptAssertion
		return "", user.ErrBadFactorCode
	}
	return token.AMRHardwareKey, nil
}

// errCounter is a verified assertion whose signature counter did not move
// forward: the authenticator may be cloned (or the assertion replayed).
var errCounter = errors.New("mfa: passkey sign counter did not move forward")

// acceptAssertion moves the used passkey's counter forward and stamps its
// last use; a counter that went backwards (go-webauthn's clone warning,
// or the store's conditional update losing) refuses the sign-in and is
// logged as a warning: it is a sign of a cloned authenticator.
func (f *Flow) acceptAssertion(ctx context.Context, u *user.User, list []factor.Passkey, cred *webauthn.Credential, got uint32) error {
	key := factor.CredentialKey(cred.ID)
	for _, p := range list {
		if p.CredentialKey != key {
			continue
		}
		ok := !cred.Authenticator.CloneWarning
		if ok {
			var err error
			if ok, err = f.passkeys.AcceptSignCount(ctx, p.FactorID, got, f.clock.Now()); err != nil {
				return user.StoreErr("accept sign count", err)
			}
		}
		if !ok {
			f.log.WarnContext(ctx, "passkey refused: its sign counter went backwards (cloned authenticator?)",
				"user.id", u.ID, "factor.id", p.FactorID, "stored", p.SignCount, "got", got)
			return errCounter
		}
		return nil
	}
	return errCounter
}

// BeginPasswordless starts a passwordless sign-in with a discoverable
// passkey: no account is named (the authenticator offers its passkeys for
// this site), user verification is required, and the ceremony's state is
// kept under the hash of the returned opaque handle, for one use.
func (f *Flow) BeginPasswordless(ctx context.Context) (*user.PasswordlessChallenge, error) {
	if f.rp == nil {
		return nil, errNoPasskeys
	}
	assertion, sd, err := f.rp.BeginDiscoverableLogin()
	if err != nil {
		return nil, user.Internal("begin passwordless", err)
	}
	plain, hash, err := token.NewOpaque()
	if err != nil {
		return nil, user.Internal("new ceremony handle", err)
	}
	now := f.clock.Now()
	expires := now.Add(ceremonyTTL)
	if err := f.storeCeremony(ctx, hash, factor.CeremonyPasswordless, "", sd, now, expires); err != nil {
		return nil, err
	}
	f.maybeSweepTickets(ctx, now)
	options, err := json.Marshal(assertion)
	if err != nil {
		return nil, user.Internal("encode assertion options", err)
	}
	return &user.PasswordlessChallenge{Ceremony: plain, ExpiresAt: expires, Options: options}, nil
}

// FinishPasswordless completes a passwordless sign-in: the ceremony is
// spent first (a replay finds it used), the credential is found by its id
// and must belong to the user its user handle names, go-webauthn verifies
// the assertion (user verification included) and the counter must move
// forward. The account's password budget is spent once the account is
// known. Every refusal is the same error, whether or not the credential or
// account exists. The amr is "hwk" and "mfa": the passkey is something
// the person has, unlocked by something they are or know (user
// verification was required).
func (f *Flow) FinishPasswordless(ctx context.Context, ceremony string, credential json.RawMessage) (*user.User, []string, error) {
	if ceremony == "" || len(ceremony) > user.MaxTokenBytes {
		return nil, nil, user.Invalid(map[string]string{"ceremony": "is required"})
	}
	if len(credential) == 0 {
		return nil, nil, errNoCredential
	}
	if len(credential) > maxCredentialLen {
		return nil, nil, errBadCredential
	}
	if f.rp == nil {
		return nil, nil, errNoPasskeys
	}
	c, err := f.passkeys.TakeCeremony(ctx, token.HashOpaque(ceremony), factor.CeremonyPasswordless, f.clock.Now())
	if errors.Is(err, factor.ErrNotFound) {
		return nil, nil, errBadCeremony
	}
	if err != nil {
		return nil, nil, user.StoreErr("take webauthn ceremony", err)
	}
	sd, err := decodeSession(c)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		f.log.InfoContext(ctx, "passwordless assertion refused", "error", protocolDetail(err))
		return nil, nil, errBadCredential
	}
	u, pu, list, err := f.passkeyOwner(ctx, parsed)
	if err != nil {
		return nil, nil, err
	}
	handler := func(rawID, userHandle []byte) (webauthn.User, error) { return pu, nil }
	_, cred, err := f.rp.ValidatePasskeyLogin(handler, sd, parsed)
	if err != nil {
		f.log.InfoContext(ctx, "passwordless assertion refused", "user.id", u.ID, "error", protocolDetail(err))
		return nil, nil, errBadCredential
	}
	if err := f.acceptAssertion(ctx, u, list, cred, parsed.Response.AuthenticatorData.Counter); err != nil {
		_ = err // logged by acceptAssertion
		return nil, nil, errBadCredential
	}
	return u, []string{token.AMRHardwareKey, token.AMRMFA}, nil
}

// passkeyOwner finds the account of an assertion's credential, checks its
// user handle names that account, and spends the account's password
// budget.
func (f *Flow) passkeyOwner(ctx context.Context, parsed *protocol.ParsedCredentialAssertionData) (*user.User, passkeyUser, []factor.Passkey, error) {
	p, err := f.passkeys.PasskeyByCredential(ctx, factor.CredentialKey(parsed.RawID))
	if errors.Is(err, factor.ErrNotFound) {
		return nil, passkeyUser{}, nil, errBadCredential
	}
	if err != nil {
		return nil, passkeyUser{}, nil, user.StoreErr("find passkey", err)
	}
	if string(parsed.Response.UserHandle) != p.UserID {
		return nil, passkeyUser{}, nil, errBadCredential
	}
	u, err := f.users.UserByID(ctx, p.UserID)
	if errors.Is(err, user.ErrNotFound) {
		return nil, passkeyUser{}, nil, errBadCredential
	}
	if err != nil {
		return nil, passkeyUser{}, nil, user.StoreErr("get user", err)
	}
	if err := user.AllowAttempt(ctx, f.log, f.tries, "password|"+u.Email); err != nil {
		return nil, passkeyUser{}, nil, err
	}
	pu, list, err := f.userPasskeys(ctx, u)
	if err != nil {
		return nil, passkeyUser{}, nil, err
	}
	return u, pu, list, nil
}
