-- Revocation requests the api dispatches: recorded before they are sent,
-- updated (new row, greater updated_at_ms) as attempts succeed or fail.
CREATE TABLE IF NOT EXISTS revocations
(
    revocation_id String,
    client_id String,
    alert_id String,
    reason String,
    requested_by String,
    status String,
    attempts UInt32,
    last_error String,
    created_at DateTime('UTC'),
    updated_at_ms UInt64
)
ENGINE = ReplacingMergeTree(updated_at_ms)
ORDER BY revocation_id
