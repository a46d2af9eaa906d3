-- The rollup: sum() because SummingMergeTree folds rows only on merges.
SELECT event_type, toUInt64(toUnixTimestamp(minute)) AS minute_s, toUInt64(sum(events)) AS events
FROM events_per_minute
WHERE minute >= toDateTime({{since_s}}, 'UTC')
  AND minute < toDateTime({{until_s}}, 'UTC')
GROUP BY event_type, minute
ORDER BY minute_s, event_type
