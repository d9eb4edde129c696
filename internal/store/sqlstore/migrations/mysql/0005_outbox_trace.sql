-- The W3C traceparent of the request that wrote the event, so the relay's
-- publish and the worker's handling join that request's trace. Empty when
-- the writer was not traced.
ALTER TABLE outbox ADD COLUMN trace_parent VARCHAR(128) NOT NULL DEFAULT '';
