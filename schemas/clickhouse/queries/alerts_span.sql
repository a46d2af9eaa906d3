-- How many alert versions the kind and client filters accept in
-- [from_ms, until_ms), and the earliest created_at_ms among them: a windowed
-- alerts page counts a wide window before reading it, and finds where to
-- jump after an empty one. No FINAL and no status filter (status needs the
-- latest version, which only FINAL knows): counting every version can only
-- narrow a window more than needed, and the earliest key is never past the
-- next alert that matches.
SELECT count() AS events, min(created_at_ms) AS first_ms
FROM alerts_by_time
WHERE created_at_ms >= {{from_ms}}
  AND created_at_ms < {{until_ms}}
  AND ({{any_kind}} = 1 OR kind = {{kind}})
  AND ({{any_client_id}} = 1 OR client_id = {{client_id}})
