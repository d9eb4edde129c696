package httpapi

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/ratelimit"
)

// Limiter decides whether one more request under key is allowed now, and
// if not, how long until it is (ratelimit.Limiter).
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// RateLimit throttles one route per client IP: a first line of defence
// against one source. The per-account budgets (password attempts, reset
// mails) are the service's, which checks them under the canonical address
// it derives anyway, so the API neither reads a body twice nor normalises
// an email its own way. They are windows, not lockouts.
type RateLimit struct {
	Method, Path string  // e.g. "POST", "/user/token"
	PerIP        Limiter // nil = none
}

// limitedAs names the routes that spend another route's per-client
// budget: beginning a passwordless passkey sign-in is a sign-in attempt
// (its completion is POST /user/token itself).
var limitedAs = map[string]string{"POST /user/token/webauthn": "POST /user/token"}

// rateLimit is the middleware for cfg.RateLimits. A limiter error (its
// backing store is down and it has no fallback) lets the request through:
// refusing every login because Redis is down would be worse.
func (s *server) rateLimit(c *gin.Context) {
	route := c.Request.Method + " " + c.FullPath()
	if as, ok := limitedAs[route]; ok {
		route = as
	}
	for _, rl := range s.cfg.RateLimits {
		if rl.Method+" "+rl.Path != route {
			continue
		}
		if rl.PerIP != nil && !s.allow(c, rl.PerIP, ratelimit.ClientKey(ratelimit.Action(route), c.ClientIP())) {
			countLimited(rl.Method, rl.Path)
			return
		}
	}
	c.Next()
}

func (s *server) allow(c *gin.Context, l Limiter, key string) bool {
	ok, retry, err := l.Allow(c.Request.Context(), key)
	if err != nil {
		s.log.WarnContext(c.Request.Context(), "rate limiter failed; request let through", "error", err)
		return true
	}
	if ok {
		return true
	}
	setRetryAfter(c, retry)
	writeError(c, http.StatusTooManyRequests, codeResourceExhausted, "too many requests; retry later", nil)
	c.Abort()
	return false
}

// setRetryAfter sets Retry-After in whole seconds, rounded up, at least 1.
func setRetryAfter(c *gin.Context, retry time.Duration) {
	c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(retry, time.Second).Seconds()))))
}
