ALTER TABLE events DROP PARTITION ID {{partition_id}}
