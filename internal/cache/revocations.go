package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Revocations is the access-token denylist. Access tokens are verified
// without a database read, so logging out cannot take one back; instead
// its jti is revoked until the token would have expired anyway, and every
// instance checks the list. Entries expire on their own, so the list holds
// at most the tokens revoked within one access-token lifetime.
//
// When the list is unreachable, Revoke returns the error (logout should
// then report failure, the session is not ended) and Revoked returns false
// with the error. The caller decides whether to fail open (accept the
// token) or closed (reject it). We recommend open, via FailOpen: failing
// closed turns a Redis outage into a total outage of every authenticated
// endpoint, while failing open only lets a token that was logged out live
// on for the rest of its lifetime (minutes) during the outage — the same
// as if revocation did not exist. A deployment that cannot accept that
// should fail closed and run Redis highly available.
type Revocations interface {
	// Revoke denies jti until until (pass the token's expiry plus the
	// verifier's clock leeway, since the token is accepted until then).
	// A time already past is a no-op.
	Revoke(ctx context.Context, jti string, until time.Time) error
	// Revoked reports whether jti is denied.
	Revoked(ctx context.Context, jti string) (bool, error)
}

type redisRevocations struct {
	c      *redis.Client
	prefix string
}

// NewRedisRevocations keeps the denylist in Redis under prefix, one key per
// jti, visible to every instance as soon as Revoke returns.
//
// The key's expiry is set relative to this instance's clock (PX until-now),
// not as an absolute time on the Redis server's clock (PXAT): the tokens'
// own expiry is checked against the instances' clocks, and Redis' clock may
// be ahead, which would drop a revocation while the token is still
// accepted.
func NewRedisRevocations(client *redis.Client, prefix string) Revocations {
	return &redisRevocations{c: client, prefix: prefix}
}

func (r *redisRevocations) Revoke(ctx context.Context, jti string, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		return nil
	}
	// Round up to whole milliseconds (Redis' PX unit) so the entry never
	// expires before until.
	ttl = ttl.Truncate(time.Millisecond) + time.Millisecond
	if err := r.c.Set(ctx, r.prefix+jti, "1", ttl).Err(); err != nil {
		return fmt.Errorf("cache: revoke token: %w", err)
	}
	return nil
}

func (r *redisRevocations) Revoked(ctx context.Context, jti string) (bool, error) {
	n, err := r.c.Exists(ctx, r.prefix+jti).Result()
	if err != nil {
		return false, fmt.Errorf("cache: check token revocation: %w", err)
	}
	return n > 0, nil
}

type localRevocations struct {
	mu      sync.Mutex
	until   map[string]time.Time
	sweepAt int
}

// NewLocalRevocations keeps the denylist in process, for a single-process
// deployment and tests. Expired entries are swept once their number has
// doubled since the last sweep, so memory follows the live revocations.
func NewLocalRevocations() Revocations {
	return &localRevocations{until: map[string]time.Time{}, sweepAt: minSweep}
}

func (l *localRevocations) Revoke(_ context.Context, jti string, until time.Time) error {
	now := time.Now()
	if !until.After(now) {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.until[jti]; !ok || until.After(cur) {
		l.until[jti] = until
	}
	if len(l.until) >= l.sweepAt {
		for k, u := range l.until {
			if !u.After(now) {
				delete(l.until, k)
			}
		}
		l.sweepAt = max(minSweep, 2*len(l.until))
	}
	return nil
}

func (l *localRevocations) Revoked(_ context.Context, jti string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	u, ok := l.until[jti]
	if !ok {
		return false, nil
	}
	if !u.After(time.Now()) {
		delete(l.until, jti)
		return false, nil
	}
	return true, nil
}

type failOpen struct {
	r    Revocations
	log  *slog.Logger
	down atomic.Bool
	// retryAt (unix nanos) is when the list is asked again after a failure:
	// until then Revoked answers at once instead of paying a timeout per
	// request during an outage.
	retryAt atomic.Int64
}

// failOpenRetry is how long an unreachable list is left alone.
const failOpenRetry = time.Second

// FailOpen wraps r so that Revoked treats an unreachable list as "not
// revoked" (false, nil), logging "token revocation list unavailable,
// accepting tokens" once at warn when that starts and once at info when it
// ends. Revoke still returns its errors. See Revocations for why open.
func FailOpen(r Revocations, log *slog.Logger) Revocations {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &failOpen{r: r, log: log}
}

func (f *failOpen) Revoke(ctx context.Context, jti string, until time.Time) error {
	return f.r.Revoke(ctx, jti, until)
}

func (f *failOpen) Revoked(ctx context.Context, jti string) (bool, error) {
	if f.down.Load() && time.Now().UnixNano() < f.retryAt.Load() {
		return false, nil
	}
	revoked, err := f.r.Revoked(ctx, jti)
	if err != nil && callerDone(ctx) {
		return false, err // the caller gave up: not an outage, and not an answer
	}
	if err != nil {
		f.retryAt.Store(time.Now().Add(failOpenRetry).UnixNano())
		if f.down.CompareAndSwap(false, true) {
			f.log.Warn("token revocation list unavailable, accepting tokens", "err", err)
		}
		return false, nil
	}
	if f.down.Load() && f.down.CompareAndSwap(true, false) {
		f.log.Info("token revocation list available again")
	}
	return revoked, nil
}
