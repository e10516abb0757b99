-- Virtual numbers (PRODUCT.md §12). Their wallet debits are a new transaction type,
-- `number_charge`.
ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_type_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_type_check
    CHECK (type IN ('topup', 'line_charge', 'adjustment', 'refund', 'message_charge', 'number_charge'));

-- Virtual numbers (PRODUCT.md §12): one row per number bought, whichever provider sold it.
-- `provider` names the provider internally (never shown to the business); `provider_ref`
-- is the provider's own id of the order (an activation id). `price` is everything charged
-- for the number so far (the order and each extension); `unit_price` is a verification's
-- price or a rental's price per hour, fixed at the order.
CREATE TABLE numbers (
    seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                    TEXT NOT NULL UNIQUE,
    account_id            TEXT NOT NULL REFERENCES accounts (id),
    version               BIGINT NOT NULL,
    kind                  TEXT NOT NULL CHECK (kind IN ('verification', 'rental')),
    status                TEXT NOT NULL CHECK (status IN ('active', 'code_received', 'expired', 'canceled')),
    service               TEXT NOT NULL,
    country               TEXT NOT NULL,
    phone_number          TEXT NOT NULL,
    provider              TEXT NOT NULL,
    provider_ref          TEXT NOT NULL,
    unit_price            BIGINT NOT NULL CHECK (unit_price > 0),
    price                 BIGINT NOT NULL CHECK (price > 0),
    currency              TEXT NOT NULL,
    hours                 BIGINT,
    code                  TEXT,
    charge_transaction_id TEXT NOT NULL UNIQUE,
    -- The refund of the order's charge: at most one per number. The ledger's own UNIQUE
    -- `reverses` key says the same of the charge, so no retry, restart or second server can
    -- refund a number twice.
    refund_transaction_id TEXT UNIQUE,
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    code_received_at      BIGINT,
    ended_at              BIGINT,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX numbers_account ON numbers (account_id, seq);
CREATE UNIQUE INDEX numbers_provider_ref ON numbers (provider, provider_ref);

-- The SMS a number received. `provider_key` is what the provider calls the SMS (its id, or
-- the code itself where the protocol has no id): a poll that sees it again writes nothing.
CREATE TABLE number_messages (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number_id    TEXT NOT NULL REFERENCES numbers (id),
    provider_key TEXT NOT NULL,
    text         TEXT NOT NULL,
    code         TEXT,
    received_at  BIGINT NOT NULL,
    UNIQUE (number_id, provider_key)
);
CREATE INDEX number_messages_number ON number_messages (number_id, seq);
