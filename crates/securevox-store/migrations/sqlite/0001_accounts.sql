-- Accounts, device sessions, invites and runtime settings.
-- Types are the common subset of SQLite and PostgreSQL (TEXT, BIGINT): timestamps are Unix
-- seconds and ids are UUID text, so one set of queries serves both backends.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    display_name  TEXT,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled_at   BIGINT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    last_seen_at  BIGINT
);
CREATE INDEX users_last_seen ON users (last_seen_at);

CREATE TABLE sessions (
    id                    TEXT PRIMARY KEY,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name           TEXT,
    refresh_hash          TEXT NOT NULL UNIQUE,
    previous_refresh_hash TEXT,
    created_at            BIGINT NOT NULL,
    last_used_at          BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    revoked_at            BIGINT,
    ip                    TEXT,
    user_agent            TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_previous_refresh ON sessions (previous_refresh_hash);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE invites (
    id         TEXT PRIMARY KEY,
    code_hash  TEXT NOT NULL UNIQUE,
    code_hint  TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    max_uses   BIGINT NOT NULL,
    uses       BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- One row that every registration and every admin change to roles, disabling or deletion
-- updates first: it serialises them on both backends (row lock on PostgreSQL, the write lock
-- on SQLite), so the user-count limit, "the first user becomes admin" and "never remove the
-- last admin" cannot race.
CREATE TABLE account_gate (
    id     BIGINT PRIMARY KEY,
    writes BIGINT NOT NULL
);
INSERT INTO account_gate (id, writes) VALUES (1, 0);
