package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/token"
	"github.com/usersvc/usersvc/internal/user"
)

// Passkeys (WebAuthn, with github.com/go-webauthn/webauthn doing every
// check of the ceremony: challenge, origin, rpIdHash, flags, signature).
// The relying party is the host of the public URL, and its origin the one
// accepted; user verification is required, so a passkey is something the
// person has and something they are or know; attestation is "none" (no
// vendor allow-list); a discoverable credential is preferred so the same
// passkey can sign in without a password. A ceremony's state stays in the
// store, keyed by the SHA-256 of its handle, and is used once.

// ceremonyTTL is how long a passkey ceremony waits for the browser: as
// long as the options tell the browser to wait.
const ceremonyTTL = 5 * time.Minute

// maxCredentialLen bounds a credential response (attestation or
// assertion JSON) before any work is done on it; typed codes keep
// maxCodeLen.
const maxCredentialLen = 16 << 10

var (
	errBadCredential = user.Invalid(map[string]string{"credential": "was not accepted: not a valid passkey response for this ceremony, site and account, or the ceremony expired or was used"})
	errNoCredential  = user.Invalid(map[string]string{"credential": "is required"})
	errDuplicateKey  = user.Invalid(map[string]string{"credential": "this passkey is registered already"})
	errNotPasskey    = user.Invalid(map[string]string{"factor_id": "is not a passkey factor"})
	// errPasskeyNeedsCredential is a code sent to confirm a passkey.
	errPasskeyNeedsCredential = user.Invalid(map[string]string{"credential": "is required: the factor is a passkey"})
	errNoPasskeys             = &user.Error{Code: user.CodeFailedPrecondition, Message: "passkeys are not configured on this service"}
)

// relyingParty builds the WebAuthn relying party from the public URL, or
// nil (passkeys unavailable) without a URL or a store for them.
func relyingParty(log *slog.Logger, cfg user.Config, store factor.PasskeyStore, factors factor.Store) (*webauthn.WebAuthn, factor.PasskeyStore) {
	if cfg.PublicURL == "" || store == nil || factors == nil {
		return nil, nil
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Hostname() == "" {
		log.Warn("mfa: passkeys unavailable: the public URL has no host", "public_url", cfg.PublicURL)
		return nil, nil
	}
	rp, err := webauthn.New(&webauthn.Config{
		RPID: u.Hostname(), RPDisplayName: cfg.MFAIssuer, RPOrigins: []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL}},
	})
	if err != nil {
		log.Warn("mfa: passkeys unavailable", "error", err)
		return nil, nil
	}
	return rp, store
}

// passkeyUser is an account as go-webauthn sees it. The user handle is
// the account's id: stable (an email can change) and not personal.
type passkeyUser struct {
	u     *user.User
	creds []webauthn.Credential
}

func (p passkeyUser) WebAuthnID() []byte                         { return []byte(p.u.ID) }
func (p passkeyUser) WebAuthnName() string                       { return p.u.Email }
func (p passkeyUser) WebAuthnCredentials() []webauthn.Credential { return p.creds }
func (p passkeyUser) WebAuthnDisplayName() string {
	if p.u.Name != "" {
		return p.u.Name
	}
	return p.u.Email
}

// userPasskeys reads the user's active passkeys as go-webauthn
// credentials (each with the stored counter, the authoritative one).
func (f *Flow) userPasskeys(ctx context.Context, u *user.User) (passkeyUser, []factor.Passkey, error) {
	list, err := f.passkeys.Passkeys(ctx, u.ID)
	if err != nil {
		return passkeyUser{}, nil, user.StoreErr("list passkeys", err)
	}
	out := passkeyUser{u: u, creds: make([]webauthn.Credential, len(list))}
	for i, p := range list {
		if err := json.Unmarshal(p.Credential, &out.creds[i]); err != nil {
			return passkeyUser{}, nil, user.Internal("decode passkey", err)
		}
		out.creds[i].Authenticator.SignCount = p.SignCount
	}
	return out, list, nil
}

// storeCeremony keeps a ceremony's session data under the hash of its
// handle until expires.
func (f *Flow) storeCeremony(ctx context.Context, hash, kind, userID string, sd *webauthn.SessionData, now, expires time.Time) error {
	raw, err := json.Marshal(sd)
	if err != nil {
		return user.Internal("encode webauthn session", err)
	}
	c := factor.Ceremony{Hash: hash, Kind: kind, UserID: userID, Session: raw, CreatedAt: now, ExpiresAt: expires}
	if err := f.passkeys.CreateCeremony(ctx, c); err != nil {
		return user.StoreErr("store webauthn ceremony", err)
	}
	return nil
}

func decodeSession(c *factor.Ceremony) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if err := json.Unmarshal(c.Session, &sd); err != nil {
		return sd, user.Internal("decode webauthn session", err)
	}
	return sd, nil
}

// registrationHash keys a registration's ceremony: the factor it will
// confirm (only its owner can reach it, and a new registration replaces
// the unconfirmed factor).
func registrationHash(factorID string) string {
	return token.HashOpaque("passkey-registration:" + factorID)
}

// BeginPasskey starts a passkey registration of the caller's own account:
// an unconfirmed webauthn factor and the options for the browser, which
// exclude the account's registered passkeys. An earlier unfinished
// registration is replaced.
func (f *Flow) BeginPasskey(ctx context.Context, actor user.Actor, userID, name string) (*user.PasskeyRegistration, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "passkey"
	}
	if utf8.RuneCountInString(name) > factor.MaxNameLen || !utf8.ValidString(name) {
		return nil, user.Invalid(map[string]string{"name": "must be at most 64 characters"})
	}
	u, err := f.owner(ctx, actor, userID)
	if err != nil {
		return nil, err
	}
	if f.rp == nil {
		return nil, errNoPasskeys
	}
	if err := f.factors.DeleteUnconfirmedFactors(ctx, u.ID, factor.KindWebAuthn); err != nil {
		return nil, user.StoreErr("delete unconfirmed factors", err)
	}
	if existing, err := f.factors.Factors(ctx, u.ID); err != nil || len(existing) >= maxFactors {
		return nil, errOr(err, errTooManyFactors, "list factors")
	}
	pu, _, err := f.userPasskeys(ctx, u)
	if err != nil {
		return nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, len(pu.creds))
	for i := range pu.creds {
		exclude[i] = pu.creds[i].Descriptor()
	}
	creation, sd, err := f.rp.BeginRegistration(pu, webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, user.Internal("begin passkey registration", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, user.Internal("factor id", err)
	}
	now := f.clock.Now()
	fac := factor.Factor{ID: id.String(), UserID: u.ID, Kind: factor.KindWebAuthn, Name: name, CreatedAt: now}
	if err := f.factors.CreateFactor(ctx, fac); err != nil {
		return nil, user.StoreErr("create factor", err)
	}
	if err := f.storeCeremony(ctx, registrationHash(fac.ID), factor.CeremonyRegistration, u.ID, sd, now, now.Add(ceremonyTTL)); err != nil {
		return nil, err
	}
	options, err := json.Marshal(creation)
	if err != nil {
		return nil, user.Internal("encode creation options", err)
	}
	return &user.PasskeyRegistration{FactorID: fac.ID, Options: options}, nil
}

// FinishPasskey verifies the browser's attestation response against the
// registration's stored ceremony (used once) and activates the factor.
// Like ConfirmTOTP it spends the account's password budget, and the
// account's first active factor also gets its recovery codes.
func (f *Flow) FinishPasskey(ctx context.Context, actor user.Actor, userID, factorID string, credential json.RawMessage) ([]string, error) {
	if len(credential) == 0 {
		return nil, errNoCredential
	}
	if len(credential) > maxCredentialLen {
		return nil, errBadCredential
	}
	u, err := f.owner(ctx, actor, userID)
	if err != nil {
		return nil, err
	}
	if f.rp == nil {
		return nil, errNoPasskeys
	}
	if err := user.AllowAttempt(ctx, f.log, f.tries, "password|"+u.Email); err != nil {
		return nil, err
	}
	if err := f.registrable(ctx, u.ID, factorID); err != nil {
		return nil, err
	}
	cred, err := f.verifyRegistration(ctx, u, factorID, credential)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, user.Internal("encode passkey", err)
	}
	p := factor.Passkey{FactorID: factorID, UserID: u.ID, CredentialKey: factor.CredentialKey(cred.ID),
		Credential: raw, SignCount: cred.Authenticator.SignCount}
	confirmed, err := f.passkeys.ConfirmPasskey(ctx, p, f.clock.Now())
	if errors.Is(err, factor.ErrDuplicateCredential) {
		return nil, errDuplicateKey
	}
	if err != nil || !confirmed {
		return nil, errOr(err, errConfirmed, "confirm passkey")
	}
	left, err := f.factors.RecoveryCodesLeft(ctx, u.ID)
	if err != nil || left > 0 {
		return nil, errOr(err, nil, "count recovery codes")
	}
	return f.newRecoveryCodes(ctx, u.ID)
}

// registrable checks that factorID is the user's unconfirmed passkey.
func (f *Flow) registrable(ctx context.Context, userID, factorID string) error {
	fac, err := f.factors.Factor(ctx, userID, factorID)
	if errors.Is(err, factor.ErrNotFound) {
		return errFactorNotFound
	}
	if err != nil {
		return user.StoreErr("get factor", err)
	}
	if fac.Kind != factor.KindWebAuthn {
		return errNotPasskey
	}
	if fac.Active() {
		return errConfirmed
	}
	return nil
}

// verifyRegistration spends the registration's ceremony and has
// go-webauthn verify the attestation response against it.
func (f *Flow) verifyRegistration(ctx context.Context, u *user.User, factorID string, credential json.RawMessage) (*webauthn.Credential, error) {
	c, err := f.passkeys.TakeCeremony(ctx, registrationHash(factorID), factor.CeremonyRegistration, f.clock.Now())
	if errors.Is(err, factor.ErrNotFound) {
		return nil, errBadCredential
	}
	if err != nil {
		return nil, user.StoreErr("take webauthn ceremony", err)
	}
	if c.UserID != u.ID {
		return nil, errBadCredential
	}
	sd, err := decodeSession(c)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		f.log.InfoContext(ctx, "passkey registration refused", "user.id", u.ID, "error", protocolDetail(err))
		return nil, errBadCredential
	}
	pu, _, err := f.userPasskeys(ctx, u)
	if err != nil {
		return nil, err
	}
	cred, err := f.rp.CreateCredential(pu, sd, parsed)
	if err != nil {
		f.log.InfoContext(ctx, "passkey registration refused", "user.id", u.ID, "error", protocolDetail(err))
		return nil, errBadCredential
	}
	return cred, nil
}

// protocolDetail is what go-webauthn says went wrong, for the log (never
// for the caller: it would say which check failed).
func protocolDetail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Details + ": " + pe.DevInfo
	}
	return err.Error()
}
