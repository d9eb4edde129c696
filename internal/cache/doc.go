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
//   - Invalidation does not delete the key: it writes a tombstone with a
//     short TTL (Options.TombstoneTTL, 10s). Fills are SET NX, so they fail
//     while the tombstone exists. This closes the classic cache-aside race: a
//     reader misses, loads the old row, the writer commits and invalidates,
//     and only then does the reader fill — with a plain DELETE the old row
//     would stay cached for the whole TTL. A reader that sees a tombstone
//     reads the database and does not try to fill.
//   - The tombstone must outlive any such reader: a stale fill comes from a
//     load that started before the commit, and the tombstone is written
//     after it, so it suffices that every fill happens less than
//     TombstoneTTL after its load started. The Store enforces this rather
//     than assuming it: each fill carries the deadline "load start +
//     TombstoneTTL/2" and the backend refuses it after that (the other
//     half is margin for the fill's time on the wire and for clock-rate
//     differences with Redis), so a slow load is returned but not cached.
//     Size TombstoneTTL well above the slowest database read you expect;
//     the price of a longer one is only that a just-written user is read
//     from the database for longer.
//   - Concurrent misses for one user on one instance load once
//     (singleflight). A caller may only share a load that started after any
//     write it must observe, so the singleflight key includes what the
//     caller saw in the cache (a miss, or the unique token of the tombstone
//     it saw): a caller that arrives after a write sees that write's
//     tombstone and cannot join a load begun before it. That too needs the
//     tombstone to still exist, so a caller who gets a shared result later
//     than TombstoneTTL/2 after the load began reads the database itself.
//     Writes on this instance also Forget the user's in-flight loads (the
//     only protection while the backend is down and nothing is seen).
//   - Reads inside Atomic, and LockUser, never use the cache: they must see
//     the transaction's own view.
//
// Tombstones must not be evicted: give the cache's Redis enough memory that
// it never evicts (maxmemory-policy noeviction, or no maxmemory). An evicted
// tombstone reopens the race above for its key; so would a Redis restart
// that loses tombstones less than TombstoneTTL old.
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
// blocks a fill from a load still in flight. If more IDs were lost than it
// remembers, it tombstones every key under the backend's prefix (Flush)
// instead, once TombstoneTTL has passed since the last lost write — by then
// no load that started before that write can still fill, so the flush
// catches every stale entry. Other instances that can still reach Redis
// while this one cannot may serve a stale entry until the repair; that
// cannot be avoided without making every write fail when Redis does.

package cache
