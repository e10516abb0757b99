-- A line WhatsApp blocked: status 'blocked', and why, as the connector classified it; and
-- WhatsApp's rate limit on a line.
ALTER TABLE lines ADD COLUMN blocked_reason TEXT;
-- WhatsApp answered a send with its rate limit: no send before this time (micros).
ALTER TABLE lines ADD COLUMN rate_limited_until BIGINT;
ALTER TABLE lines DROP CONSTRAINT lines_status_check;
ALTER TABLE lines ADD CONSTRAINT lines_status_check
    CHECK (status IN ('pending', 'ready', 'reconnecting', 'logged_out', 'blocked', 'released'));
