-- One page of events in (occurred_at_ms, event_id) order, after the cursor.
-- Unset filters are passed as any_* = 1 (and a placeholder value).
SELECT event_id, occurred_at_ms, raw
FROM events FINAL
WHERE occurred_at_ms >= {{since_ms}}
  AND occurred_at_ms < {{until_ms}}
  AND ({{any_event_type}} = 1 OR event_type = {{event_type}})
  AND ({{any_client_id}} = 1 OR client_id = {{client_id}})
  AND (occurred_at_ms > {{after_ms}} OR (occurred_at_ms = {{after_ms}} AND event_id > {{after_id}}))
ORDER BY occurred_at_ms, event_id
LIMIT {{limit}}
