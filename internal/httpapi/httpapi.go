// Package httpapi is the public HTTP/JSON edge of the user service. It is a
// thin gateway: every request is authenticated, parsed and bounded here, then
// answered by one call to the user service over go-micro RPC, whose domain
// errors are mapped to HTTP statuses. It holds no business rules of its own,
// so the RPC service stays the single source of truth for who may do what.
//
// The contract is api/openapi.yaml (served at GET /openapi.yaml); the tests
// check every response they receive against it.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	userv1 "github.com/usersvc/usersvc/api/user/v1"
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
	// Middleware runs after request-ID, logging and recovery and before
	// the routes (also for unknown routes).
	Middleware []gin.HandlerFunc
	// RateLimits throttle the unauthenticated write routes (429 with
	// Retry-After).
	RateLimits []RateLimit
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

// trustedProxies are the peers whose X-Forwarded-For / X-Real-IP headers
// gin believes when computing the client IP: loopback and the private
// ranges, where a reverse proxy or load balancer of ours lives. A client
// connecting from a public address cannot spoof its IP in the access log or
// in per-IP rate limits by sending these headers itself.
var trustedProxies = []string{
	"127.0.0.0/8", "::1/128", // loopback
	"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", // RFC 1918
	"fc00::/7", // RFC 4193 unique local
}

// server holds what the handlers share.
type server struct {
	cfg   Config
	users userv1.UserService
	log   *slog.Logger
}

// New returns the HTTP handler of the API: a gin engine in release mode with
// request IDs, a structured access log, panic recovery, cfg.Middleware and
// the routes. users is the user-service client (rpc.NewUserClient); log nil
// means slog.Default().
func New(cfg Config, users userv1.UserService, log *slog.Logger) http.Handler {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	s := &server{cfg: cfg, users: users, log: log}

	// Release mode silences gin's debug route dump and warnings; the access
	// log below is ours, in slog.
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	if err := e.SetTrustedProxies(trustedProxies); err != nil {
		panic("httpapi: trusted proxies: " + err.Error()) // a constant list; cannot fail
	}
	// A wrong method on a known path is 405 with Allow, not 404, so clients
	// can tell a typo in the path from a wrong verb.
	e.HandleMethodNotAllowed = true
	// An API has exactly one spelling per path: /user/ is unknown, not a
	// redirect a JSON client would follow with a different method or not at
	// all.
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false

	e.Use(s.requestID, s.accessLog, s.recovery, s.limitBody)
	e.Use(cfg.Middleware...)
	if len(cfg.RateLimits) > 0 {
		e.Use(s.rateLimit)
	}
	e.NoRoute(func(c *gin.Context) {
		writeError(c, http.StatusNotFound, codeNotFound, "no such route", nil)
	})
	// gin has set Allow already.
	e.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed on this route", nil)
	})
	s.routes(e)
	return e
}
