package factor

import (
	"context"
	"errors"
	"time"
)

// Kind is the type of a factor.
type Kind string

// The kinds of factor. KindRecoveryCode is not a stored factor but is
// offered at sign-in beside the others while unused codes remain.
const (
	KindTOTP         Kind = "totp"
	KindWebAuthn     Kind = "webauthn"
	KindRecoveryCode Kind = "recovery_code"
)

// MaxNameLen bounds a factor's name ("phone", "YubiKey 5C").
const MaxNameLen = 64

// Factor is one enrolled (or enrolling) second factor of a user.
type Factor struct {
	ID     string // UUIDv7
	UserID string
	Kind   Kind
	Name   string
	// Secret is the factor's secret as package seal sealed it (a TOTP
	// seed); the store keeps it as it is and never sees it in the clear.
	Secret    string
	CreatedAt time.Time
	// ConfirmedAt is when the enrolment was confirmed (a first code
	// accepted); nil = not yet, so the factor is not active.
	ConfirmedAt *time.Time
	LastUsedAt  *time.Time
	// TOTPStep is the last TOTP time step accepted (0 = none): a code of
	// this step or an earlier one is refused, so each is accepted once.
	TOTPStep int64
}

// Active reports whether the factor counts: its enrolment is confirmed.
func (f Factor) Active() bool { return f.ConfirmedAt != nil }

// Ticket is what a sign-in with the right password for an account with a
// factor hands out instead of tokens: proof that the password was right,
// good for one completion with a factor until ExpiresAt. Only the SHA-256
// of its secret is stored (token.HashOpaque), like a refresh token's.
type Ticket struct {
	Hash      string
	UserID    string
	CreatedAt time.Time // when the password was checked
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// ErrNotFound is a factor or ticket that does not exist (for this user).
var ErrNotFound = errors.New("factor: not found")

// Store is the storage of factors, recovery codes and tickets. Every
// method that consumes something (a TOTP step, a recovery code, a ticket)
// does so in one conditional statement and reports whether it did, so of
// two concurrent uses, on any number of instances, exactly one wins.
type Store interface {
	// CreateFactor stores f.
	CreateFactor(ctx context.Context, f Factor) error
	// Factors returns the user's factors, confirmed or not, oldest first.
	Factors(ctx context.Context, userID string) ([]Factor, error)
	// Factor returns the user's factor id, or ErrNotFound (also when it is
	// another user's).
	Factor(ctx context.Context, userID, id string) (*Factor, error)
	// ConfirmFactor marks an unconfirmed factor confirmed at at, with step
	// as its last TOTP step; false when it is missing or already confirmed.
	ConfirmFactor(ctx context.Context, userID, id string, step int64, at time.Time) (bool, error)
	// AcceptTOTPStep records step as the factor's last accepted step and at
	// as its last use, only if step is later than the one stored; false
	// means the code was used already (or the factor is gone).
	AcceptTOTPStep(ctx context.Context, id string, step int64, at time.Time) (bool, error)
	// DeleteFactor removes the user's factor; false when there was none.
	DeleteFactor(ctx context.Context, userID, id string) (bool, error)
	// DeleteUnconfirmedFactors removes the user's unconfirmed factors of
	// kind (an abandoned enrolment, replaced by a new one).
	DeleteUnconfirmedFactors(ctx context.Context, userID string, kind Kind) error
	// ResealFactor replaces the factor's sealed secret old by resealed
	// (a key rotation); false when the stored value is no longer old.
	ResealFactor(ctx context.Context, id, old, resealed string) (bool, error)
	// AllFactors pages through every factor in ID order after afterID
	// ("" = from the start), at most limit, for a key rotation.
	AllFactors(ctx context.Context, afterID string, limit int) ([]Factor, error)

	// ReplaceRecoveryCodes replaces all the user's recovery codes by these
	// hashes (HashRecoveryCode), in one transaction.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error
	// UseRecoveryCode marks the user's unused code with this hash used;
	// false when there is none (wrong, or used already).
	UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) (bool, error)
	// RecoveryCodesLeft counts the user's unused codes.
	RecoveryCodesLeft(ctx context.Context, userID string) (int, error)

	// CreateTicket stores t.
	CreateTicket(ctx context.Context, t Ticket) error
	// Ticket returns the ticket with this hash if it is unused and not
	// expired at now, or ErrNotFound.
	Ticket(ctx context.Context, hash string, now time.Time) (*Ticket, error)
	// UseTicket marks the ticket used at at if it is unused and not expired
	// then; false otherwise.
	UseTicket(ctx context.Context, hash string, at time.Time) (bool, error)
	// AttemptTicket counts one code attempt on the ticket if it is unused,
	// not expired at now, and has had fewer than max attempts; false
	// otherwise (the ticket is spent, or gone). Counting before the code
	// is checked, in one conditional statement, bounds the codes tried
	// with one ticket to max across every instance.
	AttemptTicket(ctx context.Context, hash string, max int, now time.Time) (bool, error)
	// DeleteExpiredTickets removes the tickets expired at now.
	DeleteExpiredTickets(ctx context.Context, now time.Time) (int64, error)
}
