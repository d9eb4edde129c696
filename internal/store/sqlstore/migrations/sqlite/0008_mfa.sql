-- 0008_mfa: second factors (SQLite; see migrations/mysql/0008_mfa.sql).
CREATE TABLE mfa_factors (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    secret       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    confirmed_at INTEGER,
    last_used_at INTEGER,
    totp_step    INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE INDEX ix_mfa_factors_user_id ON mfa_factors (user_id);

CREATE TABLE mfa_recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;

CREATE TABLE mfa_tickets (
    ticket_hash TEXT    NOT NULL PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX ix_mfa_tickets_expires_at ON mfa_tickets (expires_at);

-- How each session's sign-in was authenticated (space-separated RFC 8176
-- amr values), copied to every token of the family so a refreshed access
-- token carries what the first one did. Every session before this
-- migration signed in with a password.
ALTER TABLE refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
