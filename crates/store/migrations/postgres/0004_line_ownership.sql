-- Line ownership: one server at a time serves a line (holds its WhatsApp connection and runs
-- its send, reconnect and unlink jobs). A server proves it is alive by renewing its row in
-- `servers`; a line belongs to `line_owners.holder` while that holder's row is alive, so one
-- renewal per server keeps all of its lines, however many.
CREATE TABLE servers (
    holder     TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE TABLE line_owners (
    line_id TEXT PRIMARY KEY,
    holder  TEXT NOT NULL,
    -- Raised at every change of holder: a fencing token for the new holder's work.
    epoch   BIGINT NOT NULL,
    since   BIGINT NOT NULL
);
CREATE INDEX line_owners_holder ON line_owners (holder);

-- The line a job must run on the owner of (send, reconnect, unlink); NULL for any server.
ALTER TABLE jobs ADD COLUMN line_id TEXT;
