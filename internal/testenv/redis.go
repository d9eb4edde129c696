package testenv

import (
	"context"
	"io"
	"net"
	"sync"
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

// RedisSwitch is a TCP relay in front of the test Redis that a test can
// take down and bring back, to see what code does while Redis is
// unreachable and after it returns. Unlike Relay it can be reopened, and it
// keeps its listening port throughout: while down it accepts connections
// and closes them at once, so a client fails fast (EOF) instead of waiting
// for a timeout, and never sees the address taken by someone else.
type RedisSwitch struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	closed bool
	conns  map[net.Conn]struct{}
}

// NewRedisSwitch starts a switch (up) in front of USERSVC_TEST_REDIS_URL's
// server; it stops when the test ends.
func NewRedisSwitch(t testing.TB) *RedisSwitch {
	t.Helper()
	opt := redisOptions(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redis switch: %v", err)
	}
	s := &RedisSwitch{ln: ln, target: opt.Addr, conns: map[net.Conn]struct{}{}}
	go s.serve()
	t.Cleanup(s.close)
	return s
}

// Client returns a client that reaches the test Redis through the switch,
// with the URL's database and credentials, and settings that make an
// outage show at once: no command retries, one dial attempt, one-second
// timeouts. It is closed when the test ends.
func (s *RedisSwitch) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt := redisOptions(t)
	opt.Addr = s.ln.Addr().String()
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

// Down cuts every connection through the switch and refuses new ones (they
// are accepted and closed) until Up.
func (s *RedisSwitch) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	for c := range s.conns {
		c.Close()
	}
	clear(s.conns)
}

// Up lets connections through again.
func (s *RedisSwitch) Up() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = false
}

func (s *RedisSwitch) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.pipe(c)
	}
}

func (s *RedisSwitch) pipe(c net.Conn) {
	s.mu.Lock()
	refuse := s.down || s.closed
	s.mu.Unlock()
	if refuse {
		c.Close()
		return
	}
	u, err := net.DialTimeout("tcp", s.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	s.mu.Lock()
	if s.down || s.closed {
		s.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	s.conns[c], s.conns[u] = struct{}{}, struct{}{}
	s.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	c.Close()
	u.Close()
	s.mu.Lock()
	delete(s.conns, c)
	delete(s.conns, u)
	s.mu.Unlock()
}

func (s *RedisSwitch) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	clear(s.conns)
}
