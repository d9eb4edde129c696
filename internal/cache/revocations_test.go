package cache

import (
	"context"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

func TestRevocations(t *testing.T) {
	ctx := context.Background()
	kinds := map[string]func(t *testing.T) (Revocations, Revocations){
		// Two handles on one list: two instances of the service.
		"redis": func(t *testing.T) (Revocations, Revocations) {
			c1, prefix := testenv.RedisClient(t)
			c2, _ := testenv.RedisClient(t)
			return NewRedisRevocations(c1, prefix), NewRedisRevocations(c2, prefix)
		},
		"local": func(*testing.T) (Revocations, Revocations) {
			r := NewLocalRevocations()
			return r, r
		},
	}
	for name, open := range kinds {
		t.Run(name, func(t *testing.T) {
			r1, r2 := open(t)
			revoked := func(r Revocations, jti string) bool {
				t.Helper()
				ok, err := r.Revoked(ctx, jti)
				if err != nil {
					t.Fatalf("Revoked: %v", err)
				}
				return ok
			}
			if err := r1.Revoke(ctx, "jti-1", time.Now().Add(300*time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if err := r1.Revoke(ctx, "jti-past", time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if !revoked(r1, "jti-1") || !revoked(r2, "jti-1") {
				t.Error("revoked token not revoked on every instance")
			}
			if revoked(r2, "jti-2") || revoked(r2, "jti-past") {
				t.Error("unrevoked (or already expired) token reported revoked")
			}
			time.Sleep(350 * time.Millisecond)
			if revoked(r1, "jti-1") || revoked(r2, "jti-1") {
				t.Error("revocation outlived its expiry")
			}
		})
	}
}

func TestLocalRevocationsSweep(t *testing.T) {
	ctx := context.Background()
	r := NewLocalRevocations().(*localRevocations)
	soon := time.Now().Add(5 * time.Millisecond)
	for i := range minSweep {
		_ = r.Revoke(ctx, "a"+string(rune(i)), soon)
	}
	time.Sleep(10 * time.Millisecond)
	for i := range 2 * minSweep {
		_ = r.Revoke(ctx, "b"+string(rune(i)), time.Now().Add(time.Minute))
	}
	r.mu.Lock()
	n := len(r.until)
	r.mu.Unlock()
	if n > 2*minSweep {
		t.Errorf("%d entries kept, want the %d live ones", n, 2*minSweep)
	}
}

// With Redis unreachable, Revoke fails, the raw list reports the error,
// and FailOpen accepts the token, logging the outage and the recovery once.
func TestRevocationsRedisDown(t *testing.T) {
	ctx := context.Background()
	sw := testenv.NewRedisProxy(t)
	_, prefix := testenv.RedisClient(t)
	raw := NewRedisRevocations(sw.Client(t), prefix)
	log, logs := newLog()
	open := FailOpen(raw, log)
	if err := open.Revoke(ctx, "jti", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	sw.Down()
	if err := open.Revoke(ctx, "other", time.Now().Add(time.Minute)); err == nil {
		t.Error("Revoke succeeded with Redis down")
	}
	if _, err := raw.Revoked(ctx, "jti"); err == nil {
		t.Error("Revoked reported no error with Redis down")
	}
	for range 3 {
		if ok, err := open.Revoked(ctx, "jti"); ok || err != nil {
			t.Errorf("FailOpen Revoked = %v, %v; want false, nil", ok, err)
		}
	}
	sw.Up()
	// An unreachable list is left alone for failOpenRetry, then asked again.
	deadline := time.Now().Add(failOpenRetry + time.Second)
	for {
		ok, err := open.Revoked(ctx, "jti")
		if ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after recovery Revoked = %v, %v; want true", ok, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if w, i := logs.count("token revocation list unavailable"), logs.count("token revocation list available again"); w != 1 || i != 1 {
		t.Errorf("logged %d outage and %d recovery lines, want 1 and 1", w, i)
	}
}
