-- The revocations published to other services (SQLite; see
-- migrations/mysql/0007_token_revocations.sql).
CREATE TABLE token_revocations (
    id       TEXT    NOT NULL PRIMARY KEY,
    at       INTEGER NOT NULL,
    until_at INTEGER NOT NULL,
    body     TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX ix_token_revocations_until ON token_revocations (until_at);
