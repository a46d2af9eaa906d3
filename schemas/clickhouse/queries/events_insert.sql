-- Mirror: the backend sends these columns, in this order, as RowBinary
-- (`INSERT INTO events (...) FORMAT RowBinary`); a unit test checks that the
-- list equals the Rust row struct. The chdb suite runs it with VALUES.
INSERT INTO events (event_id, event_type, schema_version, occurred_at, occurred_at_ms, issuer, client_id, actor_kind, actor_id, source_ip, request_id, correlation_id, raw)
VALUES {{rows}}
