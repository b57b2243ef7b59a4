-- Contacts (U2): whom a user has added, and whom they have blocked. A row is one user's view
-- of another: `state` is `contact` or `blocked`. Presence goes only to contacts; a blocked
-- user cannot message, call, claim KeyPackages of, or see the presence of the blocker.

CREATE TABLE contacts (
    owner_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, contact_id)
);
CREATE INDEX contacts_contact ON contacts (contact_id);
