package revocation_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/revocation"
	"github.com/usersvc/usersvc/internal/store/sqlstore"
	"github.com/usersvc/usersvc/internal/testenv"
)

// openDB is the real store, SQLite in a temp dir.
func openDB(t *testing.T) *sqlstore.Store {
	t.Helper()
	st, err := sqlstore.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

func newList(t *testing.T, st revocation.Store, o revocation.Options) *revocation.List {
	t.Helper()
	l, err := revocation.New(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func isRevoked(t *testing.T, l *revocation.List, keys ...string) bool {
	t.Helper()
	ok, err := l.AnyRevoked(context.Background(), keys...)
	if err != nil {
		t.Fatalf("AnyRevoked(%v): %v", keys, err)
	}
	return ok
}

// Every way of running: two instances and a restart share what one of
// them revoked, and entries end at their expiry.
func TestSharedAndDurable(t *testing.T) {
	kinds := map[string]func(t *testing.T) revocation.Options{
		"redis": func(t *testing.T) revocation.Options {
			c, prefix := testenv.RedisClient(t)
			return revocation.Options{Redis: c, Prefix: prefix}
		},
		"database only": func(*testing.T) revocation.Options { return revocation.Options{} },
	}
	for name, opts := range kinds {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := openDB(t)
			clk := testenv.NewClock(time.Now())
			o := opts(t)
			o.Now = clk.Now
			a, b := newList(t, st, o), newList(t, st, o)
			if err := a.Revoke(ctx, "jti-1", clk.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := a.Revoke(ctx, "jti-past", clk.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			restarted := newList(t, st, o)
			for n, l := range map[string]*revocation.List{"a": a, "b": b, "restarted": restarted} {
				if !isRevoked(t, l, "other", "jti-1") {
					t.Errorf("instance %s: revoked key not reported", n)
				}
				if isRevoked(t, l, "other", "jti-past") {
					t.Errorf("instance %s: unrevoked or expired key reported", n)
				}
			}
			if o.Redis != nil {
				return // Redis expires keys on its own clock: see TestExpiredEntriesAreSwept
			}
			clk.Add(time.Minute)
			if isRevoked(t, a, "jti-1") || isRevoked(t, b, "jti-1") {
				t.Error("revocation outlived its expiry")
			}
		})
	}
}

// In a single process the list is read once at start and then answered
// from memory.
func TestExclusiveLoadsOnce(t *testing.T) {
	ctx := context.Background()
	st := openDB(t)
	first := newList(t, st, revocation.Options{Exclusive: true})
	if err := first.Revoke(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	restarted := newList(t, st, revocation.Options{Exclusive: true})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// The database is closed: only memory can answer.
	if !isRevoked(t, restarted, "jti-1") || isRevoked(t, restarted, "jti-2") {
		t.Error("exclusive list did not answer from what it loaded")
	}
}

// A Redis that lost its keys (restart, flush) is filled again from the
// database before its misses count.
func TestRedisThatLostItsDataIsRefilled(t *testing.T) {
	ctx := context.Background()
	st := openDB(t)
	c, prefix := testenv.RedisClient(t)
	o := revocation.Options{Redis: c, Prefix: prefix}
	a, b := newList(t, st, o), newList(t, st, o)
	if err := a.Revoke(ctx, "jti-1", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !isRevoked(t, b, "jti-1") {
		t.Fatal("not shared")
	}
	if err := testenv.DeleteRedisPrefix(ctx, c, prefix); err != nil {
		t.Fatal(err)
	}
	if !isRevoked(t, b, "jti-1") {
		t.Fatal("revocation lost with Redis' data")
	}
	if n, err := c.Exists(ctx, prefix+"jti-1").Result(); err != nil || n != 1 {
		t.Fatalf("Redis not refilled: %d, %v", n, err)
	}
}

// With Redis down a logout still succeeds (the database has it), every
// instance refuses the token (from memory or the database), /readyz is
// told, and on recovery Redis gets what it missed.
func TestRedisDownFailsClosed(t *testing.T) {
	ctx := context.Background()
	st := openDB(t)
	sw := testenv.NewRedisProxy(t)
	direct, prefix := testenv.RedisClient(t)
	clk := testenv.NewClock(time.Now())
	o := revocation.Options{Redis: sw.Client(t), Prefix: prefix, Now: clk.Now}
	a, b := newList(t, st, o), newList(t, st, o)
	if err := a.Revoke(ctx, "before", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !isRevoked(t, b, "before") {
		t.Fatal("not shared")
	}
	sw.Down()
	if err := a.Revoke(ctx, "during", clk.Now().Add(time.Hour)); err != nil {
		t.Fatalf("logout with Redis down: %v", err)
	}
	for _, key := range []string{"before", "during"} {
		for n, l := range map[string]*revocation.List{"a": a, "b": b} {
			if !isRevoked(t, l, key) {
				t.Errorf("instance %s accepts %q with Redis down", n, key)
			}
		}
	}
	if isRevoked(t, b, "never") {
		t.Error("unrevoked key refused with Redis down")
	}
	if a.Healthy() == nil || b.Healthy() == nil {
		t.Error("Healthy says nothing of the outage")
	}
	sw.Up()
	clk.Add(2 * time.Second) // past the retry interval
	if !isRevoked(t, b, "during") {
		t.Fatal("revocation made during the outage lost after it")
	}
	if err := b.Healthy(); err != nil {
		t.Errorf("Healthy after recovery: %v", err)
	}
	if n, err := direct.Exists(ctx, prefix+"during").Result(); err != nil || n != 1 {
		t.Errorf("Redis did not get the revocation it missed: %d, %v", n, err)
	}
}

// TestDatabaseDownIsNotBlamedOnRedis: with Redis fine and the database
// gone, a check fails naming the database; the log and Healthy do not say
// Redis is down (they once did, sending the operator to the wrong server).
func TestDatabaseDownIsNotBlamedOnRedis(t *testing.T) {
	st := openDB(t)
	client, prefix := testenv.RedisClient(t)
	out := &testenv.LogBuffer{}
	l := newList(t, st, revocation.Options{Redis: client, Prefix: prefix,
		Logger: slog.New(slog.NewJSONHandler(out, nil))})
	_ = st.Close()
	_, err := l.AnyRevoked(context.Background(), "k")
	if err == nil || !strings.Contains(err.Error(), "database") {
		t.Errorf("AnyRevoked with the database gone = %v, want an error naming the database", err)
	}
	if n := out.Count("redis"); n != 0 {
		t.Errorf("the log blames Redis: %s", out.String())
	}
	if err := l.Healthy(); err != nil {
		t.Errorf("Healthy with Redis fine: %v", err)
	}
}

// Expired rows leave the database (swept on a later revocation), and a
// Redis entry lives as long as the revocation, not longer.
func TestExpiredEntriesAreSwept(t *testing.T) {
	ctx := context.Background()
	st := openDB(t)
	c, prefix := testenv.RedisClient(t)
	clk := testenv.NewClock(time.Now())
	l := newList(t, st, revocation.Options{Redis: c, Prefix: prefix, Now: clk.Now, SweepInterval: time.Minute})
	t0 := clk.Now()
	if err := l.Revoke(ctx, "short", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pttl, err := c.PTTL(ctx, prefix+"short").Result(); err != nil || pttl <= 0 || pttl > time.Minute+time.Millisecond {
		t.Errorf("Redis TTL %v, %v; want at most the revocation's minute", pttl, err)
	}
	clk.Add(2 * time.Minute)
	if err := l.Revoke(ctx, "long", clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	entries, err := st.Revocations(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Key != "long" {
		t.Errorf("rows after the sweep: %+v, want only long", entries)
	}
}
