-- Which of a batch's event_ids are stored already (run before every insert,
-- for the ids the store does not already know to be stored, so the rollup
-- materialized view never sees a duplicate). The occurred_at_ms bounds of
-- the batch let the primary key skip most of the table. The ids are one
-- array turned into the IN set: on ClickHouse 18.16 that costs about a
-- quarter of the server CPU of a plain `IN ('…', '…')` list of the same ids
-- (BENCHMARKS.md, "Pipeline throughput"). An empty list renders as [''],
-- which matches no id.
SELECT DISTINCT event_id
FROM events
WHERE occurred_at_ms >= {{min_ms}}
  AND occurred_at_ms <= {{max_ms}}
  AND event_id IN (SELECT arrayJoin([{{event_ids}}]))
