package cache

import (
	"bytes"
	"container/list"
	"context"
	"slices"
	"sync"
	"time"
)

// DefaultLocalEntries is NewLocal's bound when given maxEntries <= 0.
const DefaultLocalEntries = 10_000

// minSweep is the mark count below which expired tombstones and leases are
// not swept (they are still ignored once expired).
const minSweep = 1024

type localEntry struct {
	key string
	val []byte
	exp time.Time
}

// localMark is a tombstone or a lease.
type localMark struct {
	token []byte
	exp   time.Time
	lease bool
}

func (m localMark) state() State {
	if m.lease {
		return Leased
	}
	return Tombstoned
}

type localBackend struct {
	mu      sync.Mutex
	max     int
	lru     *list.List // of *localEntry, most recently used first
	items   map[string]*list.Element
	marks   map[string]localMark // tombstones and leases
	sweepAt int
}

// NewLocal returns an in-process Backend with the same semantics as the
// Redis one, for a single-process deployment (the embedded default) and for
// tests. At most maxEntries values are kept (least recently used evicted
// first; expired ones are dropped when met). Tombstones and leases are
// kept apart and never evicted, so they are bounded by time instead: at
// most one tombstone per write in the last TombstoneTTL and one lease per
// load in flight, swept once expired.
func NewLocal(maxEntries int) Backend {
	if maxEntries <= 0 {
		maxEntries = DefaultLocalEntries
	}
	return &localBackend{max: maxEntries, lru: list.New(), items: map[string]*list.Element{},
		marks: map[string]localMark{}, sweepAt: minSweep}
}

func (l *localBackend) Get(_ context.Context, key string) (State, []byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m, ok := l.mark(key, time.Now()); ok {
		return m.state(), m.token, nil
	}
	if e, ok := l.item(key, time.Now()); ok {
		l.lru.MoveToFront(l.items[key])
		return Present, e.val, nil
	}
	return Missing, nil, nil
}

// mark returns the key's unexpired tombstone or lease, dropping an expired
// one.
func (l *localBackend) mark(key string, now time.Time) (localMark, bool) {
	m, ok := l.marks[key]
	if ok && !now.Before(m.exp) {
		delete(l.marks, key)
		return localMark{}, false
	}
	return m, ok
}

// item returns the key's unexpired value, dropping an expired one.
func (l *localBackend) item(key string, now time.Time) (*localEntry, bool) {
	el, ok := l.items[key]
	if !ok {
		return nil, false
	}
	if e := el.Value.(*localEntry); now.Before(e.exp) {
		return e, true
	}
	l.remove(el)
	return nil, false
}

func (l *localBackend) Lease(_ context.Context, key string, ttl time.Duration) ([]byte, error) {
	token := newToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if _, ok := l.mark(key, now); ok {
		return nil, nil
	}
	if _, ok := l.item(key, now); ok {
		return nil, nil
	}
	l.marks[key] = localMark{token: token, exp: now.Add(ttl), lease: true}
	l.sweep(now)
	return token, nil
}

func (l *localBackend) Fill(_ context.Context, key string, token, value []byte, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if m, ok := l.mark(key, now); !ok || !m.lease || !bytes.Equal(m.token, token) {
		return false, nil
	}
	delete(l.marks, key)
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
	t := localMark{token: token, exp: time.Now().Add(ttl)}
	for _, k := range keys {
		if el, ok := l.items[k]; ok {
			l.remove(el)
		}
		l.marks[k] = t
	}
	l.sweep(time.Now())
	return nil
}

func (l *localBackend) Flush(_ context.Context, ttl time.Duration) error {
	token := newToken()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	t := localMark{token: token, exp: now.Add(ttl)}
	for k := range l.items {
		l.marks[k] = t
	}
	for k, m := range l.marks {
		if m.lease && now.Before(m.exp) {
			l.marks[k] = t
		}
	}
	clear(l.items)
	l.lru.Init()
	l.sweep(now)
	return nil
}

func (l *localBackend) Ping(context.Context) error { return nil }

func (l *localBackend) remove(el *list.Element) {
	delete(l.items, el.Value.(*localEntry).key)
	l.lru.Remove(el)
}

// sweep drops expired tombstones and leases once their number has doubled
// since the last sweep, so the work is amortised O(1) per mark written.
func (l *localBackend) sweep(now time.Time) {
	if len(l.marks) < l.sweepAt {
		return
	}
	for k, m := range l.marks {
		if !now.Before(m.exp) {
			delete(l.marks, k)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.marks))
}
