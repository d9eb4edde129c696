// Package revocation is the access-token denylist. Access tokens are
// verified without asking anyone, so ending one early needs a list of what
// was ended: a logged-out token by its jti, an ended session (a refresh
// family revoked by logout or for reuse) by its sid. Each entry is kept
// until every token it covers has expired, then swept.
//
// # Where the list lives
//
// The database is the list (Store): a logout holds across restarts and on
// every instance, with or without Redis. In front of it:
//
//   - Redis, when configured, is a shared cache of the whole list: every
//     revocation is written to the database and then to Redis, and a check
//     is one MGET. Redis is trusted to hold the whole list only after this
//     instance has copied the database's entries into it (a sync) and while
//     a marker key written by that sync exists, so a Redis that restarted
//     empty, or missed writes during an outage, is filled again from the
//     database before its misses count.
//   - Each instance remembers the revocations it has written or been told
//     of (until they expire) and refuses those without asking anyone.
//   - Without Redis, a check that the local memory cannot answer is a
//     query; in a single-process deployment (Exclusive) the list is loaded
//     once at start and then answered from memory.
//
// # When Redis is down
//
// Revocations still go to the database (a logout succeeds if the database
// does), and checks fail closed: the revocations this instance has seen
// are refused from memory, and everything else is checked in the
// database, one query per check, until Redis answers again (probed after
// Options.RetryInterval) and has been synced. Healthy reports the outage
// for /readyz. If the database fails too, the check fails (the token is
// not accepted).
package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxKeyLength bounds a key (a jti or "sid:" and a family ID).
const MaxKeyLength = 64

// Entry is one revocation: Key is denied until Until.
type Entry struct {
	Key   string
	Until time.Time
}

// Store is the durable list, shared by every instance (the database).
type Store interface {
	// PutRevocation denies key until until; of two entries for one key the
	// later until wins.
	PutRevocation(ctx context.Context, key string, until time.Time) error
	// HasRevocation reports whether any of keys is denied at now.
	HasRevocation(ctx context.Context, now time.Time, keys ...string) (bool, error)
	// Revocations returns every entry still in force at now.
	Revocations(ctx context.Context, now time.Time) ([]Entry, error)
	// DeleteExpiredRevocations removes the entries no longer in force at
	// now and reports how many.
	DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error)
}

// Options configure a List.
type Options struct {
	// Redis is the shared cache in front of the store; nil = none.
	Redis *redis.Client
	// Prefix of every Redis key; it must belong to this list alone.
	Prefix string
	// Exclusive says this process is the only one that revokes (dev mode
	// without Redis): the list is loaded once and answered from memory.
	Exclusive bool
	// RetryInterval is how long an unreachable Redis is left alone before
	// it is asked again; default 1s.
	RetryInterval time.Duration
	// SweepInterval is how often, at most, expired entries are deleted
	// from the store (on a revocation); default 1m.
	SweepInterval time.Duration
	Logger        *slog.Logger     // nil = discard
	Now           func() time.Time // nil = time.Now
}

// List is the denylist. It is safe for concurrent use.
type List struct {
	store Store
	o     Options
	seen  *memory
	// redisDown and retryAt (unix nanos): after a Redis failure it is left
	// alone until retryAt, so an outage does not cost a timeout per check.
	redisDown atomic.Bool
	retryAt   atomic.Int64
	// synced: Redis holds every entry of the store (see the package doc).
	synced    atomic.Bool
	nextSweep atomic.Int64
}

// markerKey is written by a sync; its absence means Redis lost what the
// sync put there. Keys are jtis (UUIDs) and "sid:…", never this.
const markerKey = "!synced"

// New builds the list. With Exclusive and no Redis it loads the store's
// entries into memory.
func New(ctx context.Context, store Store, o Options) (*List, error) {
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &List{store: store, o: o, seen: newMemory()}
	if o.Exclusive && o.Redis == nil {
		entries, err := store.Revocations(ctx, o.Now())
		if err != nil {
			return nil, fmt.Errorf("revocation: load: %w", err)
		}
		for _, e := range entries {
			l.seen.add(e.Key, e.Until, o.Now())
		}
	}
	return l, nil
}

// Revoke denies key until until (pass the expiry of the newest token it
// covers plus the verifiers' clock leeway). A time already past is a
// no-op. It fails only if the store does: Redis is a cache.
func (l *List) Revoke(ctx context.Context, key string, until time.Time) error {
	if key == "" || len(key) > MaxKeyLength {
		return fmt.Errorf("revocation: key must be 1 to %d bytes", MaxKeyLength)
	}
	now := l.o.Now()
	if !until.After(now) {
		return nil
	}
	if err := l.store.PutRevocation(ctx, key, until); err != nil {
		return fmt.Errorf("revocation: store: %w", err)
	}
	l.seen.add(key, until, now)
	if l.o.Redis != nil && l.redisUsable(now) {
		if err := l.o.Redis.Set(ctx, l.o.Prefix+key, "1", ttl(until, now)).Err(); err != nil && !callerDone(ctx) {
			l.redisFailed(err)
		}
	}
	l.maybeSweep(ctx, now)
	return nil
}

// AnyRevoked reports whether any of keys is denied. An error means no
// source could answer; the caller must then refuse the token.
func (l *List) AnyRevoked(ctx context.Context, keys ...string) (bool, error) {
	now := l.o.Now()
	if l.seen.any(keys, now) {
		return true, nil
	}
	if l.o.Redis == nil && l.o.Exclusive {
		return false, nil
	}
	if l.o.Redis != nil && l.redisUsable(now) {
		revoked, err := l.redisCheck(ctx, now, keys)
		if err == nil {
			l.redisUp()
			return revoked, nil
		}
		if callerDone(ctx) {
			return false, err
		}
		if errors.As(err, new(dbFailure)) {
			// The database failed, not Redis: asking it again answers
			// nothing, and blaming Redis would send the operator to the
			// wrong server.
			return false, fmt.Errorf("revocation: check: database unavailable: %w", err)
		}
		l.redisFailed(err)
	}
	revoked, err := l.store.HasRevocation(ctx, now, keys...)
	if err != nil {
		return false, fmt.Errorf("revocation: check: %w", err)
	}
	return revoked, nil
}

// Healthy reports what the list cannot do right now, for /readyz.
func (l *List) Healthy() error {
	if l.o.Redis != nil && l.redisDown.Load() {
		return errors.New("redis unreachable: revocations are checked in the database, one query per token; " +
			"the ones this instance has seen are refused from memory")
	}
	return nil
}

// redisCheck answers from Redis once it holds the whole list.
func (l *List) redisCheck(ctx context.Context, now time.Time, keys []string) (bool, error) {
	for attempt := 0; ; attempt++ {
		if !l.synced.Load() {
			if err := l.sync(ctx, now); err != nil {
				return false, err
			}
		}
		ks := make([]string, 0, len(keys)+1)
		ks = append(ks, l.o.Prefix+markerKey)
		for _, k := range keys {
			ks = append(ks, l.o.Prefix+k)
		}
		vals, err := l.o.Redis.MGet(ctx, ks...).Result()
		if err != nil {
			return false, fmt.Errorf("revocation: redis: %w", err)
		}
		if vals[0] == nil {
			// Redis lost the synced list (a restart, a flush): fill it
			// again from the store before a miss means anything.
			l.synced.Store(false)
			if attempt > 0 {
				return false, errors.New("revocation: redis loses the synced list")
			}
			continue
		}
		for _, v := range vals[1:] {
			if v != nil {
				return true, nil
			}
		}
		return false, nil
	}
}

// sync copies every entry in force from the store into Redis, then writes
// the marker.
func (l *List) sync(ctx context.Context, now time.Time) error {
	entries, err := l.store.Revocations(ctx, now)
	if err != nil {
		return fmt.Errorf("revocation: load for redis: %w", dbFailure{err})
	}
	pipe := l.o.Redis.Pipeline()
	for _, e := range entries {
		pipe.Set(ctx, l.o.Prefix+e.Key, "1", ttl(e.Until, now))
	}
	pipe.Set(ctx, l.o.Prefix+markerKey, "1", 0)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("revocation: sync redis: %w", err)
	}
	l.synced.Store(true)
	return nil
}

// dbFailure marks an error of the database met on the way to Redis (the
// store read that fills it), so it is not taken for Redis failing.
type dbFailure struct{ err error }

func (d dbFailure) Error() string { return "database: " + d.err.Error() }
func (d dbFailure) Unwrap() error { return d.err }

func (l *List) redisUsable(now time.Time) bool {
	return !l.redisDown.Load() || now.UnixNano() >= l.retryAt.Load()
}

func (l *List) redisFailed(err error) {
	l.synced.Store(false)
	l.retryAt.Store(l.o.Now().Add(l.o.RetryInterval).UnixNano())
	if l.redisDown.CompareAndSwap(false, true) {
		l.o.Logger.Warn("revocation list: redis unavailable, checking the database", "error", err)
	}
}

func (l *List) redisUp() {
	if l.redisDown.Load() && l.redisDown.CompareAndSwap(true, false) {
		l.o.Logger.Info("revocation list: redis available again")
	}
}

// maybeSweep deletes expired entries from the store at most once per
// SweepInterval. A failure only leaves rows for the next sweep.
func (l *List) maybeSweep(ctx context.Context, now time.Time) {
	next := l.nextSweep.Load()
	if now.UnixNano() < next || !l.nextSweep.CompareAndSwap(next, now.Add(l.o.SweepInterval).UnixNano()) {
		return
	}
	if _, err := l.store.DeleteExpiredRevocations(ctx, now); err != nil {
		l.o.Logger.Warn("revocation list: sweep failed", "error", err)
	}
}

// ttl is how long Redis keeps an entry: until until on this instance's
// clock (relative, so Redis' clock does not matter), rounded up to Redis'
// millisecond unit so the key never expires early.
func ttl(until, now time.Time) time.Duration {
	return until.Sub(now).Truncate(time.Millisecond) + time.Millisecond
}

// callerDone reports whether the caller gave up: not an outage.
func callerDone(ctx context.Context) bool { return ctx.Err() != nil }
