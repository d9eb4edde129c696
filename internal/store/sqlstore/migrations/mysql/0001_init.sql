-- 0001_init: users, refresh tokens and password resets (MySQL/MariaDB).
--
-- Every table is InnoDB (row locks, transactions, foreign keys) in utf8mb4
-- with utf8mb4_bin: names may hold any Unicode, emails are already
-- normalised to lower case by the domain so an exact byte comparison is the
-- right equality, and IDs sort byte-wise, which keeps UUIDv7 keys in
-- creation order for keyset paging. Times are DATETIME(6) in UTC (the
-- connection runs with loc=UTC).

CREATE TABLE users (
    id              CHAR(36)     NOT NULL,
    email           VARCHAR(254) NOT NULL,
    name            VARCHAR(100) NOT NULL,
    -- name lower-cased by the application (strings.ToLower), for a
    -- case-insensitive prefix search that can use an index.
    name_lower      VARCHAR(100) NOT NULL,
    role            VARCHAR(16)  NOT NULL,
    status          VARCHAR(16)  NOT NULL,
    password_hash   VARCHAR(255) NOT NULL,
    session_version BIGINT       NOT NULL DEFAULT 0,
    created_at      DATETIME(6)  NOT NULL,
    updated_at      DATETIME(6)  NOT NULL,
    PRIMARY KEY (id),
    -- The store recognises a duplicate email by this index name.
    UNIQUE KEY uq_users_email (email),
    -- (filter, id): a filtered list is an ordered range scan, cursor pages
    -- included.
    KEY ix_users_role_id (role, id),
    KEY ix_users_status_id (status, id),
    KEY ix_users_name_lower (name_lower)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE refresh_tokens (
    token_hash CHAR(64)    NOT NULL,
    family_id  CHAR(36)    NOT NULL,
    user_id    CHAR(36)    NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    used_at    DATETIME(6) NULL,
    revoked_at DATETIME(6) NULL,
    PRIMARY KEY (token_hash),
    KEY ix_refresh_tokens_family_id (family_id),
    KEY ix_refresh_tokens_user_id (user_id),
    CONSTRAINT fk_refresh_tokens_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE password_resets (
    token_hash CHAR(64)    NOT NULL,
    user_id    CHAR(36)    NOT NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (token_hash),
    -- At most one open reset per user; PutPasswordReset upserts on it.
    UNIQUE KEY uq_password_resets_user_id (user_id),
    CONSTRAINT fk_password_resets_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
