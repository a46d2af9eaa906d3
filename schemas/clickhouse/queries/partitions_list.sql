-- Day partitions of events older than the retention cutoff (YYYYMMDD ids
-- compare as strings).
SELECT DISTINCT partition_id
FROM system.parts
WHERE database = {{database}}
  AND table = 'events'
  AND active
  AND partition_id < {{before}}
ORDER BY partition_id
