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
		lease := func(key string, ttl time.Duration) []byte {
			t.Helper()
			tok, err := b.Lease(ctx, key, ttl)
			if err != nil {
				t.Fatalf("Lease(%s): %v", key, err)
			}
			return tok
		}
		fill := func(key string, tok []byte, val string, ttl time.Duration) bool {
			t.Helper()
			ok, err := b.Fill(ctx, key, tok, []byte(val), ttl)
			if err != nil {
				t.Fatalf("Fill(%s): %v", key, err)
			}
			return ok
		}
		set := func(key, val string, ttl time.Duration) bool { t.Helper(); return put(t, b, key, []byte(val), ttl) }
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

		// A lease is granted on a Missing key only, once; Get shows it with
		// its token; its own Fill stores the value, another token's does
		// not, and a used lease fills nothing more.
		tok := lease("a", time.Minute)
		if len(tok) == 0 {
			t.Fatal("lease of a missing key refused")
		}
		if again := lease("a", time.Minute); again != nil {
			t.Fatal("second lease of a leased key granted")
		}
		if st, v := get("a"); st != Leased || !bytes.Equal(v, tok) {
			t.Fatalf("leased key is %v %q, want leased %q", st, v, tok)
		}
		if fill("a", []byte("not-the-token"), "0", time.Minute) {
			t.Fatal("fill with another token accepted")
		}
		if !fill("a", tok, "1", time.Minute) {
			t.Fatal("fill with the lease's token refused")
		}
		if fill("a", tok, "2", time.Minute) || lease("a", time.Minute) != nil {
			t.Fatal("a present key took a second fill or a lease")
		}
		if st, v := get("a"); st != Present || string(v) != "1" {
			t.Fatalf("Get = %v %q, want present 1", st, v)
		}
		// Values are bytes, whatever they hold (even a tag byte).
		if !set("bin", "t\x00v", time.Minute) {
			t.Fatal("fill refused")
		}
		if st, v := get("bin"); st != Present || string(v) != "t\x00v" {
			t.Fatalf("Get = %v %q", st, v)
		}

		// The race leases exist for: a lease, then an invalidation, then
		// the fill. The fill fails — also once the tombstone has expired
		// and the key is Missing again, or leased by someone else.
		stale := lease("r", time.Minute)
		tomb(100*time.Millisecond, "r")
		if fill("r", stale, "old", time.Minute) {
			t.Fatal("fill after a tombstone accepted")
		}
		time.Sleep(150 * time.Millisecond)
		if st, _ := get("r"); st != Missing {
			t.Fatalf("after the tombstone expired r is %v", st)
		}
		if fill("r", stale, "old", time.Minute) {
			t.Fatal("fill of a lease a tombstone replaced accepted after the tombstone expired")
		}
		fresh := lease("r", time.Minute)
		if fill("r", stale, "old", time.Minute) || !fill("r", fresh, "new", time.Minute) {
			t.Fatal("the old lease filled, or the new one could not")
		}
		// An expired lease fills nothing, and frees the key.
		short := lease("e", 100*time.Millisecond)
		time.Sleep(150 * time.Millisecond)
		if st, _ := get("e"); st != Missing {
			t.Fatalf("after the lease expired e is %v", st)
		}
		if fill("e", short, "late", time.Minute) {
			t.Fatal("fill of an expired lease accepted")
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
		if lease("a", time.Minute) != nil || lease("b", time.Minute) != nil {
			t.Fatal("lease of a tombstoned key granted")
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

		// Flush tombstones values and leases, and leaves tombstones
		// tombstoned.
		set("x", "1", time.Minute)
		set("y", "1", time.Minute)
		inFlight := lease("w", time.Minute)
		tomb(time.Minute, "z")
		if err := b.Flush(ctx, 200*time.Millisecond); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		for _, k := range []string{"x", "y", "w", "z"} {
			if st, _ := get(k); st != Tombstoned {
				t.Errorf("after Flush %s is %v", k, st)
			}
		}
		if set("x", "2", time.Minute) || fill("w", inFlight, "2", time.Minute) {
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
		put(t, b, k, []byte(k), time.Minute)
	}
	_, _, _ = b.Get(ctx, "a") // a is now more recently used than b
	put(t, b, "c", []byte("c"), time.Minute)
	for k, want := range map[string]State{"a": Present, "b": Missing, "c": Present} {
		if st, _, _ := b.Get(ctx, k); st != want {
			t.Errorf("%s is %v, want %v", k, st, want)
		}
	}
	// Tombstones are never evicted to make room.
	_ = b.Tombstone(ctx, time.Minute, "t1", "t2", "t3")
	put(t, b, "d", []byte("d"), time.Minute)
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
	if n := len(b.marks); n >= 2*minSweep {
		t.Errorf("%d expired tombstones kept", n)
	}
}
