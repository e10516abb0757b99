-- Partner billing in days (PRODUCT.md §11). An account without a row here is billed flat.
CREATE TABLE day_accounts (
    account_id    TEXT PRIMARY KEY REFERENCES accounts (id),
    mode          TEXT NOT NULL CHECK (mode IN ('flat', 'days')),
    day_price     INTEGER NOT NULL,
    postpaid      INTEGER NOT NULL,
    -- The sum of the account's balance entries in day_entries (may go below zero only when
    -- postpaid).
    balance_days  INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Invoices for days: open until paid (by card or marked paid by the operator), paid once.
CREATE TABLE invoices (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'paid')),
    days         INTEGER NOT NULL,
    day_price    INTEGER NOT NULL,
    amount       INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    paid_at      INTEGER,
    paid_by      TEXT,
    payment_id   TEXT,
    -- The secret of the invoice's hosted page and PDF (like a line's connect token).
    page_token   TEXT NOT NULL UNIQUE,
    -- A postpaid month's invoice: the month it bills (one invoice per account and month).
    period_start INTEGER
);
CREATE INDEX invoices_account ON invoices (account_id, seq);
CREATE UNIQUE INDEX invoices_postpaid_month ON invoices (account_id, period_start);

-- The days ledger: every move of days, each posting's rows summing to zero. `ledger` is
-- `sold`, `balance`, `line:<id>` or `used`.
CREATE TABLE day_entries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    posting      TEXT NOT NULL,
    txn_type     TEXT NOT NULL,
    ledger       TEXT NOT NULL,
    days         INTEGER NOT NULL,
    invoice_id   TEXT,
    line_id      TEXT,
    -- The business's note on an extension.
    comment      TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX day_entries_account ON day_entries (account_id, seq);

-- A days-mode line's days: held (not yet spent or returned), paid until, and what its
-- release gave back.
CREATE TABLE line_days (
    line_id        TEXT PRIMARY KEY REFERENCES lines (id),
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    days_on_line   INTEGER NOT NULL,
    paid_until     INTEGER,
    days_returned  INTEGER
);

-- Invoices for days may be paid by card: payments gain the purpose `invoice` (SQLite changes
-- a CHECK constraint only by rebuilding the table).
CREATE TABLE payments_new (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    purpose       TEXT NOT NULL CHECK (purpose IN ('topup', 'auto_topup', 'line_charge', 'invoice')),
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
INSERT INTO payments_new (seq, id, account_id, purpose, attempt_key, line_id, period, amount,
    status, processor_id, error_code, error_message, created_at, updated_at)
SELECT seq, id, account_id, purpose, attempt_key, line_id, period, amount, status,
    processor_id, error_code, error_message, created_at, updated_at FROM payments;
DROP TABLE payments;
ALTER TABLE payments_new RENAME TO payments;
CREATE INDEX payments_account ON payments (account_id, seq);

-- Per-line Stripe subscriptions: the account's Stripe customer (made once), each line's
-- subscription, and the Stripe events applied (Stripe redelivers; each applies once).
CREATE TABLE stripe_customers (
    account_id   TEXT PRIMARY KEY REFERENCES accounts (id),
    customer_id  TEXT NOT NULL UNIQUE
);
CREATE TABLE line_subscriptions (
    line_id          TEXT PRIMARY KEY REFERENCES lines (id),
    account_id       TEXT NOT NULL REFERENCES accounts (id),
    subscription_id  TEXT NOT NULL UNIQUE,
    billing_interval TEXT NOT NULL CHECK (billing_interval IN ('month', 'year')),
    status           TEXT NOT NULL,
    amount_cents     INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE TABLE stripe_events (
    event_id     TEXT PRIMARY KEY,
    received_at  INTEGER NOT NULL
);
