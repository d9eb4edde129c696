package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Value encodings in Redis: a one-byte tag, then the value or the
// tombstone's or lease's token. The tag keeps them apart whatever the
// value's bytes are.
const (
	tagValue     = 'v'
	tagTombstone = 't'
	tagLease     = 'l'
)

// flushBatch is how many keys one SCAN step and one flush script handle.
const flushBatch = 500

// flushScript tombstones the keys in KEYS that hold a value or a lease
// (tag 'v' or 'l'), leaving tombstones and anything else alone. pcall: a
// key of another type under the prefix (a misconfiguration) must not abort
// the whole repair.
var flushScript = redis.NewScript(`
local n = 0
for _, k in ipairs(KEYS) do
  local v = redis.pcall('GET', k)
  local tag = type(v) == 'string' and string.sub(v, 1, 1)
  if tag == 'v' or tag == 'l' then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    n = n + 1
  end
end
return n
`)

// fillScript stores ARGV[2] for ARGV[3] milliseconds when KEYS[1] still
// holds the lease ARGV[1]: compare and set, in one step on the server.
var fillScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
`)

type redisBackend struct {
	c      *redis.Client
	prefix string
}

// NewRedis returns a Backend on a standalone Redis (or a primary with
// replicas; not Cluster: Flush runs scripts over keys from SCAN). Every key
// is prefix+key, and the prefix must belong to this backend alone — Flush
// rewrites every cache value under it. Values and tombstones get the TTLs
// the Store asks for; nothing is stored without one.
func NewRedis(client *redis.Client, prefix string) Backend {
	return &redisBackend{c: client, prefix: prefix}
}

func (r *redisBackend) Get(ctx context.Context, key string) (State, []byte, error) {
	b, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Missing, nil, nil
	}
	if err != nil {
		return Missing, nil, fmt.Errorf("cache: redis get: %w", err)
	}
	if len(b) > 0 && b[0] == tagTombstone {
		return Tombstoned, b[1:], nil
	}
	if len(b) > 0 && b[0] == tagLease {
		return Leased, b[1:], nil
	}
	if len(b) > 0 && b[0] == tagValue {
		return Present, b[1:], nil
	}
	// Not ours (or corrupt): report it as a value the caller cannot decode,
	// which makes the Store tombstone it so it gets replaced.
	return Present, b, nil
}

func (r *redisBackend) Lease(ctx context.Context, key string, ttl time.Duration) ([]byte, error) {
	token := newToken()
	ok, err := r.c.SetNX(ctx, r.prefix+key, append([]byte{tagLease}, token...), ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("cache: redis lease: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return token, nil
}

func (r *redisBackend) Fill(ctx context.Context, key string, token, value []byte, ttl time.Duration) (bool, error) {
	v := make([]byte, 0, len(value)+1)
	v = append(append(v, tagValue), value...)
	n, err := fillScript.Run(ctx, r.c, []string{r.prefix + key}, append([]byte{tagLease}, token...), v,
		max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return false, fmt.Errorf("cache: redis fill: %w", err)
	}
	return n == 1, nil
}

func (r *redisBackend) Tombstone(ctx context.Context, ttl time.Duration, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	tomb := append([]byte{tagTombstone}, newToken()...)
	var err error
	if len(keys) == 1 {
		err = r.c.Set(ctx, r.prefix+keys[0], tomb, ttl).Err()
	} else {
		_, err = r.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, k := range keys {
				p.Set(ctx, r.prefix+k, tomb, ttl)
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("cache: redis tombstone: %w", err)
	}
	return nil
}

func (r *redisBackend) Flush(ctx context.Context, ttl time.Duration) error {
	tomb := append([]byte{tagTombstone}, newToken()...)
	ms := max(ttl.Milliseconds(), 1)
	// SCAN returns every key that exists for the whole scan at least once;
	// keys filled during it are fresh (the Store only flushes once no stale
	// load can still fill).
	iter := r.c.Scan(ctx, 0, escapeGlob(r.prefix)+"*", flushBatch).Iterator()
	batch := make([]string, 0, flushBatch)
	run := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := flushScript.Run(ctx, r.c, batch, tomb, ms).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == flushBatch {
			if err := run(); err != nil {
				return fmt.Errorf("cache: redis flush: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("cache: redis flush: scan: %w", err)
	}
	if err := run(); err != nil {
		return fmt.Errorf("cache: redis flush: %w", err)
	}
	return nil
}

func (r *redisBackend) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cache: redis ping: %w", err)
	}
	return nil
}

// globEscaper escapes the characters special in SCAN MATCH patterns.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

func escapeGlob(s string) string { return globEscaper.Replace(s) }
