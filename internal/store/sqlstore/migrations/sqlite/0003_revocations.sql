-- 0003_revocations: what ends a credential before its expiry (SQLite; see
-- migrations/mysql/0003_revocations.sql).
ALTER TABLE password_resets ADD COLUMN email TEXT NOT NULL DEFAULT '';
