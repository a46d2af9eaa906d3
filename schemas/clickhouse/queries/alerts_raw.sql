-- The latest raw JSON of the alerts one page named (alerts_page.sql): the
-- created_at_ms bounds of the page let the sorting key skip everything else.
SELECT alert_id, created_at_ms, raw
FROM alerts_by_time FINAL
WHERE created_at_ms >= {{first_ms}}
  AND created_at_ms <= {{last_ms}}
  AND alert_id IN ({{ids}})
ORDER BY created_at_ms, alert_id
