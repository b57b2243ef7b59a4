-- Call sessions (K4) and their members, for signaling state and call history.
-- `state` follows the machine pending → offered → answered → connected → ended; `end_reason`
-- says why a call ended. Members are the caller and the invitees; `response` is an invitee's
-- answer (accepted / declined, NULL while unanswered).

CREATE TABLE calls (
    id           TEXT PRIMARY KEY,
    caller_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media        TEXT NOT NULL,
    state        TEXT NOT NULL,
    end_reason   TEXT,
    error        TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    connected_at BIGINT,
    ended_at     BIGINT
);
CREATE INDEX calls_state ON calls (state);

CREATE TABLE call_members (
    call_id      TEXT NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    is_caller    BIGINT NOT NULL,
    response     TEXT,
    responded_at BIGINT,
    joined_at    BIGINT,
    PRIMARY KEY (call_id, user_id)
);
CREATE INDEX call_members_user ON call_members (user_id);
