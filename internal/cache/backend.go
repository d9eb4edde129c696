package cache

import (
	"context"
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// State is what a key holds in a Backend.
type State uint8

const (
	// Missing: no entry (never filled, expired or evicted).
	Missing State = iota
	// Present: a value stored by SetIfAbsent.
	Present
	// Tombstoned: recently invalidated; fills are refused until it expires.
	Tombstoned
)

func (s State) String() string {
	switch s {
	case Missing:
		return "missing"
	case Present:
		return "present"
	case Tombstoned:
		return "tombstoned"
	}
	return "invalid"
}

// Backend is the key/value store under Store: just what cache-aside with
// tombstones needs. Implementations must be safe for concurrent use and
// behave identically (the Store's consistency argument rests on these
// semantics, not on Redis). Keys are relative; the backend adds its own
// prefix.
type Backend interface {
	// Get returns the key's state and, for Present, the value (which the
	// caller must not modify); for Tombstoned, the tombstone's token, unique
	// to the Tombstone or Flush call that wrote it, so a caller can tell
	// one invalidation from a later one.
	Get(ctx context.Context, key string) (State, []byte, error)
	// SetIfAbsent stores value for ttl only when the key is Missing (not
	// Present, not Tombstoned) and reports whether it did. It must not
	// store anything once ctx's deadline has passed (returning false and
	// the context's error): the Store gives each fill the deadline after
	// which a tombstone may no longer guard it. Local checks the deadline
	// under its lock, exactly; Redis as go-redis sends the command, so only
	// the command's transit to the server is left to the safety margin.
	SetIfAbsent(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)
	// Tombstone replaces whatever each key holds with a new tombstone that
	// expires after ttl.
	Tombstone(ctx context.Context, ttl time.Duration, keys ...string) error
	// Flush turns every Present key under the prefix into a tombstone that
	// expires after ttl (tombstones stay tombstones). Tombstoning rather
	// than deleting keeps other writers' recent tombstones, and blocks fills
	// from loads in flight.
	Flush(ctx context.Context, ttl time.Duration) error
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
}

// newToken returns a tombstone token: 128 random bits, unique in practice.
// Uniqueness is all that matters (not secrecy), so math/rand/v2's ChaCha8
// generator is enough.
func newToken() []byte {
	var b [16]byte
	for i := range 2 {
		v := rand.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	t := make([]byte, hex.EncodedLen(len(b)))
	hex.Encode(t, b[:])
	return t
}
