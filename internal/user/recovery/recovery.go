// Package recovery is the flows of proving an address and getting back
// into an account: email verification (at sign-up, on an email change,
// and resent on request) and password reset by mail. Each opens a
// single-use token that only its hash is stored of, sends the raw token
// to the address through the outbox (the mailer is its only other holder),
// and consumes it once.
package recovery

import (
	"log/slog"

	"github.com/usersvc/usersvc/internal/user"
)

// Deps are what the recovery flows are built from.
type Deps struct {
	Store  user.Store
	Hasher user.PasswordHasher
	Policy user.PasswordPolicy
	// ResetRequests bounds reset mails per address, whoever asks, so the
	// endpoint cannot be used to flood a mailbox; resent verification mails
	// have a budget of their own under it (key "verify|"); nil means
	// unlimited.
	ResetRequests user.Limiter
	Logger        *slog.Logger // nil = slog.Default()
	Clock         user.Clock   // nil = the system clock
}

// Recovery runs the verification and reset flows.
type Recovery struct {
	store  user.Store
	hasher user.PasswordHasher
	policy user.PasswordPolicy
	resets user.Limiter
	log    *slog.Logger
	clock  user.Clock
	cfg    user.Config
}

// New builds the flows; cfg must have its defaults (user.Config.WithDefaults).
func New(d Deps, cfg user.Config) *Recovery {
	return &Recovery{store: d.Store, hasher: d.Hasher, policy: d.Policy, resets: d.ResetRequests,
		log: user.LoggerOr(d.Logger), clock: d.Clock, cfg: cfg}
}
