-- Service accounts: machine callers with their own identity. The secret is
-- random (256 bits) and stored as its SHA-256, like refresh tokens; scopes
-- are a space-separated list.
CREATE TABLE service_accounts (
  id CHAR(36) NOT NULL,
  name VARCHAR(64) NOT NULL,
  secret_hash CHAR(64) NOT NULL,
  scopes VARCHAR(255) NOT NULL,
  created_at DATETIME(6) NOT NULL,
  revoked_at DATETIME(6) NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
