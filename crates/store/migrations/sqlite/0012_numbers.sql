-- Virtual numbers (PRODUCT.md §12). Their wallet debits are a new transaction type,
-- `number_charge`: SQLite cannot change the CHECK constraint of ledger_transactions in place,
-- so the table is rebuilt as SQLite's documentation prescribes (copy into a new table, drop,
-- rename; the store runs migrations with foreign keys off and checks them after, since
-- ledger entries and line charges refer to transactions).
CREATE TABLE ledger_transactions_v12 (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    account_id    TEXT NOT NULL REFERENCES accounts (id),
    type          TEXT NOT NULL CHECK (type IN ('topup', 'line_charge', 'adjustment', 'refund', 'message_charge', 'number_charge')),
    amount        INTEGER NOT NULL,
    balance_after INTEGER NOT NULL CHECK (balance_after >= 0),
    line_id       TEXT,
    payment_id    TEXT,
    reverses      TEXT UNIQUE,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);
INSERT INTO ledger_transactions_v12 (seq, id, account_id, type, amount, balance_after, line_id,
    payment_id, reverses, description, created_at)
SELECT seq, id, account_id, type, amount, balance_after, line_id, payment_id, reverses,
    description, created_at
FROM ledger_transactions;
DROP TABLE ledger_transactions;
ALTER TABLE ledger_transactions_v12 RENAME TO ledger_transactions;
CREATE INDEX ledger_transactions_account ON ledger_transactions (account_id, seq);

-- Virtual numbers (PRODUCT.md §12): one row per number bought, whichever provider sold it.
-- `provider` names the provider internally (never shown to the business); `provider_ref`
-- is the provider's own id of the order (an activation id). `price` is everything charged
-- for the number so far (the order and each extension); `unit_price` is a verification's
-- price or a rental's price per hour, fixed at the order.
CREATE TABLE numbers (
    seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL REFERENCES accounts (id),
    version               INTEGER NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('verification', 'rental')),
    status                TEXT NOT NULL CHECK (status IN ('active', 'code_received', 'expired', 'canceled')),
    service               TEXT NOT NULL,
    country               TEXT NOT NULL,
    phone_number          TEXT NOT NULL,
    provider              TEXT NOT NULL,
    provider_ref          TEXT NOT NULL,
    unit_price            INTEGER NOT NULL CHECK (unit_price > 0),
    price                 INTEGER NOT NULL CHECK (price > 0),
    currency              TEXT NOT NULL,
    hours                 INTEGER,
    code                  TEXT,
    charge_transaction_id TEXT NOT NULL UNIQUE,
    -- The refund of the order's charge: at most one per number. The ledger's own UNIQUE
    -- `reverses` key says the same of the charge, so no retry, restart or second server can
    -- refund a number twice.
    refund_transaction_id TEXT UNIQUE,
    created_at            INTEGER NOT NULL,
    expires_at            INTEGER NOT NULL,
    code_received_at      INTEGER,
    ended_at              INTEGER,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX numbers_account ON numbers (account_id, seq);
CREATE UNIQUE INDEX numbers_provider_ref ON numbers (provider, provider_ref);

-- The SMS a number received. `provider_key` is what the provider calls the SMS (its id, or
-- the code itself where the protocol has no id): a poll that sees it again writes nothing.
CREATE TABLE number_messages (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    number_id    TEXT NOT NULL REFERENCES numbers (id),
    provider_key TEXT NOT NULL,
    text         TEXT NOT NULL,
    code         TEXT,
    received_at  INTEGER NOT NULL,
    UNIQUE (number_id, provider_key)
);
CREATE INDEX number_messages_number ON number_messages (number_id, seq);
