-- The transactional outbox: each change writes its event here in the same
-- transaction; the relay publishes and deletes rows. No foreign key to users:
-- a user.deleted event outlives its user.
CREATE TABLE outbox (
  id TEXT NOT NULL PRIMARY KEY,
  type TEXT NOT NULL,
  user_id TEXT NOT NULL,
  occurred_at INTEGER NOT NULL,
  body TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- What each idempotent consumer has already done, by event ID.
CREATE TABLE processed_events (
  consumer TEXT NOT NULL,
  event_id TEXT NOT NULL,
  processed_at INTEGER NOT NULL,
  PRIMARY KEY (consumer, event_id)
) STRICT, WITHOUT ROWID;
