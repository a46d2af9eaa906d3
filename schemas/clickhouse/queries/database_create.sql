-- Run before migrations, by a client with no default database.
CREATE DATABASE IF NOT EXISTS {{database}}
