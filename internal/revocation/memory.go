package revocation

import (
	"sync"
	"time"
)

// minSweep is the entry count below which expired entries are not swept.
const minSweep = 1024

// memory is an instance's own part of the list: the revocations it has
// written or loaded, each until it expires. Expired entries are swept once
// their number has doubled since the last sweep, so memory follows the live
// revocations.
type memory struct {
	mu      sync.Mutex
	until   map[string]time.Time
	sweepAt int
}

func newMemory() *memory { return &memory{until: map[string]time.Time{}, sweepAt: minSweep} }

func (m *memory) add(key string, until, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.until[key]; !ok || until.After(cur) {
		m.until[key] = until
	}
	if len(m.until) >= m.sweepAt {
		for k, u := range m.until {
			if !u.After(now) {
				delete(m.until, k)
			}
		}
		m.sweepAt = max(minSweep, 2*len(m.until))
	}
}

func (m *memory) any(keys []string, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if u, ok := m.until[k]; ok && u.After(now) {
			return true
		}
	}
	return false
}
