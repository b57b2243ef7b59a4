-- End-to-end encrypted chat (C1–C3): the key directory and the MLS Delivery Service.
-- The server stores MLS objects as opaque bytes and reads only their public headers; nothing
-- here holds plaintext. Binary columns are BYTEA here and BLOB on SQLite.

-- A user's identity key (Ed25519 public key) signs each of their devices' MLS signature keys,
-- so that the server cannot add a device to a user unnoticed. Replacing it is what clients
-- show as "safety number changed".
CREATE TABLE identity_keys (
    user_id    TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    public_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A device: one MLS member (credential identity "<user id>:<device id>").
CREATE TABLE devices (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name               TEXT,
    signature_key      BYTEA NOT NULL UNIQUE,
    identity_signature BYTEA NOT NULL,
    created_at         BIGINT NOT NULL,
    last_seen_at       BIGINT
);
CREATE INDEX devices_user ON devices (user_id);

-- KeyPackages, each handed out once (claimed_at set); a device's last-resort one may repeat.
CREATE TABLE key_packages (
    package_ref BYTEA PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    data        BYTEA NOT NULL,
    last_resort BIGINT NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    claimed_at  BIGINT,
    claimed_by  TEXT
);
CREATE INDEX key_packages_device ON key_packages (device_id, last_resort, claimed_at);

-- A conversation is one MLS group whose group id is the conversation id's bytes. `epoch` is
-- the epoch the server last accepted a Commit into: exactly one Commit moves it on.
CREATE TABLE conversations (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    name       TEXT,
    epoch      BIGINT NOT NULL,
    next_seq   BIGINT NOT NULL,
    group_info BYTEA,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            TEXT NOT NULL,
    joined_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user ON conversation_members (user_id);

-- The devices in the MLS group, as the Commits that added and removed them said: where the
-- group's messages are delivered.
CREATE TABLE conversation_devices (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id         TEXT NOT NULL,
    added_at        BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, device_id)
);
CREATE INDEX conversation_devices_device ON conversation_devices (device_id);

-- The group's ordered log: Commits, proposals and application messages, numbered per group.
CREATE TABLE group_messages (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    epoch           BIGINT NOT NULL,
    content_type    TEXT NOT NULL,
    sender_device   TEXT,
    data            BYTEA NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);

-- Each device's inbox: a message of a group it is in (conversation + seq) or a Welcome
-- (data inline). `id` is the device's sync cursor.
CREATE TABLE inbox (
    id              BIGSERIAL PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             BIGINT,
    welcome         BYTEA,
    created_at      BIGINT NOT NULL,
    acked_at        BIGINT
);
CREATE INDEX inbox_device ON inbox (device_id, id);
CREATE INDEX inbox_acked ON inbox (acked_at);
