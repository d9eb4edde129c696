package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"

	"github.com/usersvc/usersvc/internal/cache"
	"github.com/usersvc/usersvc/internal/config"
	"github.com/usersvc/usersvc/internal/httpapi"
	"github.com/usersvc/usersvc/internal/ratelimit"
	"github.com/usersvc/usersvc/internal/revocation"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/user"
)

// redisPrefix namespaces every key usersvc writes, so a shared Redis is
// safe: "usersvc:", or "usersvc:<namespace>:" for a named deployment.
func redisPrefix(cfg *config.Config) string {
	if cfg.Namespace == "" {
		return "usersvc:"
	}
	return "usersvc:" + cfg.Namespace + ":"
}

// NewRedis connects to USERSVC_REDIS_URL (nil when unset). The client
// reconnects by itself; nothing here needs Redis to be up at start.
func NewRedis(cfg *config.Config) (*redis.Client, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("USERSVC_REDIS_URL: %w", err)
	}
	// Everything in Redis has a fallback (the database, a local limiter),
	// so a slow or dead Redis must fail fast rather than hold requests:
	// short timeouts and no retries, instead of go-redis' 5s dial timeout
	// and three retries with backoff.
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout =
		250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond
	opt.MaxRetries = -1
	rc := redis.NewClient(opt)
	// A client span per command, named by the command only: the statement
	// would carry keys, and ours contain emails (per-account rate limits).
	// Pings (health checks) are left out: they are not part of a request.
	if err := redisotel.InstrumentTracing(rc, redisotel.WithDBStatement(false), redisotel.WithCallerEnabled(false),
		redisotel.WithDialFilter(true),
		redisotel.WithCommandFilter(func(cmd redis.Cmder) bool { return cmd.Name() == "ping" })); err != nil {
		return nil, fmt.Errorf("redis tracing: %w", err)
	}
	registerRedisPool(rc)
	return rc, nil
}

// shared is what a service instance shares with the others through Redis,
// or keeps in process when that is correct.
type shared struct {
	store    user.Store
	denylist user.Denylist
	// passwordAttempts is the per-account password budget (sign-ins and
	// current-password checks), kept where the passwords are checked.
	passwordAttempts user.Limiter
	// resetRequests is the per-address budget of reset mails.
	resetRequests user.Limiter
	// clientLimits are the per-client budgets the gRPC port spends for
	// callers that come straight to it (clientLimiters).
	clientLimits map[ratelimit.Action]ratelimit.Limiter
	checks       []check
	close        func() error
}

// sharedState wraps the store with the user cache and builds the logout
// denylist, which lives in the database (a logout survives restarts and
// holds on every instance) with, when configured, Redis as a shared cache
// in front (internal/revocation):
//   - with Redis: the user cache and the denylist's cache in Redis, shared
//     by every instance;
//   - dev mode without Redis: the user cache in process, and the denylist
//     loaded once and answered from memory (there is one process);
//   - a service without Redis: no cache (a per-instance cache would serve
//     users another instance changed), and denylist checks the memory
//     cannot answer are a database query.
func sharedState(ctx context.Context, cfg *config.Config, log *slog.Logger, mode Mode, st *sqlstore.Store) (*shared, error) {
	rc, err := NewRedis(cfg)
	if err != nil {
		return nil, err
	}
	deny, err := revocation.New(ctx, st, revocation.Options{Redis: rc, Prefix: redisPrefix(cfg) + "revoked:",
		Exclusive: mode == ModeDev, Logger: log})
	if err != nil {
		return nil, err
	}
	denyCheck := check{name: "revocations", fn: func(context.Context) error { return deny.Healthy() }, optional: true}
	tries := newLimiter(rc, redisPrefix(cfg), log, "login-account", cfg.RateLoginAccount)
	resets := newLimiter(rc, redisPrefix(cfg), log, "reset-account", cfg.RateResetAccount)
	clients := clientLimiters(cfg, rc, log)
	opts := cache.Options{Logger: log}
	switch {
	case rc != nil:
		cs := cache.NewStore(st, cache.NewRedis(rc, redisPrefix(cfg)), opts)
		return &shared{store: cs, denylist: deny, passwordAttempts: tries, resetRequests: resets, clientLimits: clients,
			checks: []check{{name: "redis", fn: func(context.Context) error { return cs.Healthy() }, optional: true}, denyCheck},
			close:  rc.Close}, nil
	case mode == ModeDev:
		return &shared{store: cache.NewStore(st, cache.NewLocal(100_000), opts), denylist: deny, passwordAttempts: tries, resetRequests: resets, clientLimits: clients,
			close: func() error { return nil }}, nil
	default:
		return &shared{store: st, denylist: deny, passwordAttempts: tries, resetRequests: resets, clientLimits: clients, close: func() error { return nil }}, nil
	}
}

// newLimiter is a limiter for rule r named name: in Redis (rc), shared by
// every instance, falling back to an in-process limiter while Redis is down;
// in process without Redis.
func newLimiter(rc *redis.Client, prefix string, log *slog.Logger, name string, r config.Rate) ratelimit.Limiter {
	rule := ratelimit.Rule{Limit: r.N, Window: r.Window}
	local := ratelimit.NewLocal(rule)
	if rc == nil {
		return countRejections(name, local)
	}
	return countRejections(name, ratelimit.NewFallback(ratelimit.NewRedis(rc, prefix+"rate:"+name+":", rule), local, log))
}

// clientLimiters are the per-client budgets of the anonymous actions, one
// limiter each, which every door to an action spends: the API's routes,
// the page forms and the gRPC port. In Redis (rc), the API and service
// instances share them; without Redis each process has its own.
func clientLimiters(cfg *config.Config, rc *redis.Client, log *slog.Logger) map[ratelimit.Action]ratelimit.Limiter {
	limiter := func(name string, r config.Rate) ratelimit.Limiter {
		return newLimiter(rc, redisPrefix(cfg), log, name, r)
	}
	return map[ratelimit.Action]ratelimit.Limiter{
		ratelimit.SignIn:       limiter("login-ip", cfg.RateLoginIP),
		ratelimit.SignUp:       limiter("register-ip", cfg.RateRegisterIP),
		ratelimit.ResetRequest: limiter("reset-ip", cfg.RateResetIP),
		// Resent verification mails: the reset mails' rule, a budget of
		// their own.
		ratelimit.VerificationResend: limiter("verify-ip", cfg.RateResetIP),
	}
}

// rateLimits builds the API's per-client limits (clientLimiters), as the
// rules of its routes and as the map the page forms spend from. The
// per-account budgets are the service's (sharedState): they also cover
// current-password checks and callers of the RPC port.
func rateLimits(cfg *config.Config, log *slog.Logger) ([]httpapi.RateLimit, map[ratelimit.Action]ratelimit.Limiter, func() error, error) {
	rc, err := NewRedis(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	byAction := clientLimiters(cfg, rc, log)
	limits := make([]httpapi.RateLimit, 0, len(byAction))
	for action, l := range byAction {
		method, path, _ := strings.Cut(string(action), " ")
		limits = append(limits, httpapi.RateLimit{Method: method, Path: path, PerIP: l})
	}
	closeFn := func() error { return nil }
	if rc != nil {
		closeFn = rc.Close
	}
	return limits, byAction, closeFn, nil
}
