package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usersvc/usersvc/internal/user"
)

// Limiter decides whether one more request under key is allowed now, and
// if not, how long until it is (ratelimit.Limiter).
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error)
}

// RateLimit throttles one route per client IP and, for routes whose body
// names an account, per email. Per-email limits slow password guessing
// against one account however many IPs the attacker has; they are windows,
// not lockouts, so the owner can always sign in again a window later.
type RateLimit struct {
	Method, Path string  // e.g. "POST", "/user/token"
	PerIP        Limiter // nil = none
	PerEmail     Limiter // nil = none
}

// rateLimit is the middleware for cfg.RateLimits. A limiter error (its
// backing store is down and it has no fallback) lets the request through:
// refusing every login because Redis is down would be worse.
func (s *server) rateLimit(c *gin.Context) {
	route := c.Request.Method + " " + c.FullPath()
	for _, rl := range s.cfg.RateLimits {
		if rl.Method+" "+rl.Path != route {
			continue
		}
		if rl.PerIP != nil && !s.allow(c, rl.PerIP, "ip|"+route+"|"+c.ClientIP()) {
			countLimited(rl.Method, rl.Path)
			return
		}
		if rl.PerEmail != nil {
			if email := peekEmail(c, s.cfg.MaxBodyBytes); email != "" &&
				!s.allow(c, rl.PerEmail, "email|"+route+"|"+email) {
				countLimited(rl.Method, rl.Path)
				return
			}
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

// peekEmail reads the "email" field of a JSON body without consuming it:
// the body is buffered (it is already capped by limitBody) and put back for
// the handler, which does the real validation.
func peekEmail(c *gin.Context, limit int64) string {
	if c.Request.Body == nil {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(c.Request.Body, limit+1))
	c.Request.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), c.Request.Body))
	if err != nil {
		return ""
	}
	var v struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	// The account's canonical address, so look-alike spellings of one
	// address (ｃarol@, CAROL@) share its budget.
	return user.NormalizeEmail(v.Email)
}
