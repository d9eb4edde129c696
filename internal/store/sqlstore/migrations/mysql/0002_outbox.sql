-- The transactional outbox: each change writes its event here in the same
-- transaction; the relay publishes and deletes rows. No foreign key to users:
-- a user.deleted event outlives its user.
CREATE TABLE outbox (
  id CHAR(36) NOT NULL,
  type VARCHAR(64) NOT NULL,
  user_id CHAR(36) NOT NULL,
  occurred_at DATETIME(6) NOT NULL,
  body MEDIUMTEXT NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- What each idempotent consumer has already done, by event ID.
CREATE TABLE processed_events (
  consumer VARCHAR(64) NOT NULL,
  event_id CHAR(36) NOT NULL,
  processed_at DATETIME(6) NOT NULL,
  PRIMARY KEY (consumer, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
