-- One row per version of a client's registered metadata (a registration, each
-- update, and the terminal states), keyed by the event that produced it.
-- `version_ms` is that event's occurred_at in milliseconds; the latest
-- version of a client is the row with the greatest version_ms.
CREATE TABLE IF NOT EXISTS clients
(
    client_id String,
    version_ms UInt64,
    event_id String,
    event_type String,
    status String,
    client_name String,
    redirect_uris Array(String),
    software_id String,
    registration_method String,
    metadata String,
    updated_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version_ms)
ORDER BY (client_id, version_ms)
