package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisURL returns USERSVC_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/0)
// or skips the test (fails it under USERSVC_TEST_REQUIRE_ALL=1).
func RedisURL(t testing.TB) string {
	t.Helper()
	return Need(t, "USERSVC_TEST_REDIS_URL")
}

// RedisClient connects to the Redis of USERSVC_TEST_REDIS_URL and returns
// the client and a key prefix unique to this test ("test:<random>:").
// Tests share one server (and one database), so each must keep to its own
// prefix; when the test ends every key under it is deleted and the client
// closed. The server must answer a PING, or the test fails: a set URL with
// no server behind it is a broken environment, not a reason to skip.
func RedisClient(t testing.TB) (client *redis.Client, prefix string) {
	t.Helper()
	opt := redisOptions(t)
	client = redis.NewClient(opt)
	prefix = "test:" + RandomHex(8) + ":"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		t.Fatalf("redis at %s: %v", opt.Addr, err)
	}
	t.Cleanup(func() {
		defer client.Close()
		if err := DeleteRedisPrefix(context.Background(), client, prefix); err != nil {
			t.Errorf("delete test keys %s*: %v", prefix, err)
		}
	})
	return client, prefix
}

// DeleteRedisPrefix deletes every key that starts with prefix (SCAN + UNLINK,
// so it never blocks the server the way KEYS would). prefix must not
// contain glob characters; test prefixes never do.
func DeleteRedisPrefix(ctx context.Context, client *redis.Client, prefix string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 1000 {
			if err := client.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return client.Unlink(ctx, batch...).Err()
	}
	return nil
}

func redisOptions(t testing.TB) *redis.Options {
	t.Helper()
	url := RedisURL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("USERSVC_TEST_REDIS_URL: %v", err)
	}
	return opt
}

// RedisProxy is a Proxy in front of the test Redis, for tests of what code
// does while Redis is unreachable (Down) and after it returns (Up).
type RedisProxy struct{ *Proxy }

// NewRedisProxy starts a proxy (up) in front of USERSVC_TEST_REDIS_URL's
// server; it stops when the test ends.
func NewRedisProxy(t testing.TB) *RedisProxy {
	t.Helper()
	return &RedisProxy{NewProxy(t, redisOptions(t).Addr)}
}

// Client returns a client that reaches the test Redis through the proxy,
// with the URL's database and credentials, and settings that make an
// outage show at once: no command retries, one dial attempt, one-second
// timeouts. It is closed when the test ends.
func (p *RedisProxy) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt := redisOptions(t)
	opt.Addr = p.Addr()
	opt.MaxRetries = -1
	opt.DialerRetries = 1
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.PoolTimeout = time.Second
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}
