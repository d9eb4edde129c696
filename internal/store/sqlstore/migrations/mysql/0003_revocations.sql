-- 0003_revocations: what ends a credential before its expiry.
--
-- A reset token is bound to the address it was mailed to: the domain
-- accepts it only while the user's email is still this one. Resets opened
-- before this migration have no address and are refused (they expire within
-- the reset TTL anyway).
ALTER TABLE password_resets ADD COLUMN email VARCHAR(254) NOT NULL DEFAULT '';

-- The access-token denylist (internal/revocation): a logged-out token's jti,
-- or "sid:" and an ended session's refresh family, denied until expires_at.
-- Redis may cache it; this table is the list, so a logout survives restarts
-- and holds on every instance. Expired rows are swept by expires_at.
CREATE TABLE revoked_tokens (
    token_key  VARCHAR(64) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (token_key),
    KEY ix_revoked_tokens_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
