-- 0009_passkeys: WebAuthn passkeys (SQLite; see migrations/mysql/0009_passkeys.sql).
CREATE TABLE mfa_passkeys (
    factor_id      TEXT    NOT NULL PRIMARY KEY REFERENCES mfa_factors (id) ON DELETE CASCADE,
    credential_key TEXT    NOT NULL,
    credential     TEXT    NOT NULL,
    sign_count     INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE UNIQUE INDEX uq_mfa_passkeys_credential_key ON mfa_passkeys (credential_key);

CREATE TABLE mfa_ceremonies (
    ceremony_hash TEXT    NOT NULL PRIMARY KEY,
    kind          TEXT    NOT NULL,
    user_id       TEXT    REFERENCES users (id) ON DELETE CASCADE,
    session       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX ix_mfa_ceremonies_expires_at ON mfa_ceremonies (expires_at);
