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
	// Present: a value stored by Fill.
	Present
	// Tombstoned: recently invalidated; no lease is granted until it
	// expires.
	Tombstoned
	// Leased: a reader holds the right to fill the key (Lease) and is
	// loading the value.
	Leased
)

func (s State) String() string {
	switch s {
	case Missing:
		return "missing"
	case Present:
		return "present"
	case Tombstoned:
		return "tombstoned"
	case Leased:
		return "leased"
	}
	return "invalid"
}

// Backend is the key/value store under Store: just what cache-aside with
// leases and tombstones needs. Implementations must be safe for concurrent
// use and behave identically (the Store's consistency argument rests on
// these semantics, not on Redis). Keys are relative; the backend adds its
// own prefix.
type Backend interface {
	// Get returns the key's state and, for Present, the value (which the
	// caller must not modify); for Tombstoned and Leased, the token of the
	// Tombstone, Flush or Lease call that wrote it (unique to that call),
	// so a caller can tell one invalidation or lease from a later one.
	Get(ctx context.Context, key string) (State, []byte, error)
	// Lease claims a Missing key for a fill: only when the key is Missing
	// it stores a lease with a new token for ttl and returns the token;
	// otherwise it returns nil.
	Lease(ctx context.Context, key string, ttl time.Duration) ([]byte, error)
	// Fill stores value for ttl only when the key still holds the lease
	// with token, and reports whether it did. Whatever replaced the lease
	// since — a tombstone, a flush, its own expiry and someone else's
	// lease — makes the fill fail, so a value loaded before an
	// invalidation is never stored, however long the load took.
	Fill(ctx context.Context, key string, token, value []byte, ttl time.Duration) (bool, error)
	// Tombstone replaces whatever each key holds (a value, a lease) with a
	// new tombstone that expires after ttl.
	Tombstone(ctx context.Context, ttl time.Duration, keys ...string) error
	// Flush turns every Present or Leased key under the prefix into a
	// tombstone that expires after ttl (tombstones stay tombstones).
	// Tombstoning rather than deleting keeps other writers' recent
	// tombstones; replacing leases makes loads in flight unable to fill.
	Flush(ctx context.Context, ttl time.Duration) error
	// Ping reports whether the backend answers.
	Ping(ctx context.Context) error
}

// newToken returns a tombstone or lease token: 128 random bits, unique in practice.
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
