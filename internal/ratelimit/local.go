package ratelimit

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// LocalMaxKeys bounds the keys a Local limiter tracks. Idle keys (no
// allowed request within the window) are pruned as a matter of course;
// this cap only matters when more distinct keys than this are active
// within one window (a spray of spoofed keys), and then the least recently
// used key is forgotten, which resets its limit: failing open for that one
// key rather than growing without bound.
const LocalMaxKeys = 100_000

type localKey struct {
	key  string
	hits []time.Time // allowed requests within the window, oldest first
}

type localLimiter struct {
	rule    Rule
	maxKeys int
	mu      sync.Mutex
	keys    map[string]*list.Element
	lru     *list.List // of *localKey, most recently used first
}

// NewLocal returns an in-process Limiter with the same semantics as the
// Redis one, for a single-process deployment and as Fallback's stand-in.
// Memory is O(limit) per key active within the last window, at most
// LocalMaxKeys keys. It panics if the rule is invalid (see Rule.Validate).
func NewLocal(rule Rule) Limiter {
	rule.mustValidate()
	return &localLimiter{rule: rule, maxKeys: LocalMaxKeys, keys: map[string]*list.Element{}, lru: list.New()}
}

func (l *localLimiter) Allow(_ context.Context, key string) (bool, time.Duration, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.prune(now)
	el, ok := l.keys[key]
	if ok {
		l.lru.MoveToFront(el)
	} else {
		el = l.lru.PushFront(&localKey{key: key})
		l.keys[key] = el
		if l.lru.Len() > l.maxKeys {
			l.remove(l.lru.Back())
		}
	}
	k := el.Value.(*localKey)
	i := 0
	for i < len(k.hits) && now.Sub(k.hits[i]) >= l.rule.Window {
		i++
	}
	k.hits = k.hits[i:]
	if len(k.hits) < l.rule.Limit {
		k.hits = append(k.hits, now)
		return true, 0, nil
	}
	return false, max(k.hits[0].Add(l.rule.Window).Sub(now), time.Nanosecond), nil
}

// prune forgets least recently used keys whose last allowed request has
// left the window: they hold no state that could deny anything. Amortised
// O(1) per call, since each key is pruned once.
func (l *localLimiter) prune(now time.Time) {
	for el := l.lru.Back(); el != nil; el = l.lru.Back() {
		k := el.Value.(*localKey)
		if len(k.hits) > 0 && now.Sub(k.hits[len(k.hits)-1]) < l.rule.Window {
			return
		}
		l.remove(el)
	}
}

func (l *localLimiter) remove(el *list.Element) {
	delete(l.keys, el.Value.(*localKey).key)
	l.lru.Remove(el)
}
