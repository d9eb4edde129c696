package user

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/usersvc/usersvc/internal/password"
	"github.com/usersvc/usersvc/internal/token"
)

// Config holds the service's tunable rules.
type Config struct {
	DefaultPageSize int           // default 20
	MaxPageSize     int           // default 100
	RefreshTTL      time.Duration // default 30 days
	ResetTTL        time.Duration // default 30 minutes
	VerifyTTL       time.Duration // email verification token lifetime; default 24 hours
	// RefreshReuseGrace is how long after its first use a refresh token
	// may be presented again without being taken for a leak: the reuse
	// yields another session of the same family (concurrent requests of
	// one client crossing a rotation). 0 (the zero value) is strict: any
	// reuse revokes the family.
	RefreshReuseGrace time.Duration
	// SessionIdleTimeout ends a session (a refresh-token family) not
	// refreshed for this long; default 15 days. SessionMaxLifetime ends
	// any session this long after its sign-in, however active; default 30
	// days. Both are checked on every refresh, for pages and API alike.
	SessionIdleTimeout time.Duration
	SessionMaxLifetime time.Duration
	// RequireVerifiedEmail refuses sign-in (and refresh) of an account
	// whose address is not verified, with ErrEmailNotVerified.
	RequireVerifiedEmail bool
	// SignupEnumerationSafe makes an anonymous registration answer the
	// same for a new and a taken address (Create returns nil, nil) and
	// mails the owner of a taken one instead.
	SignupEnumerationSafe bool
}

func (c *Config) setDefaults() {
	if c.DefaultPageSize <= 0 {
		c.DefaultPageSize = 20
	}
	if c.MaxPageSize <= 0 {
		c.MaxPageSize = 100
	}
	if c.RefreshTTL <= 0 {
		c.RefreshTTL = 30 * 24 * time.Hour
	}
	if c.SessionIdleTimeout <= 0 {
		c.SessionIdleTimeout = 15 * 24 * time.Hour
	}
	if c.SessionMaxLifetime <= 0 {
		c.SessionMaxLifetime = 30 * 24 * time.Hour
	}
	if c.ResetTTL <= 0 {
		c.ResetTTL = 30 * time.Minute
	}
	if c.VerifyTTL <= 0 {
		c.VerifyTTL = 24 * time.Hour
	}
}

// Deps are the ports the service is built from.
type Deps struct {
	Store  Store
	Hasher PasswordHasher
	Policy PasswordPolicy
	Tokens AccessTokens
	// Denylist of logged-out access tokens; nil means logout ends only the
	// refresh-token family and access tokens live out their short TTL.
	Denylist Denylist
	// PasswordAttempts bounds password attempts per account — sign-ins and
	// current-password checks alike, one budget — so a stolen access token
	// cannot guess the password through Update faster than a login can;
	// nil means unlimited (the API's per-IP limits still apply).
	PasswordAttempts Limiter
	// ResetRequests bounds reset mails per address, whoever asks, so the
	// endpoint cannot be used to flood a mailbox; resent verification mails
	// have a budget of their own under it (key "verify|"); nil means
	// unlimited.
	ResetRequests Limiter
	// Searcher answers List's text queries; nil means a prefix match on
	// email and name in the database.
	Searcher Searcher
	Logger   *slog.Logger     // nil = slog.Default()
	Now      func() time.Time // nil = time.Now
}

// Service implements every use case of the user service.
type Service struct {
	store  Store
	hasher PasswordHasher
	policy PasswordPolicy
	tokens AccessTokens
	deny   Denylist
	tries  Limiter
	resets Limiter
	search Searcher
	log    *slog.Logger
	now    func() time.Time
	cfg    Config
	// dummyHash is verified when Auth finds no user, so a login for an
	// unknown email costs one hash like any other and timing reveals
	// nothing, the first one after start included. Unmatchable makes it
	// without hashing: a whole argon2id hash (19 MiB, 20-50 ms) was the
	// largest single cost on the start-up path of every process.
	dummyHash string
}

// NewService checks the dependencies and makes the dummy hash.
func NewService(d Deps, cfg Config) (*Service, error) {
	if d.Store == nil || d.Hasher == nil || d.Policy == nil || d.Tokens == nil {
		return nil, errors.New("user: NewService needs Store, Hasher, Policy and Tokens")
	}
	cfg.setDefaults()
	if cfg.DefaultPageSize > cfg.MaxPageSize {
		return nil, fmt.Errorf("user: default page size %d exceeds max page size %d", cfg.DefaultPageSize, cfg.MaxPageSize)
	}
	s := &Service{store: d.Store, hasher: d.Hasher, policy: d.Policy, tokens: d.Tokens, deny: d.Denylist, tries: d.PasswordAttempts, resets: d.ResetRequests, search: d.Searcher,
		log: d.Logger, now: d.Now, cfg: cfg}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	var err error
	if s.dummyHash, err = s.hasher.Unmatchable(); err != nil {
		return nil, fmt.Errorf("user: dummy hash: %w", err)
	}
	return s, nil
}

func (s *Service) clock() time.Time { return s.now().UTC() }

// Store returns the store the service was built on (for metrics).
func (s *Service) Store() Store { return s.store }

// checkPassword applies the byte bound and the policy; it returns a field
// problem or "".
func (s *Service) checkPassword(pw, email string) string {
	if pw == "" {
		return "is required"
	}
	if len(pw) > MaxPasswordBytes {
		return fmt.Sprintf("must be at most %d bytes", MaxPasswordBytes)
	}
	if err := s.policy.Check(pw, email); err != nil {
		var pe *password.PolicyError
		if errors.As(err, &pe) {
			return pe.Reason
		}
		return err.Error()
	}
	return ""
}

// storeErr passes domain errors from the store through and wraps the rest
// as internal.
func storeErr(op string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return Internal(op, err)
}

// isTokenErr reports whether err is a token verification failure (bad input
// from the client, not a server fault).
func isTokenErr(err error) bool { return errors.Is(err, token.ErrInvalidToken) }
