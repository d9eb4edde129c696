-- 0003_revocations: what ends a credential before its expiry.
--
-- A reset token is bound to the address it was mailed to: the domain
-- accepts it only while the user's email is still this one. Resets opened
-- before this migration have no address and are refused (they expire within
-- the reset TTL anyway).
ALTER TABLE password_resets ADD COLUMN email VARCHAR(254) NOT NULL DEFAULT '';
