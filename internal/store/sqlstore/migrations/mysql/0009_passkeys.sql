-- 0009_passkeys: WebAuthn passkeys (issue 20).
--
-- mfa_passkeys: the credential of a factor of kind 'webauthn' (its name
-- and times stay in mfa_factors). credential_key is the hex SHA-256 of the
-- credential id, unique, so a passwordless sign-in finds the credential
-- and its user from the assertion alone (a hash keeps the indexed column
-- small whatever the authenticator's id length). credential is the
-- go-webauthn Credential record as JSON (public key, flags, transports,
-- AAGUID; nothing secret). sign_count is the authenticator's signature
-- counter, moved forward by one conditional UPDATE.
CREATE TABLE mfa_passkeys (
    factor_id      CHAR(36)    NOT NULL,
    credential_key CHAR(64)    NOT NULL,
    credential     TEXT        NOT NULL,
    sign_count     BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (factor_id),
    UNIQUE KEY uq_mfa_passkeys_credential_key (credential_key),
    CONSTRAINT fk_mfa_passkeys_factor FOREIGN KEY (factor_id) REFERENCES mfa_factors (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- mfa_ceremonies: a WebAuthn ceremony between its begin and finish (the
-- challenge and what the response must match), by SHA-256 of its handle
-- like tickets; short-lived, used once, swept by expires_at. user_id is
-- NULL for a passwordless sign-in, whose user is not known yet.
CREATE TABLE mfa_ceremonies (
    ceremony_hash CHAR(64)    NOT NULL,
    kind          VARCHAR(16) NOT NULL,
    user_id       CHAR(36)    NULL,
    session       TEXT        NOT NULL,
    created_at    DATETIME(6) NOT NULL,
    expires_at    DATETIME(6) NOT NULL,
    used_at       DATETIME(6) NULL,
    PRIMARY KEY (ceremony_hash),
    KEY ix_mfa_ceremonies_expires_at (expires_at),
    CONSTRAINT fk_mfa_ceremonies_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
