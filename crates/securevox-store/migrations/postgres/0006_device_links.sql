-- Linking a new device to an existing identity (like Signal's "link device"): the new device,
-- logged in with the password, asks; one of the user's devices that holds the identity key
-- checks the code both screens show, signs the new device's key and hands over an envelope
-- (the identity key, HPKE-encrypted to the new device's one-time transfer key) that the
-- server passes on unread. Requests expire after a few minutes and are swept.
CREATE TABLE device_links (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT,
    signature_key BYTEA NOT NULL,
    transfer_key  BYTEA NOT NULL,
    state         TEXT NOT NULL,
    device_id     TEXT REFERENCES devices (id) ON DELETE SET NULL,
    envelope      BYTEA,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    decided_at    BIGINT
);
CREATE INDEX device_links_user ON device_links (user_id, state);
