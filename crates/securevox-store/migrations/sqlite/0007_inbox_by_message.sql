-- The items one message queued, read back right after queueing them (to push them live) and
-- removed with their conversation: without this index each message scanned the whole inbox
-- table, which holds every item of the retention window (30 days by default).
CREATE INDEX inbox_message ON inbox (conversation_id, seq);
