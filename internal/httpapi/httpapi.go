// Package httpapi is the public HTTP/JSON edge of the user service. It is a
// thin edge: every request is parsed and bounded here, then answered by
// exactly one call to the user service, which authenticates the caller's
// bearer token itself; its domain errors are mapped to HTTP statuses. It holds no business rules of its own,
// so the RPC service stays the single source of truth for who may do what.
//
// The contract is api/openapi.yaml (served at GET /openapi.yaml); the tests
// check every response they receive against it.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/health"
	"github.com/usersvc/usersvc/internal/user"
)

// Config tunes the HTTP API. The zero value is usable.
type Config struct {
	// MaxBodyBytes caps every request body; larger bodies get 413. Default
	// 64 KiB, far above any legitimate request (the largest is a 1 KiB
	// password plus a few short fields) yet small enough that a client cannot
	// make the server buffer much.
	MaxBodyBytes int64
	// RPCTimeout bounds each call to the user service, so a hung instance
	// costs a client a 503 rather than a stuck connection. Default 5s.
	RPCTimeout time.Duration
	// Ready reports whether the process can serve traffic (GET /readyz);
	// nil means always ready.
	Ready func(ctx context.Context) error
	// Degraded are further /readyz checks that report "degraded: …" and
	// never make the process unready (the registry serving from cache).
	Degraded []health.Check
	// Middleware runs after request-ID, logging and recovery and before
	// the routes (also for unknown routes).
	Middleware []gin.HandlerFunc
	// RateLimits throttle the unauthenticated write routes (429 with
	// Retry-After).
	RateLimits []RateLimit
	// TrustedProxies are the peers (the gateways, and nginx in front of
	// them) whose X-Forwarded-For the API believes when it takes the
	// client's address for rate limits and logs. Empty means none: the
	// client address is the peer's.
	TrustedProxies []netip.Prefix
	// Mount, when set, adds routes beside the API's own (the web pages:
	// pages.Pages.Mount), behind the same request ID, access log,
	// recovery, body limit and middleware. Paths are gin patterns (":id",
	// "*file") and handlers plain net/http, so the pages need not know gin;
	// they read path parameters with r.PathValue and the client address
	// with ClientIP.
	Mount func(add func(method, path string, h http.Handler))
	// NotFound, when set, may answer a path no route matches: it returns
	// the handler for that path (the pages answer a mistyped page address
	// with a page), or nil for the API's JSON 404.
	NotFound func(path string) http.Handler
}

const (
	defaultMaxBodyBytes = 64 << 10
	defaultRPCTimeout   = 5 * time.Second
)

func (c *Config) setDefaults() {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = defaultMaxBodyBytes
	}
	if c.RPCTimeout <= 0 {
		c.RPCTimeout = defaultRPCTimeout
	}
}

// Users is the user service as the API needs it: one method per RPC,
// domain types in and out, errors as *user.Error. The request ID and the
// caller's bearer token travel in the context (reqmeta), and the service
// authenticates every call itself. rpc.Users implements it over go-micro,
// which this package never links.
//
// Create returns nil, nil for an enumeration-safe sign-up: accepted, with
// no user to show.
type Users interface {
	Get(ctx context.Context, id string) (*user.User, error)
	List(ctx context.Context, in user.ListInput) (*user.Page, error)
	Create(ctx context.Context, in user.CreateInput) (*user.User, error)
	Update(ctx context.Context, id string, in user.UpdateInput) (*user.User, error)
	Delete(ctx context.Context, id string) error
	Auth(ctx context.Context, email, password string) (*user.Session, error)
	AuthClient(ctx context.Context, clientID, secret string) (*user.ClientSession, error)
	Refresh(ctx context.Context, refresh string) (*user.Session, error)
	Revoke(ctx context.Context, refresh, access string) error
	CreatePasswordReset(ctx context.Context, email string) error
	ResetPassword(ctx context.Context, token, password string) error
	Keys(ctx context.Context) ([]byte, error)
	VerifyEmail(ctx context.Context, token string) error
	ResendVerification(ctx context.Context, email string) error
	Sessions(ctx context.Context, id string) ([]user.SessionInfo, error)
	EndSessions(ctx context.Context, id string) error
	CompleteMFA(ctx context.Context, ticket, kind, code string) (*user.Session, error)
	EnrolTOTP(ctx context.Context, id, name string) (*user.TOTPEnrolment, error)
	ConfirmTOTP(ctx context.Context, id, factorID, code string) ([]string, error)
	Factors(ctx context.Context, id string) ([]user.FactorInfo, int, error)
	RegenerateRecoveryCodes(ctx context.Context, id string) ([]string, error)
	RemoveFactor(ctx context.Context, id, factorID string) error
	RemoveFactors(ctx context.Context, id string) error
	BeginPasskey(ctx context.Context, id, name string) (*user.PasskeyRegistration, error)
	FinishPasskey(ctx context.Context, id, factorID string, credential []byte) ([]string, error)
	BeginPasswordless(ctx context.Context) (*user.PasswordlessChallenge, error)
	CompletePasswordless(ctx context.Context, ceremony string, credential []byte) (*user.Session, error)
}

// server holds what the handlers share.
type server struct {
	cfg   Config
	users Users
	log   *slog.Logger
}

// New returns the HTTP handler of the API: a gin engine in release mode with
// request IDs, a structured access log, panic recovery, cfg.Middleware and
// the routes. users is the user-service client (rpc.NewUsers); log nil
// means slog.Default().
func New(cfg Config, users Users, log *slog.Logger) http.Handler {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	s := &server{cfg: cfg, users: users, log: log}

	// Release mode silences gin's debug route dump and warnings; the access
	// log below is ours, in slog.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	trusted := make([]string, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		trusted[i] = p.String()
	}
	if err := e.SetTrustedProxies(trusted); err != nil {
		panic("httpapi: trusted proxies: " + err.Error()) // parsed prefixes; cannot fail
	}
	// A wrong method on a known path is 405 with Allow, not 404, so clients
	// can tell a typo in the path from a wrong verb.
	e.HandleMethodNotAllowed = true
	// An API has exactly one spelling per path: /user/ is unknown, not a
	// redirect a JSON client would follow with a different method or not at
	// all.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false

	e.Use(s.requestID, s.accessLog, s.recovery, s.limitBody, noStore)
	e.Use(cfg.Middleware...)
	if len(cfg.RateLimits) > 0 {
		e.Use(s.rateLimit)
	}
	e.NoRoute(func(c *gin.Context) {
		if s.cfg.NotFound != nil {
			if h := s.cfg.NotFound(c.Request.URL.Path); h != nil {
				mount(h)(c)
				return
			}
		}
		writeError(c, http.StatusNotFound, codeNotFound, "no such route", nil)
	})
	// gin has set Allow already.
	e.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed on this route", nil)
	})
	s.routes(e)
	return e
}
