-- 0003_revocations: what ends a credential before its expiry (SQLite; see
-- migrations/mysql/0003_revocations.sql).
ALTER TABLE password_resets ADD COLUMN email TEXT NOT NULL DEFAULT '';

CREATE TABLE revoked_tokens (
    token_key  TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX ix_revoked_tokens_expires_at ON revoked_tokens (expires_at);
