-- A line WhatsApp blocked: status 'blocked', and why (blocked_reason); WhatsApp's rate limit
-- on a line (rate_limited_until). SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt as SQLite's documentation prescribes
-- ("Making Other Kinds Of Table Schema Changes"): copy into a new table, drop, rename. The
-- store runs migrations with foreign keys off and checks them after (sql/mod.rs), since
-- messages and charges refer to lines.
CREATE TABLE lines_v6 (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL REFERENCES accounts (id),
    version               INTEGER NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'reconnecting', 'logged_out', 'blocked', 'released')),
    calling_enabled       INTEGER NOT NULL CHECK (calling_enabled IN (0, 1)),
    allow_calling         INTEGER NOT NULL CHECK (allow_calling IN (0, 1)),
    calling_choice        INTEGER NOT NULL CHECK (calling_choice IN (0, 1)),
    plan                  TEXT CHECK (plan IN ('messaging', 'calling')),
    price                 INTEGER,
    phone_number          TEXT,
    connect_token         TEXT UNIQUE,
    label                 TEXT,
    metadata              TEXT NOT NULL,
    billing_status        TEXT NOT NULL CHECK (billing_status IN ('none', 'trialing', 'active', 'past_due', 'canceled')),
    trial_ends_at         INTEGER,
    anchor_at             INTEGER,
    paid_period           INTEGER,
    current_period_start  INTEGER,
    current_period_end    INTEGER,
    grace_ends_at         INTEGER,
    link_count            INTEGER NOT NULL,
    pairing_started_at    INTEGER NOT NULL,
    disconnected_at       INTEGER,
    reconnect_attempt     INTEGER NOT NULL,
    disconnect_notified   INTEGER NOT NULL CHECK (disconnect_notified IN (0, 1)),
    sent_day              INTEGER NOT NULL,
    sent_today            INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    ready_at              INTEGER,
    linked_at             INTEGER,
    released_at           INTEGER,
    release_reason        TEXT,
    updated_at            INTEGER NOT NULL,
    blocked_reason        TEXT,
    -- WhatsApp answered a send with its rate limit: no send before this time (micros).
    rate_limited_until    INTEGER
);
INSERT INTO lines_v6 (seq, id, account_id, version, status, calling_enabled, allow_calling, calling_choice, plan, price, phone_number, connect_token, label, metadata, billing_status, trial_ends_at, anchor_at, paid_period, current_period_start, current_period_end, grace_ends_at, link_count, pairing_started_at, disconnected_at, reconnect_attempt, disconnect_notified, sent_day, sent_today, created_at, ready_at, linked_at, released_at, release_reason, updated_at)
    SELECT seq, id, account_id, version, status, calling_enabled, allow_calling, calling_choice, plan, price, phone_number, connect_token, label, metadata, billing_status, trial_ends_at, anchor_at, paid_period, current_period_start, current_period_end, grace_ends_at, link_count, pairing_started_at, disconnected_at, reconnect_attempt, disconnect_notified, sent_day, sent_today, created_at, ready_at, linked_at, released_at, release_reason, updated_at FROM lines;
DROP TABLE lines;
ALTER TABLE lines_v6 RENAME TO lines;
CREATE INDEX lines_account ON lines (account_id, seq);
