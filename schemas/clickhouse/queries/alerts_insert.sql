-- Mirror: the backend sends these columns, in this order, as RowBinary; a
-- unit test checks that the list equals the Rust row struct.
INSERT INTO alerts_by_time (alert_id, kind, severity, score, client_id, status, dedup_key, created_at, created_at_ms, updated_at, updated_at_ms, event_ids, related_client_ids, summary, raw)
VALUES {{rows}}
