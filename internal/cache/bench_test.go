package cache

import (
	"context"
	"testing"

	"github.com/usersvc/usersvc/internal/testenv"
	"github.com/usersvc/usersvc/internal/user"
)

// benchRead measures UserByID of one user through s, after one read to warm
// the cache.
func benchRead(b *testing.B, s user.Repo, id string) {
	ctx := context.Background()
	if _, err := s.UserByID(ctx, id); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UserByID(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUserByIDHitRedis(b *testing.B) {
	c, prefix := testenv.RedisClient(b)
	s := NewStore(openDB(b), NewRedis(c, prefix), Options{})
	benchRead(b, s, createUser(b, s, "bench").ID)
	if hits, misses := s.Stats(); misses != 1 || hits == 0 {
		b.Fatalf("%d hits, %d misses: not measuring hits", hits, misses)
	}
}

func BenchmarkUserByIDHitLocal(b *testing.B) {
	s := NewStore(openDB(b), NewLocal(0), Options{})
	benchRead(b, s, createUser(b, s, "bench").ID)
	if hits, misses := s.Stats(); misses != 1 || hits == 0 {
		b.Fatalf("%d hits, %d misses: not measuring hits", hits, misses)
	}
}

// BenchmarkUserByIDMissSQLite is the store without a cache: what every
// miss costs (plus the cache's round trips).
func BenchmarkUserByIDMissSQLite(b *testing.B) {
	db := openDB(b)
	benchRead(b, db, createUser(b, db, "bench").ID)
}

// BenchmarkUserByIDMissFillRedis is a miss that fills: the database read,
// the cache read, the lease and the fill. The key is deleted between reads
// with the timer stopped, so every read misses.
func BenchmarkUserByIDMissFillRedis(b *testing.B) {
	c, prefix := testenv.RedisClient(b)
	s := NewStore(openDB(b), NewRedis(c, prefix), Options{})
	id := createUser(b, s, "bench").ID
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.UserByID(ctx, id); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := c.Del(ctx, prefix+userKey(id)).Err(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	if hits, _ := s.Stats(); hits != 0 {
		b.Fatalf("%d hits: not measuring misses", hits)
	}
}
