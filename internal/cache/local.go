package cache

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"time"
)

// DefaultLocalEntries is NewLocal's bound when given maxEntries <= 0.
const DefaultLocalEntries = 10_000

// minSweep is the tombstone count below which expired tombstones are not
// swept (they are still ignored once expired).
const minSweep = 1024

type localEntry struct {
	key string
	val []byte
	exp time.Time
}

type localTomb struct {
	token []byte
	exp   time.Time
}

type localBackend struct {
	mu      sync.Mutex
	max     int
	lru     *list.List // of *localEntry, most recently used first
	items   map[string]*list.Element
	tombs   map[string]localTomb
	sweepAt int
}

// NewLocal returns an in-process Backend with the same semantics as the
// Redis one, for a single-process deployment (the embedded default) and for
// tests. At most maxEntries values are kept (least recently used evicted
// first; expired ones are dropped when met). Tombstones are kept apart and
// never evicted — evicting one would reopen the race it closes — so they
// are bounded by time instead: at most one per write in the last
// TombstoneTTL, swept once expired.
func NewLocal(maxEntries int) Backend {
	if maxEntries <= 0 {
		maxEntries = DefaultLocalEntries
	}
	return &localBackend{max: maxEntries, lru: list.New(), items: map[string]*list.Element{},
		tombs: map[string]localTomb{}, sweepAt: minSweep}
}

func (l *localBackend) Get(_ context.Context, key string) (State, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.tombs[key]; ok {
		if now.Before(t.exp) {
			return Tombstoned, t.token, nil
		}
		delete(l.tombs, key)
	}
	if el, ok := l.items[key]; ok {
		e := el.Value.(*localEntry)
		if now.Before(e.exp) {
			l.lru.MoveToFront(el)
			return Present, e.val, nil
		}
		l.remove(el)
	}
	return Missing, nil, nil
}

func (l *localBackend) SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now() // under the lock: the instant the fill takes effect
	if d, ok := ctx.Deadline(); ok && !now.Before(d) {
		return false, context.DeadlineExceeded
	}
	if t, ok := l.tombs[key]; ok {
		if now.Before(t.exp) {
			return false, nil
		}
		delete(l.tombs, key)
	}
	if el, ok := l.items[key]; ok {
		if now.Before(el.Value.(*localEntry).exp) {
			return false, nil
		}
		l.remove(el)
	}
	l.items[key] = l.lru.PushFront(&localEntry{key: key, val: slices.Clone(value), exp: now.Add(ttl)})
	for l.lru.Len() > l.max {
		l.remove(l.lru.Back())
	}
	return true, nil
}

func (l *localBackend) Tombstone(_ context.Context, ttl time.Duration, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	token := newToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	// The expiry counts from when the tombstone takes effect (under the
	// lock), never earlier.
	t := localTomb{token: token, exp: time.Now().Add(ttl)}
	for _, k := range keys {
		if el, ok := l.items[k]; ok {
			l.remove(el)
		}
		l.tombs[k] = t
	}
	l.sweep(time.Now())
	return nil
}

func (l *localBackend) Flush(_ context.Context, ttl time.Duration) error {
	token := newToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	t := localTomb{token: token, exp: time.Now().Add(ttl)}
	for k := range l.items {
		l.tombs[k] = t
	}
	clear(l.items)
	l.lru.Init()
	l.sweep(time.Now())
	return nil
}

func (l *localBackend) Ping(context.Context) error { return nil }

func (l *localBackend) remove(el *list.Element) {
	delete(l.items, el.Value.(*localEntry).key)
	l.lru.Remove(el)
}

// sweep drops expired tombstones once their number has doubled since the
// last sweep, so the work is amortised O(1) per tombstone written.
func (l *localBackend) sweep(now time.Time) {
	if len(l.tombs) < l.sweepAt {
		return
	}
	for k, t := range l.tombs {
		if !now.Before(t.exp) {
			delete(l.tombs, k)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.tombs))
}
