package factor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Passkey is the WebAuthn credential of a factor of KindWebAuthn: the
// factor row holds its name and times, this its key material. Credential is
// the go-webauthn Credential record as JSON (id, public key, flags,
// transports, AAGUID); SignCount is kept beside it so the counter can be
// moved forward by one conditional statement (AcceptSignCount), and the
// copy inside Credential is not authoritative.
type Passkey struct {
	FactorID string
	UserID   string
	// CredentialKey is CredentialKey(the credential id): the index a
	// passwordless sign-in finds the passkey (and its user) by. A hash, so
	// the column has a fixed width whatever the authenticator's id length
	// (up to 1023 bytes).
	CredentialKey string
	Credential    []byte
	SignCount     uint32
}

// CredentialKey is the lookup key of a raw credential id: hex SHA-256.
func CredentialKey(credentialID []byte) string {
	sum := sha256.Sum256(credentialID)
	return hex.EncodeToString(sum[:])
}

// The kinds of WebAuthn ceremony whose state is stored between its two steps.
const (
	CeremonyRegistration = "registration"
	CeremonyMFA          = "mfa"
	CeremonyPasswordless = "passwordless"
)

// Ceremony is the server-side state of a WebAuthn ceremony between its
// begin and finish (the challenge the response must sign): stored only
// here, never handed to the browser, so a client cannot choose it. Hash is
// the SHA-256 of the ceremony's handle (token.HashOpaque): an opaque random
// handle for a passwordless sign-in, the MFA ticket for a second factor,
// the factor id for a registration.
type Ceremony struct {
	Hash      string
	Kind      string
	UserID    string // "" for a passwordless sign-in (the user is not known yet)
	Session   []byte // the go-webauthn SessionData as JSON
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ErrDuplicateCredential is a credential already registered (to anyone).
var ErrDuplicateCredential = errors.New("factor: credential registered already")

// PasskeyStore is the storage of passkeys and WebAuthn ceremonies, beside
// Store (the SQL store implements both). Like Store, every consuming method
// decides in one conditional statement.
type PasskeyStore interface {
	// ConfirmPasskey stores p as the credential of the user's unconfirmed
	// webauthn factor p.FactorID and confirms the factor at at, in one
	// transaction; false when the factor is missing, of another kind or
	// confirmed already; ErrDuplicateCredential when the credential is
	// registered already.
	ConfirmPasskey(ctx context.Context, p Passkey, at time.Time) (bool, error)
	// Passkeys returns the user's passkeys of confirmed factors, oldest first.
	Passkeys(ctx context.Context, userID string) ([]Passkey, error)
	// PasskeyByCredential returns the passkey of a confirmed factor with
	// this CredentialKey, or ErrNotFound.
	PasskeyByCredential(ctx context.Context, credentialKey string) (*Passkey, error)
	// AcceptSignCount records count as the passkey's signature counter and
	// at as its factor's last use, only if count is later than the stored
	// one, or both are 0 (an authenticator without a counter); false means
	// the counter went backwards (a cloned authenticator, or a replay
	// racing this one) or the factor is gone.
	AcceptSignCount(ctx context.Context, factorID string, count uint32, at time.Time) (bool, error)

	// CreateCeremony stores c.
	CreateCeremony(ctx context.Context, c Ceremony) error
	// Ceremony returns the unused, unexpired ceremony of this hash and
	// kind without using it (an MFA ceremony is spent with its ticket), or
	// ErrNotFound.
	Ceremony(ctx context.Context, hash, kind string, now time.Time) (*Ceremony, error)
	// TakeCeremony returns the ceremony like Ceremony and marks it used,
	// once: of two concurrent takes exactly one gets it, the other
	// ErrNotFound.
	TakeCeremony(ctx context.Context, hash, kind string, now time.Time) (*Ceremony, error)
	// DeleteExpiredCeremonies removes the ceremonies expired at now.
	DeleteExpiredCeremonies(ctx context.Context, now time.Time) (int64, error)
}
