package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/testenv"
)

// outage is one backend seen by two instances: A's connection to it can
// be cut (down/up), B's cannot — a partition between A and the cache.
type outage struct {
	a, b     Backend
	down, up func()
}

var outageKinds = []struct {
	name string
	new  func(t *testing.T) outage
}{
	{"redis", func(t *testing.T) outage {
		sw := testenv.NewRedisProxy(t)
		direct, prefix := testenv.RedisClient(t)
		return outage{a: NewRedis(sw.Client(t), prefix), b: NewRedis(direct, prefix), down: sw.Down, up: sw.Up}
	}},
	{"local", func(*testing.T) outage {
		l := NewLocal(0)
		f := &flaky{Backend: l}
		return outage{a: f, b: l, down: func() { f.down.Store(true) }, up: func() { f.down.Store(false) }}
	}},
}

// While the backend is unreachable reads come from the database, Healthy
// says why, and the outage and the recovery are logged once each. A write
// made meanwhile loses its invalidation; it is replayed on recovery, before
// the instance uses the cache again, so no instance reads the old entry
// afterwards.
func TestBackendDown(t *testing.T) {
	for _, kind := range outageKinds {
		t.Run(kind.name, func(t *testing.T) {
			o := kind.new(t)
			db := openDB(t)
			log, logs := newLog()
			a := NewStore(db, o.a, Options{RetryInterval: 50 * time.Millisecond, TombstoneTTL: 600 * time.Millisecond, Logger: log})
			b := NewStore(db, o.b, Options{TombstoneTTL: 600 * time.Millisecond})
			u := createUser(t, a, "v1")
			mustGet(t, a, u.ID)
			mustGet(t, a, u.ID)
			if hits, _ := a.Stats(); hits != 1 {
				t.Fatalf("hits before the outage = %d, want 1", hits)
			}

			o.down()
			for range 3 {
				if got := mustGet(t, a, u.ID); got.Name != "v1" {
					t.Fatalf("read during outage = %q", got.Name)
				}
			}
			if err := a.Healthy(); err == nil {
				t.Error("Healthy() = nil during the outage")
			} else {
				t.Logf("Healthy() during the outage: %v", err)
			}
			if hits, _ := a.Stats(); hits != 1 {
				t.Errorf("hits during the outage = %d, want still 1", hits)
			}

			renameFrom(t, a, db, u.ID, "v2") // its invalidation is lost
			// B can still reach the cache and still has the old entry:
			// the documented window, which the repair closes.
			if got := mustGet(t, b, u.ID); got.Name != "v1" {
				t.Errorf("B read %q during the outage; the test's premise is that it still sees the stale v1", got.Name)
			}
			if got := mustGet(t, a, u.ID); got.Name != "v2" {
				t.Errorf("A read %q after its own write, want v2", got.Name)
			}
			if n := logs.Count("cache unavailable"); n != 1 {
				t.Errorf("%d \"cache unavailable\" log lines, want 1", n)
			}

			o.up()
			testenv.Eventually(t, 5*time.Second, "recovery", func() bool {
				mustGet(t, a, u.ID)
				return a.Healthy() == nil
			})
			for name, s := range map[string]*Store{"A": a, "B": b} {
				if got := mustGet(t, s, u.ID); got.Name != "v2" {
					t.Errorf("%s read %q after recovery, want v2 (lost invalidation not replayed)", name, got.Name)
				}
			}
			if n := logs.Count("cache available again"); n != 1 {
				t.Errorf("%d \"cache available again\" log lines, want 1", n)
			}
			if n := logs.Count("cache unavailable"); n != 1 {
				t.Errorf("%d \"cache unavailable\" log lines, want 1", n)
			}

			// The cache is in use again once the replayed tombstone expires.
			time.Sleep(650 * time.Millisecond)
			h0, _ := a.Stats()
			mustGet(t, a, u.ID)
			mustGet(t, a, u.ID)
			if h1, _ := a.Stats(); h1 <= h0 {
				t.Error("no hit after recovery")
			}
		})
	}
}

// More lost invalidations than MaxPending: recovery tombstones every
// cached value and lease (a flush), and only then uses the cache again. A
// load from before the lost writes still in flight cannot fill afterwards.
func TestLostInvalidationsOverflowFlush(t *testing.T) {
	const tombTTL = time.Second
	for _, kind := range outageKinds {
		t.Run(kind.name, func(t *testing.T) {
			o := kind.new(t)
			db := openDB(t)
			a := NewStore(db, o.a, Options{RetryInterval: 20 * time.Millisecond, TombstoneTTL: tombTTL, MaxPending: 1})
			pb := newProbe(db)
			b := NewStore(pb, o.b, Options{TombstoneTTL: tombTTL})
			u1, u2, u3 := createUser(t, a, "old"), createUser(t, a, "old"), createUser(t, a, "untouched")
			for _, u := range []string{u1.ID, u2.ID, u3.ID} {
				mustGet(t, a, u)
			}
			// A load on B begun before the lost writes, held until after
			// the flush: it read the old row under its lease.
			u4 := createUser(t, a, "old")
			g := pb.hold(u4.ID)
			held := make(chan string, 1)
			go func() {
				u, err := b.UserByID(context.Background(), u4.ID)
				if err != nil {
					held <- err.Error()
					return
				}
				held <- u.Name
			}()
			<-g.loaded

			o.down()
			renameFrom(t, a, db, u1.ID, "new")
			renameFrom(t, a, db, u2.ID, "new")
			renameFrom(t, a, db, u4.ID, "new")
			o.up()
			testenv.Eventually(t, 5*time.Second, "recovery", func() bool {
				mustGet(t, a, u3.ID)
				return a.Healthy() == nil
			})
			// The flush replaced the held load's lease: its fill fails
			// (no wait for loads in flight is needed, however slow).
			close(g.release)
			if got := <-held; got != "old" {
				t.Fatalf("the held load read %q, want the old row", got)
			}
			for _, id := range []string{u1.ID, u2.ID, u4.ID} {
				if got := mustGet(t, b, id); got.Name != "new" {
					t.Errorf("B read %q after the flush, want new", got.Name)
				}
			}
			if st := stateOf(t, o.b, u3.ID); st != Tombstoned {
				t.Errorf("untouched key is %v after the flush, want tombstoned", st)
			}
		})
	}
}

// An outage that outlasts several probes keeps the instance off the cache
// and keeps the lost invalidations until one succeeds.
func TestRepairRetriesUntilBackendReturns(t *testing.T) {
	l := NewLocal(0)
	f := &flaky{Backend: l}
	db := openDB(t)
	a := NewStore(db, f, Options{RetryInterval: 10 * time.Millisecond})
	u := createUser(t, a, "old")
	mustGet(t, a, u.ID)
	f.down.Store(true)
	renameFrom(t, a, db, u.ID, "new")
	for range 10 { // several failed probes
		mustGet(t, a, u.ID)
		time.Sleep(15 * time.Millisecond)
	}
	if err := a.Healthy(); !errors.Is(err, errFlaky) {
		t.Fatalf("Healthy() = %v, want the backend's error", err)
	}
	if st := stateOf(t, l, u.ID); st != Present {
		t.Fatalf("key is %v during the outage, want the stale entry still present", st)
	}
	f.down.Store(false)
	testenv.Eventually(t, 5*time.Second, "recovery", func() bool {
		mustGet(t, a, u.ID)
		return a.Healthy() == nil
	})
	if st := stateOf(t, l, u.ID); st != Tombstoned {
		t.Errorf("key is %v after recovery, want tombstoned", st)
	}
}

// A Store whose Redis is unreachable from the start serves from the
// database, and starts using the cache once Redis appears.
func TestRedisUnreachableFromStart(t *testing.T) {
	sw := testenv.NewRedisProxy(t)
	_, prefix := testenv.RedisClient(t)
	sw.Down()
	s := NewStore(openDB(t), NewRedis(sw.Client(t), prefix), Options{RetryInterval: 20 * time.Millisecond})
	u := createUser(t, s, "x")
	for range 3 {
		if got := mustGet(t, s, u.ID); got.Name != "x" {
			t.Fatalf("got %q", got.Name)
		}
	}
	if s.Healthy() == nil {
		t.Error("Healthy() = nil with Redis unreachable")
	}
	sw.Up()
	testenv.Eventually(t, 5*time.Second, "recovery", func() bool {
		mustGet(t, s, u.ID)
		return s.Healthy() == nil
	})
	mustGet(t, s, u.ID)
	mustGet(t, s, u.ID)
	if hits, _ := s.Stats(); hits == 0 {
		t.Error("no hit once Redis appeared")
	}
}

// While the backend is down, reads still share loads; a write on this
// instance must keep later reads out of a load that began before it (there
// is no tombstone to tell them apart, so the write Forgets the load).
func TestNoJoiningAnOlderLoadWhileDown(t *testing.T) {
	f := &flaky{Backend: NewLocal(0)}
	p := newProbe(openDB(t))
	s := NewStore(p, f, Options{RetryInterval: time.Hour})
	u := createUser(t, s, "old")
	f.down.Store(true)
	mustGet(t, s, u.ID) // notices the outage
	g := p.hold(u.ID)
	go func() { _, _ = s.UserByID(context.Background(), u.ID) }()
	<-g.loaded
	renameFrom(t, s, p.Store, u.ID, "new")
	if got := readWhileHeld(t, s, u.ID, g); got.Name != "new" {
		t.Errorf("read after the write returned %q, want new", got.Name)
	}
}
