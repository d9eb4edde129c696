package ratelimit

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"
)

// slidingLog is the whole decision in one script, so it is atomic across
// every instance sharing the Redis: a sorted set per key holds the times
// (µs, score) of the requests allowed in the last window. Stale entries
// are dropped, then the request is allowed and recorded if fewer than the
// limit remain; otherwise the reply is the wait until the oldest leaves
// the window. Time comes from the Redis server (TIME), so instances with
// skewed clocks still share one timeline (needs Redis >= 5, which
// replicates scripts by effects). The key expires one window after its
// last allowed request, so idle keys cost nothing. Denied requests are not
// recorded (see the package doc). Memory per key is O(limit).
//
// KEYS[1] key; ARGV[1] limit; ARGV[2] window in µs; ARGV[3] a unique
// member (two requests in one microsecond must not collapse into one).
// Reply: {1, 0} allowed, {0, wait µs} denied.
var slidingLog = redis.NewScript(`
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  return {1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return {0, wait}
`)

type redisLimiter struct {
	c      *redis.Client
	prefix string
	rule   Rule
	window int64 // µs
}

// NewRedis returns a Limiter enforcing rule across every instance that
// shares the Redis and prefix (one Lua script per decision, one round
// trip). It panics if the rule is invalid (see Rule.Validate).
func NewRedis(client *redis.Client, prefix string, rule Rule) Limiter {
	rule.mustValidate()
	return &redisLimiter{c: client, prefix: prefix, rule: rule, window: max(rule.Window.Microseconds(), 1)}
}

func (l *redisLimiter) Allow(ctx context.Context, key string) (bool, time.Duration, error) {
	res, err := slidingLog.Run(ctx, l.c, []string{l.prefix + key}, l.rule.Limit, l.window, member()).Int64Slice()
	if err != nil {
		return false, 0, fmt.Errorf("ratelimit: redis: %w", err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("ratelimit: redis: unexpected reply %v", res)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Microsecond, nil
}

// member returns 64 random bits as hex: unique enough among the requests of
// one key in one microsecond.
func member() string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}
