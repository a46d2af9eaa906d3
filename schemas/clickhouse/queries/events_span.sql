-- How many events the page filters accept in [from_ms, until_ms), and the
-- earliest occurred_at_ms among them: a windowed page read counts a wide
-- window before reading its raw JSON, and finds where to jump after an
-- empty one. Reads the sort-key and filter columns only, and no FINAL: a
-- raw duplicate has its original's sort key, so the earliest key is the
-- same either way, and a count that includes one only narrows a window a
-- little more than needed.
SELECT count() AS events, min(occurred_at_ms) AS first_ms
FROM events
WHERE occurred_at_ms >= {{from_ms}}
  AND occurred_at_ms < {{until_ms}}
  AND ({{any_event_type}} = 1 OR event_type = {{event_type}})
  AND ({{any_client_id}} = 1 OR client_id = {{client_id}})
