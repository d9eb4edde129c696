-- Service accounts: machine callers with their own identity. The secret is
-- random (256 bits) and stored as its SHA-256, like refresh tokens; scopes
-- are a space-separated list.
CREATE TABLE service_accounts (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
) STRICT, WITHOUT ROWID;
