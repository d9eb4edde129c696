package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Value encodings in Redis: a one-byte tag, then the value or the tombstone
// token. The tag keeps the two apart whatever the value's bytes are.
const (
	tagValue     = 'v'
	tagTombstone = 't'
)

// flushBatch is how many keys one SCAN step and one flush script handle.
const flushBatch = 500

// flushScript tombstones the keys in KEYS that hold a value (tag 'v'),
// leaving tombstones and anything else alone. pcall: a key of another type
// under the prefix (a misconfiguration) must not abort the whole repair.
var flushScript = redis.NewScript(`
local n = 0
for _, k in ipairs(KEYS) do
  local v = redis.pcall('GET', k)
  if type(v) == 'string' and string.sub(v, 1, 1) == 'v' then
    redis.call('SET', k, ARGV[1], 'PX', ARGV[2])
    n = n + 1
  end
end
return n
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
	if len(b) > 0 && b[0] == tagValue {
		return Present, b[1:], nil
	}
	// Not ours (or corrupt): report it as a value the caller cannot decode,
	// which makes the Store tombstone it so it gets replaced.
	return Present, b, nil
}

func (r *redisBackend) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	v := make([]byte, 0, len(value)+1)
	v = append(append(v, tagValue), value...)
	ok, err := r.c.SetNX(ctx, r.prefix+key, v, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("cache: redis set nx: %w", err)
	}
	return ok, nil
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
