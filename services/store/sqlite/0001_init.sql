-- The embedded event store. Same columns as the ClickHouse tables where it
-- matters; times as integer milliseconds (UTC). Idempotent: run at every open.
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY NOT NULL,
    event_type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    issuer TEXT NOT NULL,
    client_id TEXT,
    actor_kind TEXT NOT NULL,
    actor_id TEXT,
    source_ip TEXT,
    request_id TEXT,
    correlation_id TEXT,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_time ON events (occurred_at_ms, event_id);
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, occurred_at_ms, event_id);
CREATE INDEX IF NOT EXISTS events_by_client ON events (client_id, occurred_at_ms, event_id);
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    score REAL NOT NULL,
    client_id TEXT NOT NULL,
    status TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_created ON alerts (created_at_ms, alert_id);
