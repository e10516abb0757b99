-- A line WhatsApp blocked: status 'blocked', and why, as the connector classified it.
ALTER TABLE lines ADD COLUMN blocked_reason TEXT;
ALTER TABLE lines DROP CONSTRAINT lines_status_check;
ALTER TABLE lines ADD CONSTRAINT lines_status_check
    CHECK (status IN ('pending', 'ready', 'reconnecting', 'logged_out', 'blocked', 'released'));
