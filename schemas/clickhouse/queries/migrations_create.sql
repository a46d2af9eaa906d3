-- The migration ledger: one row per applied NNNN_name.sql file.
CREATE TABLE IF NOT EXISTS regwatch_migrations
(
    version UInt32,
    name String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY version
