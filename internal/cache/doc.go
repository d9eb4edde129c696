// Package cache puts a read-through cache in front of the user store,
// shared by every instance of the service through Redis, or kept in process
// (Local backends) when the platform runs as one process. (The access-token
// denylist is not a cache of users: it is internal/revocation.)
//
// # What is cached
//
// Only user.Store.UserByID, the read behind every authenticated request
// (access-token validation compares the token's session version with the
// stored one). The cached value is the whole user as JSON, password hash and
// session version included: the cache is server-side state exactly as
// sensitive as the users table, so the Redis behind it must be private (no
// public listener, AUTH/ACL and TLS where the network is shared) and must
// not be shared with anything that is not trusted with the database.
//
// # Consistency
//
// The rule is: once a write that changes or removes a user has returned, no
// read that starts afterwards returns the user as it was before the write,
// and a deleted user never comes back. The mechanism:
//
//   - Every write path (UpdateUser, DeleteUser, ReplacePasswordHash, on the
//     store or on the Repo inside Atomic) invalidates the user's key after
//     the write, and for Atomic after the transaction has committed (the IDs
//     are collected during the transaction). Invalidating before the commit
//     would let a reader refill the old row in between.
//   - A reader that misses takes a lease on the key (SET NX of a lease with
//     a unique token, TombstoneTTL long) before it loads, and stores what
//     it loaded only if the key still holds its lease: the fill is a
//     compare-and-set on the server (a Lua script; under the lock for Local
//     backends). Invalidation replaces whatever the key holds with a
//     tombstone, lease included. This closes the classic cache-aside race —
//     a reader misses and loads the old row, the writer commits and
//     invalidates, and only then does the reader fill — without any
//     assumption about time: the stale fill fails however long the load
//     took, after the tombstone has expired too, and after a Redis
//     eviction or restart (which can only remove a lease, and with it the
//     fill). A reader that finds a tombstone or another reader's lease reads
//     the database and does not fill.
//   - A tombstone lives Options.TombstoneTTL (10s); while it does, no lease
//     is granted, so a just-written user is read from the database for that
//     long.
//   - Concurrent misses for one user on one instance load once
//     (singleflight). A caller may only share a load that started after any
//     write it must observe, so the singleflight key includes what the
//     caller saw in the cache (a miss or a lease, or the unique token of the
//     tombstone it saw): a caller that arrives after a write sees that
//     write's tombstone and cannot join a load begun before it. That needs
//     the tombstone to still exist, so a caller who gets a shared result
//     later than TombstoneTTL/2 after the load began reads the database
//     itself; the other half is the margin for the caller's own cache read.
//     This is the one rule that rests on time, and it concerns what one
//     caller is answered, never what the cache holds. Writes on this
//     instance also Forget the user's in-flight loads (the only protection
//     while the backend is down and nothing is seen).
//   - Reads inside Atomic, and LockUser, never use the cache: they must see
//     the transaction's own view.
//
// Give the cache's Redis enough memory that it does not evict
// (maxmemory-policy noeviction, or no maxmemory): an evicted tombstone lets
// a caller share a load begun before the write, inside the TombstoneTTL/2
// bound above. An evicted value or lease is harmless.
//
// # When the backend fails
//
// The cache never fails a request: on any backend error the Store reads the
// database, logs "cache unavailable" once at warn (and "cache available
// again" once at info on recovery), and Healthy reports the error for
// /readyz. After a failure the backend is skipped for Options.RetryInterval,
// then probed in the background; one failure does not make every request
// wait on a dead server. Configure the Redis client with short timeouts and
// few retries (e.g. DialTimeout and Read/WriteTimeout of a few hundred
// milliseconds, MaxRetries 1): go-redis defaults (5s dial, five dial
// attempts, three command retries) make the request that discovers an
// outage slow.
//
// An invalidation that cannot reach the backend is lost, and the old entry
// may outlive the write. That is bounded three ways: while the backend is
// unreachable from this instance nothing is filled or read from it here;
// the entry expires after Options.TTL regardless; and the lost
// invalidations are repaired before this instance uses the cache again.
// The Store remembers the IDs whose invalidation failed (up to
// Options.MaxPending) and, on recovery, tombstones exactly those keys
// before it declares the backend healthy; a tombstone written then also
// replaces the lease of a load still in flight, so it cannot fill. If more
// IDs were lost than it remembers, it tombstones every value and lease
// under the backend's prefix (Flush) instead, at once: a load from before
// the lost writes holds a lease, which the flush replaces. Other instances
// that can still reach Redis while this one cannot may serve a stale entry
// until the repair; that cannot be avoided without making every write fail
// when Redis does.
package cache
