-- Every event, one row per event_id, envelope columns flattened and the JSON
-- kept as received in `raw`.
--
-- Dedup: ReplacingMergeTree collapses rows with the same sorting key inside a
-- partition. The key (occurred_at_ms, event_id) and the partition (the day of
-- occurred_at) are both functions of the event itself, so a replayed event
-- lands in the same partition with the same key: event_id is the dedup key,
-- and the key order is also the order pages are read in. Reads use FINAL.
-- (The store also drops already-stored event_ids before inserting, so the
-- per-minute rollup fed by a materialized view stays exact; see 0005.)
--
-- Types: only what ClickHouse 18.16 and 26.x both accept (no DateTime64, no
-- LowCardinality, no TTL); retention drops whole day partitions.
CREATE TABLE IF NOT EXISTS events
(
    event_id String,
    event_type String,
    schema_version UInt32,
    occurred_at DateTime('UTC'),
    occurred_at_ms UInt64,
    issuer String,
    client_id Nullable(String),
    actor_kind String,
    actor_id Nullable(String),
    source_ip Nullable(String),
    request_id Nullable(String),
    correlation_id Nullable(String),
    raw String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(occurred_at)
ORDER BY (occurred_at_ms, event_id)
