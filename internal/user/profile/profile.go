// Package profile is the flows of an account's life as its owner and the
// admins see it: sign-up and creation, reading and listing, changes to
// name, email, password, role and status, and deletion. Who may do what is
// the domain's (user.Actor); what a change entails beyond the row — a
// verification for a new address, the end of sessions on a password
// change or a disable — is done in the change's transaction.
package profile

import (
	"context"
	"log/slog"

	"github.com/usersvc/usersvc/internal/user"
)

// Verifications opens an email verification inside the caller's
// transaction (recovery.Recovery): a sign-up and an email change ask for one.
type Verifications interface {
	RequestVerification(ctx context.Context, r user.Repo, u *user.User, email string) error
}

// SecondFactors says whether a user has an active second factor
// (mfa.Flow), so step-up can ask for a sign-in that used it.
type SecondFactors = user.ActiveFactors

// Deps are what the profile flows are built from.
type Deps struct {
	Store         user.Store
	Hasher        user.PasswordHasher
	Policy        user.PasswordPolicy
	Verifications Verifications
	// PasswordAttempts is the per-account password budget (shared with
	// sign-ins): checking the current password for an email or password
	// change spends it, so a stolen access token cannot guess the password
	// through Update faster than a login can. nil means unlimited.
	PasswordAttempts user.Limiter
	// ResetRequests is the per-address mail budget: a notice to the owner
	// of a taken address (enumeration-safe sign-up or email change)
	// spends it under "signup|". nil means unlimited.
	ResetRequests user.Limiter
	// Searcher answers List's text queries; nil means a prefix match on
	// email and name in the database.
	Searcher user.Searcher
	// SecondFactors, when set, makes step-up ask for the caller's factor.
	SecondFactors SecondFactors
	Logger        *slog.Logger // nil = slog.Default()
	Clock         user.Clock   // nil = the system clock
}

// Profiles runs the profile flows.
type Profiles struct {
	store  user.Store
	hasher user.PasswordHasher
	policy user.PasswordPolicy
	verify Verifications
	tries  user.Limiter
	resets user.Limiter
	search user.Searcher
	step   user.StepUp
	log    *slog.Logger
	clock  user.Clock
	cfg    user.Config
}

// New builds the flows; cfg must have its defaults (user.Config.WithDefaults).
func New(d Deps, cfg user.Config) *Profiles {
	return &Profiles{store: d.Store, hasher: d.Hasher, policy: d.Policy, verify: d.Verifications,
		tries: d.PasswordAttempts, resets: d.ResetRequests, search: d.Searcher,
		step: user.StepUp{Clock: d.Clock, Window: cfg.ReauthWindow, Factors: d.SecondFactors},
		log:  user.LoggerOr(d.Logger), clock: d.Clock, cfg: cfg}
}
