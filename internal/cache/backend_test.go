package cache

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Both backends behave the same; the Store relies on exactly this.
func TestBackendSemantics(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		b := kind.new(t)
		get := func(key string) (State, []byte) {
			t.Helper()
			st, v, err := b.Get(ctx, key)
			if err != nil {
				t.Fatalf("Get(%s): %v", key, err)
			}
			return st, v
		}
		set := func(key, val string, ttl time.Duration) bool {
			t.Helper()
			ok, err := b.SetIfAbsent(ctx, key, []byte(val), ttl)
			if err != nil {
				t.Fatalf("SetIfAbsent(%s): %v", key, err)
			}
			return ok
		}
		tomb := func(ttl time.Duration, keys ...string) {
			t.Helper()
			if err := b.Tombstone(ctx, ttl, keys...); err != nil {
				t.Fatalf("Tombstone: %v", err)
			}
		}
		if err := b.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if st, _ := get("a"); st != Missing {
			t.Fatalf("fresh key is %v", st)
		}
		if !set("a", "1", time.Minute) {
			t.Fatal("fill of a missing key refused")
		}
		if set("a", "2", time.Minute) {
			t.Fatal("fill of a present key accepted")
		}
		if st, v := get("a"); st != Present || string(v) != "1" {
			t.Fatalf("Get = %v %q, want present 1", st, v)
		}
		// A fill whose deadline has passed is not stored.
		dctx, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Millisecond))
		if ok, err := b.SetIfAbsent(dctx, "late", []byte("1"), time.Minute); ok || err == nil {
			t.Errorf("SetIfAbsent past its deadline = %v, %v; want false and an error", ok, err)
		}
		cancel()
		if st, _ := get("late"); st != Missing {
			t.Errorf("fill past its deadline stored: key is %v", st)
		}
		// Values are bytes, whatever they hold (even a tag byte).
		if !set("bin", "t\x00v", time.Minute) {
			t.Fatal("fill refused")
		}
		if st, v := get("bin"); st != Present || string(v) != "t\x00v" {
			t.Fatalf("Get = %v %q", st, v)
		}

		tomb(200*time.Millisecond, "a", "b")
		st, tok1 := get("a")
		if st != Tombstoned || len(tok1) == 0 {
			t.Fatalf("after Tombstone a is %v %q", st, tok1)
		}
		tok1 = bytes.Clone(tok1)
		if st, _ := get("b"); st != Tombstoned {
			t.Fatalf("a missing key tombstoned is %v", st)
		}
		if set("a", "3", time.Minute) || set("b", "3", time.Minute) {
			t.Fatal("fill of a tombstoned key accepted")
		}
		tomb(200*time.Millisecond, "a")
		if _, tok2 := get("a"); bytes.Equal(tok1, tok2) {
			t.Fatal("two invalidations left the same token")
		}
		time.Sleep(250 * time.Millisecond)
		if st, _ := get("a"); st != Missing {
			t.Fatalf("after the tombstone expired a is %v", st)
		}
		if !set("a", "4", 150*time.Millisecond) {
			t.Fatal("fill after the tombstone expired refused")
		}
		time.Sleep(200 * time.Millisecond)
		if st, _ := get("a"); st != Missing {
			t.Fatalf("after its TTL a is %v", st)
		}

		// Flush tombstones values and leaves tombstones tombstoned.
		set("x", "1", time.Minute)
		set("y", "1", time.Minute)
		tomb(time.Minute, "z")
		if err := b.Flush(ctx, 200*time.Millisecond); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for _, k := range []string{"x", "y", "z"} {
			if st, _ := get(k); st != Tombstoned {
				t.Errorf("after Flush %s is %v", k, st)
			}
		}
		if set("x", "2", time.Minute) {
			t.Error("fill of a flushed key accepted")
		}
		time.Sleep(250 * time.Millisecond)
		if !set("x", "2", time.Minute) {
			t.Error("fill after the flush's tombstone expired refused")
		}
		if st, _ := get("z"); st != Tombstoned {
			t.Error("Flush shortened an existing tombstone")
		}
	})
}

func TestLocalBound(t *testing.T) {
	ctx := context.Background()
	b := NewLocal(2)
	for _, k := range []string{"a", "b"} {
		_, _ = b.SetIfAbsent(ctx, k, []byte(k), time.Minute)
	}
	_, _, _ = b.Get(ctx, "a") // a is now more recently used than b
	_, _ = b.SetIfAbsent(ctx, "c", []byte("c"), time.Minute)
	for k, want := range map[string]State{"a": Present, "b": Missing, "c": Present} {
		if st, _, _ := b.Get(ctx, k); st != want {
			t.Errorf("%s is %v, want %v", k, st, want)
		}
	}
	// Tombstones are never evicted to make room.
	_ = b.Tombstone(ctx, time.Minute, "t1", "t2", "t3")
	_, _ = b.SetIfAbsent(ctx, "d", []byte("d"), time.Minute)
	for _, k := range []string{"t1", "t2", "t3"} {
		if st, _, _ := b.Get(ctx, k); st != Tombstoned {
			t.Errorf("%s is %v, want tombstoned", k, st)
		}
	}
}

// Expired tombstones are swept, so their number follows the write rate.
func TestLocalSweepsTombstones(t *testing.T) {
	ctx := context.Background()
	b := NewLocal(0).(*localBackend)
	for i := range 3 * minSweep {
		_ = b.Tombstone(ctx, time.Nanosecond, string(rune('a'+i%26))+time.Now().String())
	}
	if n := len(b.tombs); n >= 2*minSweep {
		t.Errorf("%d expired tombstones kept", n)
	}
}
