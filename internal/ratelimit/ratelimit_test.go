package ratelimit

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

// kinds builds limiters of each kind; two calls of one kind's new in a test
// give two instances sharing state (two API instances on one Redis).
//
// clock runs a test body on the kind's clock: the local limiter's tests run
// in a synctest bubble, whose fake clock jumps through the sleeps exactly;
// Redis keeps time itself (the scripts read TIME), so its tests sleep for
// real and allow for the round trips.
var kinds = []struct {
	name  string
	new   func(t *testing.T, rule Rule) func() Limiter
	clock func(body func(t *testing.T)) func(t *testing.T)
}{
	{"redis", func(t *testing.T, rule Rule) func() Limiter {
		_, prefix := testenv.RedisClient(t)
		return func() Limiter {
			c, _ := testenv.RedisClient(t) // a client (connection pool) per instance
			return NewRedis(c, prefix, rule)
		}
	}, func(body func(t *testing.T)) func(t *testing.T) { return body }},
	{"local", func(_ *testing.T, rule Rule) func() Limiter {
		l := NewLocal(rule)
		return func() Limiter { return l }
	}, func(body func(t *testing.T)) func(t *testing.T) {
		return func(t *testing.T) { synctest.Test(t, body) }
	}},
}

func allow(t *testing.T, l Limiter, key string) (bool, time.Duration) {
	t.Helper()
	ok, retry, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatalf("Allow(%s): %v", key, err)
	}
	if ok && retry != 0 {
		t.Errorf("allowed with retryAfter %v", retry)
	}
	return ok, retry
}

// Limit allowed, then denied with a retryAfter within the window, then
// allowed again once the window has passed; keys are independent.
func TestLimitThenWindow(t *testing.T) {
	rule := Rule{Limit: 3, Window: 300 * time.Millisecond}
	for _, k := range kinds {
		t.Run(k.name, k.clock(func(t *testing.T) {
			l := k.new(t, rule)()
			for i := range rule.Limit {
				if ok, _ := allow(t, l, "k"); !ok {
					t.Fatalf("request %d of %d denied", i+1, rule.Limit)
				}
			}
			ok, retry := allow(t, l, "k")
			if ok {
				t.Fatal("request over the limit allowed")
			}
			if retry <= 0 || retry > rule.Window {
				t.Fatalf("retryAfter = %v, want in (0, %v]", retry, rule.Window)
			}
			if ok, _ := allow(t, l, "other"); !ok {
				t.Fatal("another key denied")
			}
			time.Sleep(retry + 20*time.Millisecond)
			if ok, _ := allow(t, l, "k"); !ok {
				t.Fatal("denied after retryAfter had passed")
			}
			time.Sleep(rule.Window + 20*time.Millisecond)
			for i := range rule.Limit {
				if ok, _ := allow(t, l, "k"); !ok {
					t.Fatalf("after a full window, request %d denied", i+1)
				}
			}
		}))
	}
}

// The window slides: requests spread over the window count together, and
// each frees its slot one window after it was allowed.
func TestSlidingWindow(t *testing.T) {
	rule := Rule{Limit: 2, Window: 400 * time.Millisecond}
	for _, k := range kinds {
		t.Run(k.name, k.clock(func(t *testing.T) {
			l := k.new(t, rule)()
			start := time.Now()
			allow(t, l, "k") // t=0
			time.Sleep(200 * time.Millisecond)
			allow(t, l, "k") // t=200
			ok, retry := allow(t, l, "k")
			elapsed := time.Since(start)
			if ok {
				t.Fatal("third request within the window allowed")
			}
			// The first request leaves the window at t=400, i.e. in
			// window-elapsed: exactly on the local limiter's fake clock,
			// give or take the round trips on Redis'.
			slack := 30 * time.Millisecond
			if k.name == "local" {
				slack = 0
			}
			if want := rule.Window - elapsed; retry < want-slack || retry > want+slack {
				t.Errorf("retryAfter = %v, want about %v", retry, want)
			}
			time.Sleep(retry + 20*time.Millisecond)
			if ok, _ := allow(t, l, "k"); !ok {
				t.Fatal("denied after the oldest request left the window")
			}
			if ok, _ := allow(t, l, "k"); ok {
				t.Fatal("allowed although the t=200 and t=400 requests are in the window")
			}
		}))
	}
}

// An attacker hammering a key is denied but never extends the block: the
// owner gets through one window after the last allowed request, however
// many denied requests came in between. No permanent lockout.
func TestHammeringDoesNotExtendTheBlock(t *testing.T) {
	rule := Rule{Limit: 2, Window: 300 * time.Millisecond}
	for _, k := range kinds {
		t.Run(k.name, k.clock(func(t *testing.T) {
			l := k.new(t, rule)()
			start := time.Now()
			allow(t, l, "victim@example.com")
			allow(t, l, "victim@example.com")
			for {
				ok, _ := allow(t, l, "victim@example.com")
				if ok {
					break
				}
				if time.Since(start) > rule.Window+200*time.Millisecond {
					t.Fatal("still blocked well after one window: denied requests extended the block")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if d := time.Since(start); d < rule.Window-10*time.Millisecond {
				t.Errorf("allowed again after %v, before the window (%v)", d, rule.Window)
			}
		}))
	}
}

// Concurrent requests for one key from two instances: exactly Limit get
// through. For Redis this is the script's atomicity across instances.
func TestSharedAcrossInstances(t *testing.T) {
	rule := Rule{Limit: 10, Window: time.Minute}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			newInstance := k.new(t, rule)
			instances := []Limiter{newInstance(), newInstance()}
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for i := range 60 {
				wg.Go(func() {
					ok, _, err := instances[i%2].Allow(context.Background(), Key("token", "ip", "203.0.113.7"))
					if err != nil {
						t.Errorf("Allow: %v", err)
					}
					if ok {
						allowed.Add(1)
					}
				})
			}
			wg.Wait()
			if n := allowed.Load(); n != int64(rule.Limit) {
				t.Errorf("%d of 60 concurrent requests allowed across two instances, want %d", n, rule.Limit)
			}
		})
	}
}

// The Redis key of an idle limit expires on its own.
func TestRedisKeyExpires(t *testing.T) {
	c, prefix := testenv.RedisClient(t)
	l := NewRedis(c, prefix, Rule{Limit: 5, Window: 200 * time.Millisecond})
	allow(t, l, "k")
	ttl, err := c.PTTL(context.Background(), prefix+"k").Result()
	if err != nil || ttl <= 0 || ttl > 200*time.Millisecond {
		t.Fatalf("PTTL = %v, %v; want in (0, 200ms]", ttl, err)
	}
	time.Sleep(250 * time.Millisecond)
	if n, _ := c.Exists(context.Background(), prefix+"k").Result(); n != 0 {
		t.Error("idle key still exists after the window")
	}
}

// The local limiter forgets idle keys and never tracks more than maxKeys.
func TestLocalMemoryBound(t *testing.T) { synctest.Test(t, testLocalMemoryBound) }

func testLocalMemoryBound(t *testing.T) {
	l := NewLocal(Rule{Limit: 1, Window: 20 * time.Millisecond}).(*localLimiter)
	for i := range 1000 {
		allow(t, l, Key("ip", strings.Repeat("x", i%50), string(rune(i))))
	}
	time.Sleep(30 * time.Millisecond)
	allow(t, l, "fresh")
	if n := len(l.keys); n != 1 {
		t.Errorf("%d keys tracked after the others went idle, want 1", n)
	}

	l = NewLocal(Rule{Limit: 1, Window: time.Hour}).(*localLimiter)
	l.maxKeys = 10
	for i := range 100 {
		allow(t, l, string(rune('A'+i)))
	}
	if n := len(l.keys); n != 10 {
		t.Errorf("%d keys tracked, want the cap of 10", n)
	}
	if ok, _ := allow(t, l, string(rune('A'+99))); ok {
		t.Error("most recent key forgotten")
	}
}

func TestKey(t *testing.T) {
	distinct := [][]string{
		{"a:b", "c"}, {"a", "b:c"}, {"a", "b", "c"}, {`a\`, "b"}, {"a", `\b`}, {`a\:b`}, {"a", ":b"}, {"a:", "b"},
	}
	seen := map[string][]string{}
	for _, parts := range distinct {
		k := Key(parts...)
		if prev, ok := seen[k]; ok {
			t.Errorf("Key(%q) == Key(%q) == %q", parts, prev, k)
		}
		seen[k] = parts
	}
	if got := Key("token", "email", "a@example.com"); got != "token:email:a@example.com" {
		t.Errorf("Key = %q", got)
	}
}

func TestInvalidRulePanics(t *testing.T) {
	for _, r := range []Rule{{}, {Limit: 1}, {Window: time.Second}, {Limit: -1, Window: time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewLocal(%+v) did not panic", r)
				}
			}()
			NewLocal(r)
		}()
	}
	for _, r := range []Rule{DefaultTokenPerIP, DefaultTokenPerAccount, DefaultCreateUserPerIP, DefaultPasswordPerIP, DefaultPasswordPerEmail} {
		if err := r.Validate(); err != nil {
			t.Error(err)
		}
	}
}

// With Redis unreachable the fallback limits locally (same rule, no
// errors), reports it in Healthy, and returns to Redis when it recovers;
// each switch is logged once.
func TestFallback(t *testing.T) {
	rule := Rule{Limit: 3, Window: time.Minute}
	sw := testenv.NewRedisProxy(t)
	direct, prefix := testenv.RedisClient(t)
	observer := NewRedis(direct, prefix, rule) // sees the shared Redis state
	logs := &testenv.LogBuffer{}
	f := NewFallback(NewRedis(sw.Client(t), prefix, rule), NewLocal(rule), slog.New(slog.NewTextHandler(logs, nil)))
	f.RetryInterval = 50 * time.Millisecond

	if ok, _ := allow(t, f, "a"); !ok {
		t.Fatal("denied")
	}
	if err := f.Healthy(); err != nil {
		t.Fatalf("Healthy = %v", err)
	}

	sw.Down()
	for i := range rule.Limit {
		if ok, _ := allow(t, f, "b"); !ok {
			t.Fatalf("request %d denied during the outage", i+1)
		}
	}
	if ok, retry := allow(t, f, "b"); ok || retry <= 0 {
		t.Errorf("over the limit during the outage: allowed=%v retryAfter=%v; want denied by the local limiter", ok, retry)
	}
	if err := f.Healthy(); err == nil {
		t.Error("Healthy = nil during the outage")
	} else {
		t.Logf("Healthy during the outage: %v", err)
	}
	// Key "b" was limited locally: Redis has none of it.
	if ok, _ := allow(t, observer, "b"); !ok {
		t.Error("the outage's requests reached Redis")
	}

	sw.Up()
	deadline := time.Now().Add(5 * time.Second)
	for f.Healthy() != nil {
		if time.Now().After(deadline) {
			t.Fatal("did not return to Redis within 5s")
		}
		allow(t, f, "c")
		time.Sleep(10 * time.Millisecond)
	}
	// Back on Redis: "d" counts in the shared state.
	for range rule.Limit {
		allow(t, f, "d")
	}
	if ok, _ := allow(t, observer, "d"); ok {
		t.Error("requests after recovery did not go to Redis")
	}
	if w, i := logs.Count("rate limiter unavailable"), logs.Count("rate limiter available again"); w != 1 || i != 1 {
		t.Errorf("logged %d outage and %d recovery lines, want 1 and 1", w, i)
	}
}

// A caller that gives up is not an outage.
func TestFallbackCanceledCaller(t *testing.T) {
	c, prefix := testenv.RedisClient(t)
	f := NewFallback(NewRedis(c, prefix, Rule{Limit: 1, Window: time.Minute}), NewLocal(Rule{Limit: 1, Window: time.Minute}), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := f.Allow(ctx, "k"); err == nil {
		t.Error("Allow with a canceled context succeeded")
	}
	if err := f.Healthy(); err != nil {
		t.Errorf("Healthy = %v after a canceled call", err)
	}
}

func BenchmarkAllowRedis(b *testing.B) {
	c, prefix := testenv.RedisClient(b)
	// A limit never reached: every call takes the allow path, the longer
	// one (ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE), on a set holding the
	// last second of requests.
	l := NewRedis(c, prefix, Rule{Limit: 1 << 30, Window: time.Second})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, err := l.Allow(ctx, "bench"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
