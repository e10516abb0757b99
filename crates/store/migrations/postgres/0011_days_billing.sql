-- Partner billing in days (PRODUCT.md §11). An account without a row here is billed flat.
CREATE TABLE day_accounts (
    account_id    TEXT PRIMARY KEY REFERENCES accounts (id),
    mode          TEXT NOT NULL CHECK (mode IN ('flat', 'days')),
    day_price     BIGINT NOT NULL,
    postpaid      BIGINT NOT NULL,
    -- The sum of the account's balance entries in day_entries (may go below zero only when
    -- postpaid).
    balance_days  BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Invoices for days: open until paid (by card or marked paid by the operator), paid once.
CREATE TABLE invoices (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    status       TEXT NOT NULL CHECK (status IN ('open', 'paid')),
    days         BIGINT NOT NULL,
    day_price    BIGINT NOT NULL,
    amount       BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    due_at       BIGINT NOT NULL,
    paid_at      BIGINT,
    paid_by      TEXT,
    payment_id   TEXT,
    -- The secret of the invoice's hosted page and PDF (like a line's connect token).
    page_token   TEXT NOT NULL UNIQUE,
    -- A postpaid month's invoice: the month it bills (one invoice per account and month).
    period_start BIGINT
);
CREATE INDEX invoices_account ON invoices (account_id, seq);
CREATE UNIQUE INDEX invoices_postpaid_month ON invoices (account_id, period_start);

-- The days ledger: every move of days, each posting's rows summing to zero. `ledger` is
-- `sold`, `balance`, `line:<id>` or `used`.
CREATE TABLE day_entries (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    posting      TEXT NOT NULL,
    txn_type     TEXT NOT NULL,
    ledger       TEXT NOT NULL,
    days         BIGINT NOT NULL,
    invoice_id   TEXT,
    line_id      TEXT,
    -- The business's note on an extension.
    comment      TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX day_entries_account ON day_entries (account_id, seq);

-- A days-mode line's days: held (not yet spent or returned), paid until, and what its
-- release gave back.
CREATE TABLE line_days (
    line_id        TEXT PRIMARY KEY REFERENCES lines (id),
    account_id     TEXT NOT NULL REFERENCES accounts (id),
    days_on_line   BIGINT NOT NULL,
    paid_until     BIGINT,
    days_returned  BIGINT
);

-- Invoices for days may be paid by card: payments gain the purpose `invoice`.
ALTER TABLE payments DROP CONSTRAINT payments_purpose_check;
ALTER TABLE payments ADD CONSTRAINT payments_purpose_check
    CHECK (purpose IN ('topup', 'auto_topup', 'line_charge', 'invoice'));

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
    amount_cents     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE TABLE stripe_events (
    event_id     TEXT PRIMARY KEY,
    received_at  BIGINT NOT NULL
);
