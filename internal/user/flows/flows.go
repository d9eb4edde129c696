// Package flows assembles the user service's flows into one Service: the
// whole domain as a transport sees it (the gRPC handler, the admin CLI).
// Each flow is built with only the ports it needs, and the flows meet only
// through the small interfaces they declare (a sign-up asks the recovery
// flow for a verification; a client token asks the service-account flow
// for its account), so New is the one place that knows all of them.
package flows

import (
	"errors"
	"log/slog"
	"time"

	"github.com/usersvc/usersvc/internal/factor"
	"github.com/usersvc/usersvc/internal/seal"
	"github.com/usersvc/usersvc/internal/user"
	"github.com/usersvc/usersvc/internal/user/mfa"
	"github.com/usersvc/usersvc/internal/user/profile"
	"github.com/usersvc/usersvc/internal/user/recovery"
	"github.com/usersvc/usersvc/internal/user/serviceaccount"
	"github.com/usersvc/usersvc/internal/user/session"
)

// Deps are every port the flows are built from; New hands each flow its own.
type Deps struct {
	Store  user.Store
	Hasher user.PasswordHasher
	Policy user.PasswordPolicy
	Tokens user.AccessTokens
	// Denylist of logged-out access tokens; nil means logout ends only the
	// refresh-token family and access tokens live out their short TTL.
	Denylist user.Denylist
	// PasswordAttempts bounds password attempts per account — sign-ins and
	// current-password checks alike, one budget; nil means unlimited.
	PasswordAttempts user.Limiter
	// ResetRequests bounds reset and notice mails per address; nil means
	// unlimited.
	ResetRequests user.Limiter
	// Searcher answers List's text queries; nil means a prefix match in
	// the database.
	Searcher user.Searcher
	// Factors stores second factors; nil = Store's own when it has them
	// (the SQL store does), else none.
	Factors factor.Store
	// Passkeys stores passkeys and WebAuthn ceremonies; nil = Store's own
	// when it has them (the SQL store does), else none.
	Passkeys factor.PasskeyStore
	// MFAKeys seal TOTP secrets; nil = TOTP cannot be enrolled.
	MFAKeys *seal.Keyring
	Logger  *slog.Logger     // nil = slog.Default()
	Now     func() time.Time // nil = time.Now
}

// Service is every flow of the user service; their methods are its methods.
type Service struct {
	*profile.Profiles
	*session.Manager
	*recovery.Recovery
	*serviceaccount.Accounts
	*mfa.Flow
	store user.Store
}

// New checks the dependencies and builds the flows.
func New(d Deps, cfg user.Config) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Policy == nil || d.Tokens == nil {
		return nil, errors.New("user: flows.New needs Store, Hasher, Policy and Tokens")
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = d.Tokens.TTL() // how long a published revocation must last
	}
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	clock := user.Clock(d.Now)
	accounts := serviceaccount.New(d.Store, d.Tokens, clock)
	rec := recovery.New(recovery.Deps{Store: d.Store, Hasher: d.Hasher, Policy: d.Policy,
		ResetRequests: d.ResetRequests, Logger: d.Logger, Clock: clock}, cfg)
	factors := d.Factors
	if fs, ok := d.Store.(factor.Store); ok && factors == nil {
		factors = fs
	}
	passkeys := d.Passkeys
	if ps, ok := d.Store.(factor.PasskeyStore); ok && passkeys == nil {
		passkeys = ps
	}
	// A removal runs in the factor store's own transaction when it has
	// one (the SQL store under the cache), whose Repo removes the factors
	// in it too; the cache's Atomic hands out a Repo that does not.
	var tx mfa.Transactor = d.Store
	if t, ok := factors.(mfa.Transactor); ok {
		tx = t
	}
	second := mfa.New(mfa.Deps{Users: d.Store, Factors: factors, Passkeys: passkeys, Tx: tx, Keys: d.MFAKeys,
		PasswordAttempts: d.PasswordAttempts, Logger: d.Logger, Clock: clock}, cfg)
	sess, err := session.New(session.Deps{Store: d.Store, Hasher: d.Hasher, Tokens: d.Tokens, Accounts: accounts,
		Denylist: d.Denylist, PasswordAttempts: d.PasswordAttempts, SecondFactor: second, Logger: d.Logger, Clock: clock,
		StepUp: user.StepUp{Clock: clock, Window: cfg.ReauthWindow, Factors: second}}, cfg)
	if err != nil {
		return nil, err
	}
	prof := profile.New(profile.Deps{Store: d.Store, Hasher: d.Hasher, Policy: d.Policy, Verifications: rec, SecondFactors: second,
		PasswordAttempts: d.PasswordAttempts, ResetRequests: d.ResetRequests, Searcher: d.Searcher,
		Logger: d.Logger, Clock: clock}, cfg)
	return &Service{Profiles: prof, Manager: sess, Recovery: rec, Accounts: accounts, Flow: second, store: d.Store}, nil
}

// Store returns the store the flows were built on (for metrics).
func (s *Service) Store() user.Store { return s.store }
