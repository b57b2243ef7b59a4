-- Encrypted attachments (C2): opaque blobs a member uploaded to a conversation. The bytes live
-- in the blob store (under the data directory); the server keeps no file name or MIME type —
-- those travel inside the encrypted message with the blob's key.

CREATE TABLE attachments (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    uploader_id     TEXT REFERENCES users (id) ON DELETE SET NULL,
    size            BIGINT NOT NULL,
    sha256          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX attachments_conversation ON attachments (conversation_id);
CREATE INDEX attachments_created ON attachments (created_at);
