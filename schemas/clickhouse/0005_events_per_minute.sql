-- Events per (event_type, minute), kept by a materialized view on insert.
--
-- A materialized view sees every inserted block, duplicates included (FINAL
-- does not apply to it), so the counts are only exact because the store never
-- inserts an event_id that is already in `events` (see the ClickHouse backend,
-- `insert_events`). Read with sum(events) ... GROUP BY: SummingMergeTree folds
-- rows only when parts merge.
CREATE TABLE IF NOT EXISTS events_per_minute
(
    event_type String,
    minute DateTime('UTC'),
    events UInt64
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (event_type, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS events_per_minute_mv
TO events_per_minute
AS SELECT
    event_type,
    toStartOfMinute(occurred_at) AS minute,
    count() AS events
FROM events
GROUP BY event_type, minute
