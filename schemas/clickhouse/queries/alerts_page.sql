-- One window of an alerts page (latest version of each) in
-- (created_at_ms, alert_id) order: keys only. The store reads a page window
-- by window ([since_ms, until_ms) is the window; ClickHouseStore::read_page)
-- and fetches raw for the page alone afterwards (alerts_raw.sql). The status
-- filter sits outside the FINAL subquery so it always judges the latest
-- version, never an older one.
SELECT alert_id, created_at_ms
FROM
(
    SELECT alert_id, created_at_ms, status
    FROM alerts_by_time FINAL
    WHERE created_at_ms >= {{since_ms}}
      AND created_at_ms < {{until_ms}}
      AND ({{any_kind}} = 1 OR kind = {{kind}})
      AND ({{any_client_id}} = 1 OR client_id = {{client_id}})
      AND (created_at_ms > {{after_ms}} OR (created_at_ms = {{after_ms}} AND alert_id > {{after_id}}))
)
WHERE ({{any_status}} = 1 OR status = {{status}})
ORDER BY created_at_ms, alert_id
LIMIT {{limit}}
