-- The revocations published to other services (sdk/revocations): each
-- is written here and to the outbox in the transaction of the change that
-- caused it, so a verifier that missed the event on RabbitMQ catches up
-- from here. A row is kept until every token it covers has expired
-- (until), then swept with the denylist. id is a UUIDv7: time-ordered,
-- the catch-up's page cursor.
CREATE TABLE token_revocations (
    id       CHAR(36)    NOT NULL,
    at       DATETIME(6) NOT NULL,
    until_at DATETIME(6) NOT NULL,
    body     TEXT        NOT NULL,
    PRIMARY KEY (id),
    KEY ix_token_revocations_until (until_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
