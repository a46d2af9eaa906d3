SELECT count() AS events
FROM events FINAL
