-- Which of a batch's event_ids are stored already (run before every insert,
-- so the rollup materialized view never sees a duplicate). The occurred_at_ms
-- bounds of the batch let the primary key skip most of the table.
SELECT DISTINCT event_id
FROM events
WHERE occurred_at_ms >= {{min_ms}}
  AND occurred_at_ms <= {{max_ms}}
  AND event_id IN ({{event_ids}})
