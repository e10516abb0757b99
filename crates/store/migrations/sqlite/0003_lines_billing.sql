-- Lines, messages, and flat per-line billing: the billing account (card, wallet balance,
-- auto top-up), the double-entry ledger, card payment attempts and one charge per line
-- and period.

CREATE TABLE lines (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL REFERENCES accounts (id),
    version               INTEGER NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('pending', 'ready', 'reconnecting', 'logged_out', 'released')),
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
    updated_at            INTEGER NOT NULL
);
CREATE INDEX lines_account ON lines (account_id, seq);

CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    line_id      TEXT NOT NULL REFERENCES lines (id),
    direction    TEXT NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    from_number  TEXT,
    to_number    TEXT,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    error        TEXT,
    provider_id  TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX messages_line ON messages (line_id, seq);
CREATE INDEX messages_queued ON messages (line_id, status, seq);

CREATE TABLE billing_accounts (
    account_id              TEXT PRIMARY KEY REFERENCES accounts (id),
    currency                TEXT NOT NULL,
    balance                 INTEGER NOT NULL CHECK (balance >= 0),
    customer_id             TEXT,
    card_id                 TEXT,
    card_brand              TEXT,
    card_last4              TEXT,
    card_exp_month          INTEGER,
    card_exp_year           INTEGER,
    card_added_at           INTEGER,
    auto_topup_enabled      INTEGER NOT NULL CHECK (auto_topup_enabled IN (0, 1)),
    auto_topup_threshold    INTEGER NOT NULL,
    auto_topup_amount       INTEGER NOT NULL,
    auto_topup_in_flight    INTEGER NOT NULL CHECK (auto_topup_in_flight IN (0, 1)),
    auto_topup_blocked_until INTEGER,
    trial_used              INTEGER NOT NULL CHECK (trial_used IN (0, 1)),
    version                 INTEGER NOT NULL
);

CREATE TABLE ledger_transactions (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    type          TEXT NOT NULL CHECK (type IN ('topup', 'line_charge', 'adjustment', 'refund', 'message_charge')),
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    line_id       TEXT,
    payment_id    TEXT,
    reverses      TEXT UNIQUE,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX ledger_transactions_account ON ledger_transactions (account_id, seq);

CREATE TABLE ledger_entries (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    ledger_account TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    balance_after  INTEGER CHECK (balance_after IS NULL OR balance_after >= 0)
);
CREATE INDEX ledger_entries_txn ON ledger_entries (transaction_id);

CREATE TABLE payments (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    purpose       TEXT NOT NULL CHECK (purpose IN ('topup', 'auto_topup', 'line_charge')),
    attempt_key   TEXT NOT NULL UNIQUE,
    line_id       TEXT,
    period        INTEGER,
    amount        INTEGER NOT NULL CHECK (amount > 0),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'declined', 'failed')),
    processor_id  TEXT,
    error_code    TEXT,
    error_message TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX payments_account ON payments (account_id, seq);

CREATE TABLE line_charges (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    line_id        TEXT NOT NULL REFERENCES lines (id),
    period         INTEGER NOT NULL,
    amount         INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    created_at     INTEGER NOT NULL,
    UNIQUE (line_id, period)
);
