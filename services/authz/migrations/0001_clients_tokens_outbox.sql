-- One file serves SQLite and PostgreSQL. `{{PK_AUTOINC}}` is the only
-- dialect difference and is replaced by the migration runner.

CREATE TABLE clients (
    client_id           TEXT PRIMARY KEY,
    registration_method TEXT NOT NULL,
    metadata            TEXT NOT NULL,
    secret_hash         TEXT,
    rat_hash            TEXT,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL,
    consented_at        BIGINT,
    source_ip           TEXT,
    version             BIGINT NOT NULL
);
CREATE INDEX clients_status_seen ON clients (status, last_seen_at);

CREATE TABLE tokens (
    token_hash  TEXT PRIMARY KEY,
    token_id    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    client_id   TEXT NOT NULL,
    user_id     TEXT,
    family_id   TEXT,
    scopes      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX tokens_client ON tokens (client_id);
CREATE INDEX tokens_family ON tokens (family_id);

CREATE TABLE outbox (
    seq         {{PK_AUTOINC}},
    event_id    TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL,
    client_id   TEXT,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (published_at, seq);
