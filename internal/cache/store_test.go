package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/usersvc/usersvc/internal/store/storetest"
	"github.com/usersvc/usersvc/internal/user"
)

// The cached store is still a user.Store: the whole storage contract passes
// through it unchanged.
func TestContract(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		storetest.Run(t, func(t *testing.T) user.Store {
			return NewStore(openDB(t), kind.new(t), Options{})
		})
	})
}

func TestHitAfterFirstRead(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		p := newProbe(openDB(t))
		s := NewStore(p, kind.new(t), Options{})
		u := createUser(t, s, "Ada")
		first := mustGet(t, s, u.ID)
		second := mustGet(t, s, u.ID)
		if p.loads.Load() != 1 {
			t.Errorf("inner loads = %d, want 1", p.loads.Load())
		}
		if hits, misses := s.Stats(); hits != 1 || misses != 1 {
			t.Errorf("Stats = %d hits, %d misses; want 1, 1", hits, misses)
		}
		// Every field survives the cache, password hash and session
		// version included, with times in UTC.
		if *first != *second {
			t.Errorf("cached user differs:\n got %+v\nwant %+v", *second, *first)
		}
		if second.CreatedAt.Location() != time.UTC {
			t.Errorf("cached time in %v, want UTC", second.CreatedAt.Location())
		}
		// Callers own what they get: changing it changes nothing cached.
		second.Name = "Mutated"
		if got := mustGet(t, s, u.ID).Name; got != "Ada" {
			t.Errorf("name after caller mutation = %q", got)
		}
	})
}

// Each write path invalidates: after it returns, the next read sees it.
func TestWritesInvalidate(t *testing.T) {
	ctx := context.Background()
	writes := []struct {
		name    string
		deletes bool
		write   func(t *testing.T, s *Store, u *user.User)
	}{
		{"UpdateUser", false, func(t *testing.T, s *Store, u *user.User) { rename(t, s, u.ID, "changed") }},
		{"ReplacePasswordHash", false, func(t *testing.T, s *Store, u *user.User) {
			if ok, err := s.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, "changed"); !ok || err != nil {
				t.Fatalf("ReplacePasswordHash = %v, %v", ok, err)
			}
		}},
		{"DeleteUser", true, func(t *testing.T, s *Store, u *user.User) {
			if err := s.DeleteUser(ctx, u.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"AtomicUpdateUser", false, func(t *testing.T, s *Store, u *user.User) {
			err := s.Atomic(ctx, func(r user.Repo) error {
				cur, err := r.LockUser(ctx, u.ID)
				if err != nil {
					return err
				}
				cur.Name = "changed"
				return r.UpdateUser(ctx, cur)
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"AtomicReplacePasswordHash", false, func(t *testing.T, s *Store, u *user.User) {
			err := s.Atomic(ctx, func(r user.Repo) error {
				_, err := r.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, "changed")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}},
		{"AtomicDeleteUser", true, func(t *testing.T, s *Store, u *user.User) {
			if err := s.Atomic(ctx, func(r user.Repo) error { return r.DeleteUser(ctx, u.ID) }); err != nil {
				t.Fatal(err)
			}
		}},
	}
	eachBackend(t, func(t *testing.T, kind backendKind) {
		for _, w := range writes {
			t.Run(w.name, func(t *testing.T) {
				b := kind.new(t)
				s := NewStore(openDB(t), b, Options{})
				u := createUser(t, s, "original")
				mustGet(t, s, u.ID)
				if st := stateOf(t, b, u.ID); st != Present {
					t.Fatalf("after first read key is %v, want present", st)
				}
				w.write(t, s, u)
				if st := stateOf(t, b, u.ID); st != Tombstoned {
					t.Errorf("after write key is %v, want tombstoned", st)
				}
				got, err := s.UserByID(ctx, u.ID)
				switch {
				case w.deletes:
					if !errors.Is(err, user.ErrNotFound) {
						t.Errorf("after delete UserByID = %+v, %v; want ErrNotFound", got, err)
					}
				case err != nil:
					t.Fatal(err)
				case got.Name != "changed" && got.PasswordHash != "changed":
					t.Errorf("after write read %+v: the write is not visible", got)
				}
				// A tombstoned key is not refilled by that read.
				if st := stateOf(t, b, u.ID); st != Tombstoned {
					t.Errorf("after read of tombstoned key it is %v, want tombstoned", st)
				}
			})
		}
	})
}

// A transaction that rolls back leaves the data as it was (and whatever it
// invalidated is simply read again).
func TestAtomicRollback(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		s := NewStore(openDB(t), kind.new(t), Options{})
		u := createUser(t, s, "original")
		mustGet(t, s, u.ID)
		boom := errors.New("boom")
		err := s.Atomic(ctx, func(r user.Repo) error {
			cur, err := r.LockUser(ctx, u.ID)
			if err != nil {
				return err
			}
			cur.Name = "rolled back"
			if err := r.UpdateUser(ctx, cur); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Atomic = %v, want boom", err)
		}
		if got := mustGet(t, s, u.ID).Name; got != "original" {
			t.Errorf("after rollback name = %q", got)
		}
	})
}

// Reads inside Atomic, and LockUser, see the database, not the cache.
func TestAtomicReadsBypassCache(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		b := kind.new(t)
		s := NewStore(openDB(t), b, Options{})
		u := createUser(t, s, "in database")
		// Plant a different user in the cache under u's key.
		fake := *u
		fake.Name = "in cache"
		enc, _ := encode(&fake)
		if !put(t, b, userKey(u.ID), enc, time.Minute) {
			t.Fatal("plant refused")
		}
		if got := mustGet(t, s, u.ID).Name; got != "in cache" {
			t.Fatalf("plain read = %q: the cache is not in use", got)
		}
		err := s.Atomic(ctx, func(r user.Repo) error {
			got, err := r.UserByID(ctx, u.ID)
			if err != nil {
				return err
			}
			locked, err := r.LockUser(ctx, u.ID)
			if err != nil {
				return err
			}
			if got.Name != "in database" || locked.Name != "in database" {
				t.Errorf("inside Atomic: UserByID %q, LockUser %q; want the database's", got.Name, locked.Name)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.LockUser(ctx, u.ID); err != nil || got.Name != "in database" {
			t.Errorf("LockUser outside Atomic = %v, %v", got, err)
		}
	})
}

// Many readers, writers renaming users in a loop: once an update has
// returned, no read that starts afterwards may return an older name (the
// names carry a counter). Then the users are deleted: once a delete has
// returned, no read may find the user. Loads are slowed at random so that
// reads race the writes' commits and invalidations.
//
// With the default TombstoneTTL the continual writes keep the keys
// tombstoned most of the time; the short one (with pauses between writes
// of up to 1.5 TombstoneTTL) lets tombstones expire, leases, fills and hits
// happen between writes, and puts the sharing guard (a caller uses a shared
// load only within TombstoneTTL/2 of its start) under load. Fills need no
// margin any more (a lease replaced by a write cannot fill, whenever the
// fill comes), but the sharing guard leaves half the TTL for a cache read's
// round trip, so the short TTL is 100ms: a 20ms one left 10ms, which a
// loaded 2-core machine under the race detector sometimes exceeded.
func TestConsistencyUnderConcurrentWrites(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		for _, tombTTL := range []time.Duration{0, 100 * time.Millisecond} {
			name := "default tombstone TTL"
			if tombTTL > 0 {
				name = "tombstone TTL " + tombTTL.String()
			}
			t.Run(name, func(t *testing.T) { testConsistency(t, kind, tombTTL) })
		}
	})
}

func testConsistency(t *testing.T, kind backendKind, tombTTL time.Duration) {
	b := kind.new(t)
	p := newProbe(openDB(t))
	p.delay = func() {
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		}
	}
	// Two instances sharing the backend; readers and writers use both.
	opts := Options{TombstoneTTL: tombTTL}
	stores := []*Store{NewStore(p, b, opts), NewStore(p, b, opts)}
	const users, readers = 4, 8
	updates := int64(150)
	if tombTTL > 0 {
		updates = 30 // each followed by a pause of 0.75 TombstoneTTL on average
	}
	type tracked struct {
		id        string
		committed atomic.Int64 // highest counter whose update has returned
		deleted   atomic.Bool  // the delete has returned
	}
	us := make([]*tracked, users)
	for i := range us {
		us[i] = &tracked{id: createUser(t, stores[0], "n-0").ID}
	}

	ctx := context.Background()
	var stop atomic.Bool
	var violations atomic.Int64
	report := func(format string, args ...any) {
		if violations.Add(1) <= 10 {
			t.Errorf(format, args...)
		}
	}
	var rg sync.WaitGroup
	for r := range readers {
		rg.Go(func() {
			s := stores[r%2]
			for !stop.Load() {
				tu := us[rand.IntN(users)]
				wasDeleted := tu.deleted.Load()
				floor := tu.committed.Load()
				got, err := s.UserByID(ctx, tu.id)
				if errors.Is(err, user.ErrNotFound) {
					continue // deleted meanwhile (or already)
				}
				if err != nil {
					report("UserByID: %v", err)
					continue
				}
				if wasDeleted {
					report("read user %s after its delete returned: %+v", tu.id, got)
					continue
				}
				n, _ := strconv.ParseInt(strings.TrimPrefix(got.Name, "n-"), 10, 64)
				if n < floor {
					report("read name %q after update n-%d had returned", got.Name, floor)
				}
			}
		})
	}

	var wg sync.WaitGroup
	for i, tu := range us {
		wg.Go(func() {
			s := stores[i%2]
			for n := int64(1); n <= updates; n++ {
				name := fmt.Sprintf("n-%d", n)
				var err error
				if n%2 == 0 {
					u := mustGet(t, s, tu.id)
					u.Name = name
					err = s.UpdateUser(ctx, u)
				} else {
					err = s.Atomic(ctx, func(r user.Repo) error {
						u, err := r.LockUser(ctx, tu.id)
						if err != nil {
							return err
						}
						u.Name = name
						return r.UpdateUser(ctx, u)
					})
				}
				if err != nil {
					t.Errorf("update: %v", err)
					return
				}
				tu.committed.Store(n)
				if tombTTL > 0 {
					time.Sleep(time.Duration(rand.Int64N(int64(tombTTL) * 3 / 2)))
				}
			}
			var err error
			if i%2 == 0 {
				err = s.DeleteUser(ctx, tu.id)
			} else {
				err = s.Atomic(ctx, func(r user.Repo) error { return r.DeleteUser(ctx, tu.id) })
			}
			if err != nil {
				t.Errorf("delete: %v", err)
			}
			tu.deleted.Store(true)
		})
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond) // reads after every delete
	stop.Store(true)
	rg.Wait()

	// Deleted users never come back, from either instance.
	for _, tu := range us {
		for _, s := range stores {
			if got, err := s.UserByID(ctx, tu.id); !errors.Is(err, user.ErrNotFound) {
				t.Errorf("deleted user read back: %+v, %v", got, err)
			}
		}
	}
	// Nothing here is a backend failure (a fill refused at its deadline
	// must not count as one): a Store that thought so would have stopped
	// invalidating, leaving the other instance to serve stale entries.
	for i, s := range stores {
		if err := s.Healthy(); err != nil {
			t.Errorf("instance %d: Healthy() = %v", i, err)
		}
	}
	var hits, misses uint64
	for _, s := range stores {
		h, m := s.Stats()
		hits, misses = hits+h, misses+m
	}
	t.Logf("%d hits, %d misses, %d inner loads", hits, misses, p.loads.Load())
	if tombTTL > 0 && hits == 0 {
		t.Error("no read was served from the cache: the test did not exercise it")
	}
}

// The race tombstones exist for, forced: a reader misses and loads the old
// row; the write commits and invalidates; only then does the reader try to
// fill. The fill must fail, and later reads see the write. Both with the
// write on the reader's instance and on another one sharing the backend.
func TestFillAfterInvalidateRace(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		for _, where := range []string{"same instance", "other instance", "tombstone expired before the fill"} {
			for _, op := range []string{"update", "delete"} {
				t.Run(where+"/"+op, func(t *testing.T) {
					b := kind.new(t)
					p := newProbe(openDB(t))
					var opts Options
					if where == "tombstone expired before the fill" {
						opts.TombstoneTTL = 100 * time.Millisecond
					}
					reader := NewStore(p, b, opts)
					writer := reader
					if where != "same instance" {
						writer = NewStore(p, b, opts)
					}
					u := createUser(t, reader, "old")
					g := p.hold(u.ID)
					done := make(chan *user.User)
					go func() {
						got, err := reader.UserByID(ctx, u.ID)
						if err != nil {
							t.Errorf("held read: %v", err)
						}
						done <- got
					}()
					if row := <-g.loaded; row.Name != "old" {
						t.Fatalf("held load read %q", row.Name)
					}
					if op == "update" {
						renameFrom(t, writer, p.Store, u.ID, "new")
					} else if err := writer.DeleteUser(ctx, u.ID); err != nil {
						t.Fatal(err)
					}
					want := Tombstoned
					if opts.TombstoneTTL > 0 {
						// The fill comes after the tombstone is gone: only
						// the replaced lease stops it now.
						time.Sleep(2 * opts.TombstoneTTL)
						want = Missing
					}
					close(g.release)
					// The held read began before the write returned, so the
					// old row is a correct answer for it.
					if got := <-done; got == nil || got.Name != "old" {
						t.Errorf("held read returned %+v", got)
					}
					if st := stateOf(t, b, u.ID); st != want {
						t.Errorf("key after the late fill is %v, want %v", st, want)
					}
					for _, s := range []*Store{reader, writer} {
						got, err := s.UserByID(ctx, u.ID)
						if op == "delete" {
							if !errors.Is(err, user.ErrNotFound) {
								t.Errorf("after delete: %+v, %v", got, err)
							}
						} else if err != nil || got.Name != "new" {
							t.Errorf("after update: %+v, %v", got, err)
						}
					}
				})
			}
		}
	})
}

// A load slower than its lease (TombstoneTTL) is returned but not cached;
// one slower than half of it but within the lease is cached, since no write
// replaced the lease meanwhile (before leases, any load slower than
// TombstoneTTL/2 went uncached, for fear of an expired tombstone).
func TestSlowLoadIsNotFilled(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		b := kind.new(t)
		p := newProbe(openDB(t))
		s := NewStore(p, b, Options{TombstoneTTL: 400 * time.Millisecond})
		u := createUser(t, s, "slow")
		readHeld := func(d time.Duration) {
			t.Helper()
			g := p.hold(u.ID)
			go func() {
				<-g.loaded
				time.Sleep(d)
				close(g.release)
			}()
			if got, err := s.UserByID(ctx, u.ID); err != nil || got.Name != "slow" {
				t.Fatalf("slow read = %+v, %v", got, err)
			}
		}
		readHeld(500 * time.Millisecond)
		if st := stateOf(t, b, u.ID); st != Missing {
			t.Errorf("after a load that outlived its lease the key is %v, want missing", st)
		}
		if err := s.Healthy(); err != nil {
			t.Errorf("Healthy() = %v after a fill its lease had outlived", err)
		}
		readHeld(250 * time.Millisecond)
		if st := stateOf(t, b, u.ID); st != Present {
			t.Errorf("after a load within its lease the key is %v, want present", st)
		}
	})
}

// Concurrent misses for one user load it once, and each caller gets its
// own copy.
func TestConcurrentMissesLoadOnce(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		p := newProbe(openDB(t))
		s := NewStore(p, kind.new(t), Options{})
		u := createUser(t, s, "popular")
		g := p.hold(u.ID)
		const n = 32
		got := make([]*user.User, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				var err error
				if got[i], err = s.UserByID(ctx, u.ID); err != nil {
					t.Errorf("UserByID: %v", err)
				}
			})
		}
		<-g.loaded
		time.Sleep(200 * time.Millisecond) // let the others queue up behind it
		close(g.release)
		wg.Wait()
		if l := p.loads.Load(); l != 1 {
			t.Errorf("%d concurrent misses made %d inner loads, want 1", n, l)
		}
		seen := map[*user.User]bool{}
		for _, g := range got {
			if g == nil || g.Name != "popular" {
				t.Fatalf("got %+v", g)
			}
			if seen[g] {
				t.Fatal("two callers got the same *User")
			}
			seen[g] = true
		}
	})
}

// A read that starts after a write has returned must not join a load that
// began before the write: it would get the old row.
func TestNoJoiningALoadOlderThanAWrite(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, kind backendKind) {
		for _, where := range []string{"same instance", "other instance"} {
			t.Run(where, func(t *testing.T) {
				b := kind.new(t)
				p := newProbe(openDB(t))
				reader := NewStore(p, b, Options{})
				writer := reader
				if where == "other instance" {
					writer = NewStore(p, b, Options{})
				}
				u := createUser(t, reader, "old")
				g := p.hold(u.ID)
				go func() { _, _ = reader.UserByID(ctx, u.ID) }()
				<-g.loaded
				renameFrom(t, writer, p.Store, u.ID, "new")
				// The held load is still in flight with the old row.
				if got := readWhileHeld(t, reader, u.ID, g); got.Name != "new" {
					t.Errorf("read after the write returned %q; want the new name", got.Name)
				}
			})
		}
	})
}

// A value the Store cannot decode (another version's, or garbage) is read
// around and replaced.
func TestUndecodableEntry(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		b := kind.new(t)
		s := NewStore(openDB(t), b, Options{TombstoneTTL: 400 * time.Millisecond})
		u := createUser(t, s, "real")
		if !put(t, b, userKey(u.ID), []byte(`{"v":999}`), time.Minute) {
			t.Fatal("plant refused")
		}
		if got := mustGet(t, s, u.ID); got.Name != "real" {
			t.Errorf("got %q", got.Name)
		}
		if st := stateOf(t, b, u.ID); st != Tombstoned {
			t.Errorf("undecodable key is %v afterwards, want tombstoned", st)
		}
		time.Sleep(450 * time.Millisecond)
		mustGet(t, s, u.ID)
		if got := mustGet(t, s, u.ID); got.Name != "real" {
			t.Errorf("got %q", got.Name)
		}
		if hits, _ := s.Stats(); hits != 1 {
			t.Errorf("hits = %d, want 1 (refilled after the tombstone)", hits)
		}
	})
}

// A caller that gives up does not make the backend look broken, and does
// not fail the callers it shared a load with.
func TestCanceledCaller(t *testing.T) {
	eachBackend(t, func(t *testing.T, kind backendKind) {
		p := newProbe(openDB(t))
		s := NewStore(p, kind.new(t), Options{})
		u := createUser(t, s, "x")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.UserByID(ctx, u.ID); err == nil {
			t.Error("read with a canceled context succeeded")
		}
		if err := s.Healthy(); err != nil {
			t.Errorf("Healthy after a canceled read = %v", err)
		}

		// A leader whose caller cancels while joiners wait: its load fails
		// with the cancellation, and the joiners load for themselves.
		g := p.holdBefore(u.ID)
		lctx, lcancel := context.WithCancel(context.Background())
		leaderErr := make(chan error)
		go func() {
			_, err := s.UserByID(lctx, u.ID)
			leaderErr <- err
		}()
		<-g.loaded
		joined := make(chan error)
		go func() {
			got, err := s.UserByID(context.Background(), u.ID)
			if err == nil && got.Name != "x" {
				err = fmt.Errorf("got %+v", got)
			}
			joined <- err
		}()
		time.Sleep(50 * time.Millisecond)
		lcancel()
		close(g.release)
		if err := <-leaderErr; !errors.Is(err, context.Canceled) {
			t.Errorf("canceled leader: %v", err)
		}
		if err := <-joined; err != nil {
			t.Errorf("joiner of a canceled leader: %v", err)
		}
		if err := s.Healthy(); err != nil {
			t.Errorf("Healthy = %v", err)
		}
	})
}
