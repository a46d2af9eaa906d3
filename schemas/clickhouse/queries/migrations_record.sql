INSERT INTO regwatch_migrations (version, name, applied_at)
VALUES ({{version}}, {{name}}, now())
