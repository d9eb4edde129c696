-- 0006_email_verification: verified addresses and pending email changes.
--
-- email_verified: the user proved they receive mail at email. Rows that
-- exist before this migration are taken as verified (DEFAULT TRUE fills
-- them), so turning USERSVC_REQUIRE_VERIFIED_EMAIL on later does not lock
-- out accounts that signed up when no address was checked; the store writes
-- the column explicitly on every insert, so the default applies only here.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT TRUE;
-- pending_email: an address the user asked to change to, which becomes
-- email (the login) only once verified; '' = none. Not unique: it is not a
-- login until then, and the unique index on email decides at verification.
ALTER TABLE users ADD COLUMN pending_email VARCHAR(254) NOT NULL DEFAULT '';

-- Open verification tokens, by SHA-256 of the token, like password_resets:
-- at most one per user, for the address in email (the user's email or its
-- pending one).
CREATE TABLE email_verifications (
    token_hash CHAR(64)     NOT NULL,
    user_id    CHAR(36)     NOT NULL,
    email      VARCHAR(254) NOT NULL,
    created_at DATETIME(6)  NOT NULL,
    expires_at DATETIME(6)  NOT NULL,
    PRIMARY KEY (token_hash),
    UNIQUE KEY uq_email_verifications_user_id (user_id),
    CONSTRAINT fk_email_verifications_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
