SELECT version, name
FROM regwatch_migrations FINAL
ORDER BY version
