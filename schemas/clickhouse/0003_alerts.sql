-- Detector alerts. An alert is updated in place by alert_id: every update is a
-- new row and ReplacingMergeTree keeps the one with the greatest
-- updated_at_ms (on a tie, the last inserted). Reads use FINAL.
-- No partitioning: a partition boundary would stop two versions of one alert
-- from collapsing, and the table is small.
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    kind String,
    severity String,
    score Float64,
    client_id String,
    status String,
    dedup_key String,
    created_at DateTime('UTC'),
    created_at_ms UInt64,
    updated_at DateTime('UTC'),
    updated_at_ms UInt64,
    event_ids Array(String),
    related_client_ids Array(String),
    summary String,
    raw String
)
ENGINE = ReplacingMergeTree(updated_at_ms)
ORDER BY alert_id
