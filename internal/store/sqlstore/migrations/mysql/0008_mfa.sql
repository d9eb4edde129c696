-- 0008_mfa: second factors (issue 20).
--
-- mfa_factors: a user's enrolled or enrolling factors. secret is the
-- factor's secret sealed by package seal (AES-256-GCM under a configured
-- key, text "v1.<key id>.<base64url>", bound to the row's id), so a copy
-- of the database does not give away a TOTP seed. confirmed_at NULL = an
-- enrolment waiting for its first code (not active). totp_step is the last
-- accepted RFC 6238 time step: a code of that step or an earlier one is
-- refused, by one conditional UPDATE, so a code counts once across every
-- instance.
CREATE TABLE mfa_factors (
    id           CHAR(36)     NOT NULL,
    user_id      CHAR(36)     NOT NULL,
    kind         VARCHAR(16)  NOT NULL,
    name         VARCHAR(64)  NOT NULL,
    secret       VARCHAR(512) NOT NULL,
    created_at   DATETIME(6)  NOT NULL,
    confirmed_at DATETIME(6)  NULL,
    last_used_at DATETIME(6)  NULL,
    totp_step    BIGINT       NOT NULL DEFAULT 0,
    PRIMARY KEY (id),
    KEY ix_mfa_factors_user_id (user_id),
    CONSTRAINT fk_mfa_factors_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- mfa_recovery_codes: the user's current recovery codes, as SHA-256 of the
-- user id and the code (factor.HashRecoveryCode); used_at set once.
CREATE TABLE mfa_recovery_codes (
    user_id    CHAR(36)    NOT NULL,
    code_hash  CHAR(64)    NOT NULL,
    created_at DATETIME(6) NOT NULL,
    used_at    DATETIME(6) NULL,
    PRIMARY KEY (user_id, code_hash),
    CONSTRAINT fk_mfa_recovery_codes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- mfa_tickets: a password sign-in waiting for its second factor, by
-- SHA-256 of the ticket (like refresh tokens); short-lived, used once,
-- swept by expires_at.
CREATE TABLE mfa_tickets (
    ticket_hash CHAR(64)    NOT NULL,
    user_id     CHAR(36)    NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    expires_at  DATETIME(6) NOT NULL,
    used_at     DATETIME(6) NULL,
    PRIMARY KEY (ticket_hash),
    KEY ix_mfa_tickets_expires_at (expires_at),
    CONSTRAINT fk_mfa_tickets_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- How each session's sign-in was authenticated (space-separated RFC 8176
-- amr values), copied to every token of the family so a refreshed access
-- token carries what the first one did. Every session before this
-- migration signed in with a password.
ALTER TABLE refresh_tokens ADD COLUMN amr VARCHAR(64) NOT NULL DEFAULT 'pwd';
