package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/usersvc/usersvc/internal/user"
)

// Option defaults.
const (
	DefaultTTL           = 5 * time.Minute
	DefaultTombstoneTTL  = 10 * time.Second
	DefaultRetryInterval = time.Second
	DefaultOpTimeout     = time.Second
	DefaultMaxPending    = 10_000
)

// flushTimeout bounds a Flush, which walks the whole prefix.
const flushTimeout = time.Minute

// Options tune a Store; zero fields take the defaults.
type Options struct {
	// TTL is how long a filled entry lives: the bound on staleness when an
	// invalidation is lost. Default 5m.
	TTL time.Duration
	// TombstoneTTL is how long an invalidated key refuses leases, and how
	// long a lease lasts. Callers share a load only if its result comes
	// within half of it (see the package doc); a load slower than the whole
	// of it is not filled. Default 10s.
	TombstoneTTL time.Duration
	// RetryInterval is how long the backend is left alone after a failure
	// before it is probed again. Default 1s.
	RetryInterval time.Duration
	// OpTimeout bounds an invalidation and a repair step. Invalidations run
	// on a context detached from the request's cancellation, so a client
	// hanging up right after a write cannot drop its invalidation; this is
	// what bounds them instead. Default 1s.
	OpTimeout time.Duration
	// MaxPending is how many lost invalidations are remembered by ID; past
	// it, recovery flushes the whole prefix instead. Default 10000.
	MaxPending int
	// Logger gets the unavailable/available-again messages; nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.TombstoneTTL <= 0 {
		o.TombstoneTTL = DefaultTombstoneTTL
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = DefaultRetryInterval
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Singleflight key suffixes: what the caller saw in the cache before
// loading. Callers share a load only when they saw the same thing (see the
// package doc); a tombstone's suffix is followed by its token. A lease
// counts as a miss.
const (
	sawMiss = "\x00m"
	sawDown = "\x00d" // backend skipped or failing: nothing was seen
	sawTomb = "\x00t"
)

// Store is a user.Store that serves UserByID through a Backend and keeps it
// consistent with the writes made through it (see the package doc). Every
// other method goes straight to the inner store. Safe for concurrent use.
//
// Writes must all go through Stores sharing the backend: a write made to
// the database behind the Store's back is not invalidated and may be
// hidden by the cache for up to Options.TTL.
type Store struct {
	user.Store
	b   Backend
	o   Options
	sf  singleflight.Group
	hit atomic.Uint64
	mis atomic.Uint64

	// usable is the fast path: the backend answered last time and nothing
	// is waiting to be repaired. When false, the fields under mu decide.
	usable atomic.Bool
	// lostGen is bumped by every lost invalidation, so a read that raced
	// one can tell and distrust what it got.
	lostGen atomic.Uint64

	mu      sync.Mutex
	lastErr error     // why the backend is unusable; nil when usable
	retryAt time.Time // no probe before this
	probing bool      // a repair is running
	lost    map[string]struct{}
	lostAll bool // more than MaxPending lost: flush on recovery
}

var _ user.Store = (*Store)(nil)

// NewStore returns inner with UserByID cached in b.
func NewStore(inner user.Store, b Backend, opts Options) *Store {
	s := &Store{Store: inner, b: b, o: opts.withDefaults(), lost: map[string]struct{}{}}
	s.usable.Store(true)
	return s
}

// Stats returns how many UserByID calls were served from the cache (hits)
// and how many went to the inner store (misses, including every read made
// while the backend was unusable).
func (s *Store) Stats() (hits, misses uint64) { return s.hit.Load(), s.mis.Load() }

// Healthy returns nil when the backend is in use, otherwise why not (for a
// readiness probe's detail; the Store keeps serving from the database
// either way, so it should not fail readiness on its own).
func (s *Store) Healthy() error {
	if s.usable.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil {
		return nil // recovered between the two checks
	}
	return fmt.Errorf("cache unavailable: %w", s.lastErr)
}

func userKey(id string) string { return "user:" + id }

// UserByID returns the user from the cache, or from the inner store (then
// filling the cache when that is safe).
func (s *Store) UserByID(ctx context.Context, id string) (*user.User, error) {
	gen := s.lostGen.Load()
	seen := time.Now()
	if !s.acquire() {
		s.mis.Add(1)
		return s.load(ctx, id, sawDown, seen, false, gen)
	}
	st, val, err := s.b.Get(ctx, userKey(id))
	if err != nil {
		s.fail(ctx, err)
		s.mis.Add(1)
		return s.load(ctx, id, sawDown, seen, false, gen)
	}
	if s.lostGen.Load() != gen {
		// An invalidation failed while we read: what we got may be the
		// entry it could not remove.
		s.mis.Add(1)
		return s.load(ctx, id, sawDown, seen, false, gen)
	}
	switch st {
	case Present:
		if u, ok := decode(val, id); ok {
			s.hit.Add(1)
			return u, nil
		}
		// Written by an incompatible version, or corrupt: tombstone it so
		// a fill can replace it later, and read the database alone (the
		// new tombstone's token is unknown, so there is no key to share).
		s.invalidate(ctx, id)
		s.mis.Add(1)
		return s.Store.UserByID(ctx, id)
	case Tombstoned:
		s.mis.Add(1)
		return s.load(ctx, id, sawTomb+string(val), seen, false, gen)
	case Leased:
		// Another reader is loading it to fill it. Read without filling;
		// join a load in flight here as a miss would (the lease shows no
		// write has invalidated the key since it was taken).
		s.mis.Add(1)
		return s.load(ctx, id, sawMiss, seen, false, gen)
	default:
		s.mis.Add(1)
		return s.load(ctx, id, sawMiss, seen, true, gen)
	}
}

// loaded is a shared load's result.
type loaded struct {
	u    *user.User
	seen time.Time // when the leader looked in the cache, before loading
}

// load reads the user from the inner store once for all concurrent callers
// that saw the same cache state, and fills the cache if fill is set.
//
// A fill takes a lease on the key before the load and stores the user only
// if the key still holds that lease afterwards (Backend.Fill compares and
// sets). A write that committed after the load began tombstoned the key
// after the lease was taken, which replaced the lease, so the stale load is
// not stored — however long it took, and whether or not the tombstone has
// expired since. Nothing in the fill rests on timing.
//
// Sharing is bounded by time: a caller who arrived after a write saw its
// tombstone and is not sharing this load, but only while that tombstone
// exists, so a joiner that gets the result later than TombstoneTTL/2 after
// the load began reads the database itself.
func (s *Store) load(ctx context.Context, id, saw string, seen time.Time, fill bool, gen uint64) (*user.User, error) {
	leader := false // set only by our own fn, which runs in this goroutine
	v, err, shared := s.sf.Do(id+saw, func() (any, error) {
		leader = true
		var lease []byte
		if fill && s.lostGen.Load() == gen {
			lease = s.lease(ctx, id)
		}
		u, err := s.Store.UserByID(ctx, id)
		if err != nil {
			return nil, err
		}
		if lease != nil && s.lostGen.Load() == gen {
			s.fill(ctx, u, lease)
		}
		return loaded{u: u, seen: seen}, nil
	})
	if err != nil {
		if !leader && ctx.Err() == nil && isContextErr(err) {
			// The leader's caller gave up; we have not.
			return s.Store.UserByID(ctx, id)
		}
		return nil, err
	}
	l := v.(loaded)
	if !leader && time.Since(l.seen) >= s.o.TombstoneTTL/2 {
		// The load may predate a write whose tombstone has expired since,
		// so nothing tells us it is not stale for a caller that arrived
		// after that write.
		return s.Store.UserByID(ctx, id)
	}
	if shared {
		// Each caller gets its own copy: callers modify users (then pass
		// them to UpdateUser). User holds only values, so this is deep.
		c := *l.u
		return &c, nil
	}
	return l.u, nil
}

// lease claims the user's key for a fill, returning the lease's token, or
// nil when the key is not Missing any more or the backend failed.
func (s *Store) lease(ctx context.Context, id string) []byte {
	token, err := s.b.Lease(ctx, userKey(id), s.o.TombstoneTTL)
	if err != nil {
		s.fail(ctx, err)
		return nil
	}
	return token
}

// fill stores u if the key still holds the lease.
func (s *Store) fill(ctx context.Context, u *user.User, lease []byte) {
	b, err := encode(u)
	if err != nil {
		return
	}
	if _, err := s.b.Fill(ctx, userKey(u.ID), lease, b, s.o.TTL); err != nil {
		s.fail(ctx, err)
	}
}

// UpdateUser updates the user, then invalidates the cached copy.
func (s *Store) UpdateUser(ctx context.Context, u *user.User) error {
	id := u.ID
	err := s.Store.UpdateUser(ctx, u)
	s.invalidate(ctx, id)
	return err
}

// DeleteUser deletes the user, then invalidates the cached copy.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	err := s.Store.DeleteUser(ctx, id)
	s.invalidate(ctx, id)
	return err
}

// ReplacePasswordHash replaces the hash, then invalidates the cached copy.
func (s *Store) ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string) (bool, error) {
	ok, err := s.Store.ReplacePasswordHash(ctx, id, oldHash, newHash)
	s.invalidate(ctx, id)
	return ok, err
}

// Atomic runs fn in the inner store's transaction with a Repo that reads
// the database directly (never the cache: the transaction must see its own
// view) and records which users fn writes; those are invalidated after the
// transaction has ended.
//
// They are invalidated whatever Atomic returns, not only on success: a
// commit whose acknowledgement was lost returns an error although it
// happened, and an invalidation that was not needed costs only a few
// database reads.
func (s *Store) Atomic(ctx context.Context, fn func(user.Repo) error) error {
	w := &written{}
	err := s.Store.Atomic(ctx, func(r user.Repo) error {
		return fn(&txRepo{Repo: r, w: w})
	})
	if ids := w.list(); len(ids) > 0 {
		s.invalidate(ctx, ids...)
	}
	return err
}

// written collects the IDs a transaction wrote.
type written struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func (w *written) add(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ids == nil {
		w.ids = map[string]struct{}{}
	}
	w.ids[id] = struct{}{}
}

func (w *written) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Collect(maps.Keys(w.ids))
}

// txRepo is the transaction's Repo with the user writes recorded. IDs are
// recorded before the write, so a write that fails halfway (and whose error
// fn then ignores) is still invalidated.
type txRepo struct {
	user.Repo
	w *written
}

func (r *txRepo) UpdateUser(ctx context.Context, u *user.User) error {
	r.w.add(u.ID)
	return r.Repo.UpdateUser(ctx, u)
}

func (r *txRepo) DeleteUser(ctx context.Context, id string) error {
	r.w.add(id)
	return r.Repo.DeleteUser(ctx, id)
}

func (r *txRepo) ReplacePasswordHash(ctx context.Context, id, oldHash, newHash string) (bool, error) {
	r.w.add(id)
	return r.Repo.ReplacePasswordHash(ctx, id, oldHash, newHash)
}

// invalidate tombstones the users' keys, or records them as lost when the
// backend cannot take the tombstones. It returns only after either, and
// callers call it only after their write has committed.
func (s *Store) invalidate(ctx context.Context, ids ...string) {
	for _, id := range ids {
		// Loads in flight on this instance may have read the old row;
		// callers from now on must not join them.
		s.sf.Forget(id + sawMiss)
		s.sf.Forget(id + sawDown)
	}
	if !s.acquire() {
		s.lose(nil, ids...)
		return
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = userKey(id)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.OpTimeout)
	defer cancel()
	if err := s.b.Tombstone(ctx, s.o.TombstoneTTL, keys...); err != nil {
		s.lose(err, ids...)
	}
}

// acquire reports whether the backend may be used now. When it may not and
// a probe is due, it starts the repair in the background (the caller does
// not wait for it).
func (s *Store) acquire() bool {
	if s.usable.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastErr == nil && !s.lostAll && len(s.lost) == 0 {
		return true // recovered between the two checks
	}
	if s.probing || time.Now().Before(s.retryAt) {
		return false
	}
	s.probing = true
	go s.repair()
	return false
}

// fail records a backend error. An error once the caller's own context
// has ended, or its deadline has passed, says nothing about the backend and
// is ignored. The deadline is checked by the clock, not only by ctx.Err():
// a backend that refuses an operation at its deadline may answer before
// the context's timer has fired.
func (s *Store) fail(ctx context.Context, err error) {
	if callerDone(ctx) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLocked(err)
}

func (s *Store) failLocked(err error) {
	if s.lastErr == nil {
		s.o.Logger.Warn("cache unavailable", "err", err)
	}
	s.lastErr = err
	s.retryAt = time.Now().Add(s.o.RetryInterval)
	s.usable.Store(false)
}

// lose records that the users' invalidation may not have reached the
// backend (err is why, or nil when the backend was already unusable).
func (s *Store) lose(err error, ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lostGen.Add(1)
	s.addLostLocked(ids...)
	if err != nil || s.lastErr == nil {
		if err == nil {
			err = errors.New("invalidation lost")
		}
		s.failLocked(err)
	}
}

func (s *Store) addLostLocked(ids ...string) {
	if s.lostAll {
		return
	}
	for _, id := range ids {
		s.lost[id] = struct{}{}
	}
	if len(s.lost) > s.o.MaxPending {
		s.lostAll = true
		clear(s.lost)
	}
}

// repair replays the lost invalidations (or flushes) and, once none is
// left, makes the backend usable again. It runs in its own goroutine, one
// at a time (probing).
func (s *Store) repair() {
	repaired, flushed := 0, false
	for {
		s.mu.Lock()
		all, ids := s.lostAll, slices.Collect(maps.Keys(s.lost))
		s.lostAll = false
		clear(s.lost)
		s.mu.Unlock()

		var err error
		switch {
		case all:
			ctx, cancel := context.WithTimeout(context.Background(), max(flushTimeout, s.o.OpTimeout))
			err = s.b.Flush(ctx, s.o.TombstoneTTL)
			cancel()
		case len(ids) > 0:
			keys := make([]string, len(ids))
			for i, id := range ids {
				keys[i] = userKey(id)
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.o.OpTimeout)
			err = s.b.Tombstone(ctx, s.o.TombstoneTTL, keys...)
			cancel()
		default:
			ctx, cancel := context.WithTimeout(context.Background(), s.o.OpTimeout)
			err = s.b.Ping(ctx)
			cancel()
		}

		s.mu.Lock()
		if err != nil {
			if all {
				s.lostAll = true
				clear(s.lost)
			} else {
				s.addLostLocked(ids...)
			}
			s.failLocked(err)
			s.probing = false
			s.mu.Unlock()
			return
		}
		repaired += len(ids)
		flushed = flushed || all
		if s.lostAll || len(s.lost) > 0 {
			s.mu.Unlock()
			continue // more were lost while we repaired
		}
		s.lastErr = nil
		s.probing = false
		s.usable.Store(true)
		s.o.Logger.Info("cache available again", "reinvalidated", repaired, "flushed", flushed)
		s.mu.Unlock()
		return
	}
}

// callerDone reports whether ctx has ended or its deadline has passed.
func callerDone(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// entryVersion changes whenever entry's encoding does; an entry of another
// version is treated as undecodable (and replaced), so instances of two
// versions can share a Redis during a rolling deploy.
const entryVersion = 2

// entry is the cached form of a user: the user's snapshot, whose JSON
// names are a frozen format (see user.Snapshot), plus the private fields a
// cached read must return. The snapshot's fields are promoted into the same
// JSON object, so the encoding is the flat one of entryVersion 2.
type entry struct {
	V int `json:"v"`
	user.Snapshot
	PasswordHash   string `json:"password_hash"`
	EmailVerified  bool   `json:"email_verified"`
	PendingEmail   string `json:"pending_email"`
	SessionVersion int64  `json:"session_version"`
}

func encode(u *user.User) ([]byte, error) {
	return json.Marshal(entry{V: entryVersion, Snapshot: u.Snapshot(), PasswordHash: u.PasswordHash,
		EmailVerified: u.EmailVerified, PendingEmail: u.PendingEmail, SessionVersion: u.SessionVersion})
}

// decode returns the user in b if b is a current-version entry for id.
func decode(b []byte, id string) (*user.User, bool) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil || e.V != entryVersion || e.ID != id {
		return nil, false
	}
	u := &user.User{PasswordHash: e.PasswordHash, EmailVerified: e.EmailVerified, PendingEmail: e.PendingEmail,
		SessionVersion: e.SessionVersion}
	e.Snapshot.Apply(u)
	return u, true
}
