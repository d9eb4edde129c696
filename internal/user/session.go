package user

import (
	"encoding/json"
	"time"

	"github.com/usersvc/usersvc/internal/token"
)

// Session is what a login or a refresh hands out.
type Session struct {
	AccessToken      string
	AccessExpiresAt  time.Time
	RefreshToken     string
	RefreshExpiresAt time.Time
	User             *User
	// MFA, when set, means the password was right but the account has a
	// second factor: there are no tokens, only the challenge to answer
	// (session.Manager.CompleteMFA).
	MFA *MFAChallenge
}

// MFAChallenge is the answer to a right password for an account with a
// second factor: a ticket (proof of the password, single use, short-lived;
// not an access token) and the kinds of factor that may complete it.
type MFAChallenge struct {
	Ticket    string
	ExpiresAt time.Time
	Factors   []string
	// WebAuthn is, when Factors has "webauthn", the assertion options for
	// the browser (go-webauthn's protocol.CredentialAssertion as JSON: the
	// challenge, the account's passkeys as allowCredentials, user
	// verification required); the assertion completes the ticket.
	WebAuthn json.RawMessage
}

// PasskeyRegistration is a started passkey registration: the factor to
// finish and the options for navigator.credentials.create (go-webauthn's
// protocol.CredentialCreation as JSON).
type PasskeyRegistration struct {
	FactorID string
	Options  json.RawMessage
}

// PasswordlessChallenge is a started passwordless sign-in: the opaque
// handle of its ceremony (single use, minutes) and the options for
// navigator.credentials.get (protocol.CredentialAssertion as JSON, no
// allowCredentials: the authenticator offers its discoverable passkeys).
type PasswordlessChallenge struct {
	Ceremony  string
	ExpiresAt time.Time
	Options   json.RawMessage
}

// Validated is the result of a successful Validate: the user a user's
// token speaks for, or the service account and granted scopes of a service
// account's token.
type Validated struct {
	User    *User
	Account *ServiceAccount
	Scopes  []Scope
	Claims  token.Claims
}

// SessionInfo is one live session of a user: a refresh-token family that
// still holds a token that can be used.
type SessionInfo struct {
	// ID is the family ID, the "sid" of the session's access tokens.
	ID string
	// StartedAt is the sign-in; LastUsedAt the newest refresh (or the
	// sign-in when there was none).
	StartedAt, LastUsedAt time.Time
	// ExpiresAt is when the session ends unless refreshed.
	ExpiresAt time.Time
}

// MaxSessionsListed bounds Sessions: a user with more live sessions than
// this sees the newest ones.
const MaxSessionsListed = 100

// FactorInfo is a second factor as its owner sees it: never its secret.
type FactorInfo struct {
	ID         string
	Kind       string // "totp"
	Name       string
	Active     bool // its enrolment is confirmed
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

// TOTPEnrolment is a started TOTP enrolment, shown once: the factor to
// confirm and what the person's authenticator app needs.
type TOTPEnrolment struct {
	FactorID string
	Secret   string // base32
	URI      string // otpauth://totp/...
	QRPNG    []byte // the URI as a QR code
}
