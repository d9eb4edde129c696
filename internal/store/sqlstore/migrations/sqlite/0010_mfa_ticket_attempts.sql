-- mfa_tickets.attempts (SQLite; see migrations/mysql/0010_mfa_ticket_attempts.sql).
ALTER TABLE mfa_tickets ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
