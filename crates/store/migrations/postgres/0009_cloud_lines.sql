-- Cloud API lines (PRODUCT.md §10): a line is `web` (WhatsApp Web, linked by a QR) or `cloud`
-- (an official number on Meta's Cloud API). A cloud line's Meta identity and its access token
-- (sealed with the server key) live beside the line; one open line per Meta phone number id.
ALTER TABLE lines ADD COLUMN kind TEXT NOT NULL DEFAULT 'web';

CREATE TABLE cloud_lines (
    line_id TEXT PRIMARY KEY REFERENCES lines (id),
    account_id TEXT NOT NULL,
    phone_number_id TEXT NOT NULL,
    waba_id TEXT NOT NULL,
    portfolio_id TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    currency TEXT NOT NULL,
    access_token TEXT NOT NULL,
    released_at BIGINT
);
CREATE UNIQUE INDEX cloud_lines_open_number ON cloud_lines (phone_number_id)
    WHERE released_at IS NULL;

-- Statuses arrive by Meta's message id (`wamid.…`).
CREATE INDEX messages_provider_id ON messages (provider_id);

-- Each Meta notification is processed once: its key (`status:<wamid>:<status>`,
-- `message:<wamid>`, …) is written in the transaction that applies it.
CREATE TABLE meta_deliveries (
    dedupe_key TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
);

-- The pricing engine's running state, read and written in the transaction that prices a
-- message, so every server and every restart prices like one long `wagate rate` run. Each
-- row carries a version: a write from a stale read is a conflict and the pricing is redone.
CREATE TABLE pricing_pairs (
    business TEXT NOT NULL,
    user_number TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (business, user_number)
);
CREATE TABLE pricing_tiers (
    portfolio TEXT NOT NULL,
    market TEXT NOT NULL,
    month BIGINT NOT NULL,
    utility BIGINT NOT NULL,
    authentication BIGINT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (portfolio, market, month)
);
CREATE TABLE pricing_free_tiers (
    waba TEXT PRIMARY KEY,
    month BIGINT NOT NULL,
    used BIGINT NOT NULL,
    version BIGINT NOT NULL
);

-- What each delivered Cloud API message cost: our pricing (the engine's), Meta's own pricing
-- object when a status carried it (reconciliation), and the wallet debit. One row per message.
CREATE TABLE message_pricing (
    message_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    line_id TEXT NOT NULL,
    waba_id TEXT NOT NULL,
    delivered_at BIGINT NOT NULL,
    ours TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    transaction_id TEXT,
    meta TEXT
);
CREATE INDEX message_pricing_account ON message_pricing (account_id, delivered_at);

-- What a Cloud API send asked for that pricing needs at delivery: the template and the
-- category the business declared (none: a non-template message).
CREATE TABLE cloud_messages (
    message_id TEXT PRIMARY KEY,
    line_id TEXT NOT NULL,
    template_name TEXT,
    template_language TEXT,
    category TEXT
);
