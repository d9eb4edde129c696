package token

import (
	"sync"
	"time"
)

// verifiedCache remembers tokens whose signature and claims already
// verified, so a token presented again (every request of a session) skips
// the Ed25519 verification, the dominant cost of Validate. It is keyed by
// the exact token string, so only byte-identical tokens hit; expiry is
// re-checked on every hit, and the keyring is immutable for the Manager's
// life, so a hit is exactly as trustworthy as a fresh parse. Bounded: when
// full, an arbitrary half is dropped (cheap, and a miss only costs a parse).
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[string]Claims
	max int
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[string]Claims), max: max}
}

func (c *verifiedCache) get(tok string, now time.Time, leeway time.Duration) (Claims, bool) {
	c.mu.RLock()
	cl, ok := c.m[tok]
	c.mu.RUnlock()
	if !ok || !now.Before(cl.ExpiresAt.Add(leeway)) {
		return Claims{}, false
	}
	return cl, true
}

func (c *verifiedCache) put(tok string, cl Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		n := 0
		for k := range c.m {
			if n >= c.max/2 {
				break
			}
			delete(c.m, k)
			n++
		}
	}
	c.m[tok] = cl
}
