-- 0001_init: users, refresh tokens and password resets (SQLite).
--
-- The same schema as migrations/mysql/0001_init.sql, adapted:
--   * STRICT tables, so a value of the wrong type is an error as in MySQL
--     (lengths are not enforced; the domain bounds every input).
--   * WITHOUT ROWID, so each table is clustered on its primary key like
--     InnoDB: a lookup by id or token hash is one B-tree search, and a
--     cursor page ("id > ? ORDER BY id") is a range scan of the table.
--   * Times are INTEGER microseconds since the Unix epoch, UTC: exact at the
--     precision the domain needs, numerically ordered, and independent of
--     the driver's time formatting.
--   * Columns compare byte-wise (BINARY), like utf8mb4_bin, so email
--     equality and uniqueness are exact. SQLite's LIKE, however, is
--     ASCII-case-insensitive and can only turn "col LIKE 'p%'" into an index
--     range on an index that uses the NOCASE collation; the prefix-search
--     indexes are therefore declared COLLATE NOCASE. The stored values are
--     lower case already (the domain normalises emails, the store lower-cases
--     names), so the case-insensitive LIKE returns what MySQL's does.

CREATE TABLE users (
    id              TEXT    NOT NULL PRIMARY KEY,
    email           TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    name_lower      TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    password_hash   TEXT    NOT NULL,
    session_version INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The store recognises a duplicate email by the column name SQLite reports
-- ("users.email").
CREATE UNIQUE INDEX uq_users_email ON users (email);
CREATE INDEX ix_users_role_id ON users (role, id);
CREATE INDEX ix_users_status_id ON users (status, id);
-- For the prefix search (see above).
CREATE INDEX ix_users_email_nocase ON users (email COLLATE NOCASE);
CREATE INDEX ix_users_name_lower ON users (name_lower COLLATE NOCASE);

CREATE TABLE refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    family_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    revoked_at INTEGER
) STRICT, WITHOUT ROWID;

CREATE INDEX ix_refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX ix_refresh_tokens_user_id ON refresh_tokens (user_id);

CREATE TABLE password_resets (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    -- At most one open reset per user; PutPasswordReset upserts on it.
    user_id    TEXT    NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
