// Package session is the flows of signing in and staying signed in: a
// password sign-in starts a session (a refresh-token family) with a
// short-lived access token, a refresh rotates the refresh token, a logout
// ends the session, and Validate and Authenticate decide what an access
// token still speaks for. It also lists a user's live sessions and signs
// a user out everywhere.
package session

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/usersvc/usersvc/internal/user"
)

// ClientAccounts finds the service account a client token speaks for
// (serviceaccount.Accounts).
type ClientAccounts interface {
	// Active returns an account that exists and is not revoked, or
	// user.ErrBadClient.
	Active(ctx context.Context, id string) (*user.ServiceAccount, error)
}

// SecondFactor is the second-factor flow as a sign-in sees it
// (mfa.Flow).
type SecondFactor interface {
	// Challenge returns a ticket for an account with an active factor,
	// nil for one without.
	Challenge(ctx context.Context, u *user.User) (*user.MFAChallenge, error)
	// Redeem checks a ticket and a code and returns the user and the
	// sign-in's amr values.
	Redeem(ctx context.Context, ticket, kind, code string) (*user.User, []string, error)
	// FinishPasswordless checks a passwordless passkey ceremony and its
	// assertion and returns the user and the sign-in's amr values.
	FinishPasswordless(ctx context.Context, ceremony string, credential json.RawMessage) (*user.User, []string, error)
}

// Deps are what the session flows are built from.
type Deps struct {
	Store    user.Store
	Hasher   user.PasswordHasher
	Tokens   user.AccessTokens
	Accounts ClientAccounts
	// Denylist of logged-out access tokens; nil means logout ends only the
	// refresh-token family and access tokens live out their short TTL.
	Denylist user.Denylist
	// PasswordAttempts bounds password attempts per account — sign-ins and
	// current-password checks alike, one budget (the profile flow spends
	// it too); nil means unlimited (the API's per-IP limits still apply).
	PasswordAttempts user.Limiter
	// SecondFactor asks for an enrolled factor after the password; nil =
	// passwords alone sign in.
	SecondFactor SecondFactor
	// StepUp guards ending another user's sessions (user.NeedsStepUp);
	// the zero value asks for no factor.
	StepUp user.StepUp
	Logger *slog.Logger // nil = slog.Default()
	Clock  user.Clock   // nil = the system clock
}

// Manager runs the session flows.
type Manager struct {
	store    user.Store
	hasher   user.PasswordHasher
	tokens   user.AccessTokens
	accounts ClientAccounts
	deny     user.Denylist
	tries    user.Limiter
	mfa      SecondFactor
	step     user.StepUp
	log      *slog.Logger
	clock    user.Clock
	cfg      user.Config
	// dummyHash is verified when Auth finds no user, so a login for an
	// unknown email costs one hash like any other and timing reveals
	// nothing, the first one after start included. Unmatchable makes it
	// without hashing: a whole argon2id hash (19 MiB, 20-50 ms) was the
	// largest single cost on the start-up path of every process.
	dummyHash string
}

// New builds the flows and makes the dummy hash; cfg must have its
// defaults (user.Config.WithDefaults).
func New(d Deps, cfg user.Config) (*Manager, error) {
	s := &Manager{store: d.Store, hasher: d.Hasher, tokens: d.Tokens, accounts: d.Accounts, deny: d.Denylist,
		tries: d.PasswordAttempts, mfa: d.SecondFactor, step: d.StepUp, log: user.LoggerOr(d.Logger), clock: d.Clock, cfg: cfg}
	var err error
	if s.dummyHash, err = s.hasher.Unmatchable(); err != nil {
		return nil, fmt.Errorf("session: dummy hash: %w", err)
	}
	return s, nil
}
